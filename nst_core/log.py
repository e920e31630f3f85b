"""Messages on stderr through `logging`: one logger, ``nst``, its level set by -q / -v.

stdout carries only results (``--json`` objects, image data); everything a person reads while a
command runs (notes, warnings, summaries, errors) goes through this logger to stderr, written with
``tqdm.write`` so that it never tears a progress bar. Warnings and errors are prefixed with the
command (``nst stylize: warning: ...``), like argparse's own errors; notes are printed as they are.
"""

from __future__ import annotations

import logging

LOG = logging.getLogger("nst")


class _Handler(logging.Handler):
    """stderr, through tqdm so a running progress bar is redrawn below the message."""

    def emit(self, record: logging.LogRecord) -> None:
        import sys

        from tqdm import tqdm

        try:
            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # pragma: no cover - logging must never raise
            self.handleError(record)


class _Formatter(logging.Formatter):
    def __init__(self, prog: str) -> None:
        super().__init__()
        self.prog = prog

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.levelno >= logging.WARNING:
            return f"{self.prog}: {record.levelname.lower()}: {message}"
        return message


def configure(prog: str = "nst", quiet: bool = False, verbose: int = 0) -> None:
    """Route the ``nst`` logger to stderr: -q shows errors only, default notes and warnings, -v debug too."""
    handler = _Handler()
    handler.setFormatter(_Formatter(prog))
    LOG.handlers[:] = [handler]
    LOG.propagate = False
    LOG.setLevel(logging.ERROR if quiet else logging.DEBUG if verbose else logging.INFO)
