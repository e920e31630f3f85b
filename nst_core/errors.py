"""The one exception type that reaches users as a one-line message (exit code 2)."""


class NSTError(Exception):
    """A problem with the user's input: missing file, bad option, unreadable image...

    The CLI prints ``nst: error: <message>`` and exits with status 2; anything else is a bug.
    """


def first_line(e: BaseException) -> str:
    """The first non-empty line of an exception's message, at most 300 characters: library errors often
    span several lines, and some repeat a whole payload."""
    return next((line.strip()[:300] for line in str(e).splitlines() if line.strip()), type(e).__name__)
