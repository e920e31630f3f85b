"""The `nst` command: one parser, subcommands found through the `nst.commands` entry points.

Each subcommand module exposes ``register(subparsers)``, which adds its parser and sets
``func=run(args) -> int``. Any NSTError becomes one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from importlib.metadata import EntryPoint, entry_points

from nst_core import __version__
from nst_core.errors import NSTError
from nst_core.log import LOG, configure

#: Heads the examples `nst --help` gathers: each command's first example (`nst_core.cli.options.add_command`).
EXAMPLES_HEAD = "examples (`nst COMMAND --help` for each command's options and more examples):"


def commands(package: str | None = None) -> dict[str, EntryPoint]:
    """The subcommands by name, in alphabetical order: every ``nst.commands`` entry point, or those whose module
    lives in ``package`` (`python -m infer` offers the inference commands)."""
    found = sorted(entry_points(group="nst.commands"), key=lambda ep: ep.name)
    return {ep.name: ep for ep in found if package is None or ep.module.split(".")[0] == package}


class OneLineParser(argparse.ArgumentParser):
    """Argument errors as one line (`nst optimize: error: ...`) and exit status 2, no usage dump."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser(only: str | None = None, package: str | None = None) -> argparse.ArgumentParser:
    """The parser of `nst` (or `python -m PACKAGE`); ``only``: register that one command alone (a fast start)."""
    parser = OneLineParser(
        prog="nst" if package is None else f"python -m {package}",
        description="Neural style transfer toolkit: the iterative method, feed-forward networks, ONNX, comparison.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"nst {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, ep in commands(package).items():
        if only is None or name == only:
            try:
                register = ep.load()
            except ImportError as e:  # a light install (README): no torch, PyYAML ... for this command
                register = unavailable(name, e)
            register(subparsers)
    firsts = [p.examples[0] for p in subparsers.choices.values() if getattr(p, "examples", None)]
    parser.epilog = "\n".join([EXAMPLES_HEAD, *(f"  {e}" for e in firsts)])
    return parser


def subcommand(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    """The parser of the command ``name`` registered in ``parser`` (`build_parser`)."""
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices[name]


def not_installed(package: str) -> NSTError:
    return NSTError(f"this needs {package}, which is not installed: pip install nst-toolkit (the full install)")


def unavailable(name: str, error: ImportError) -> Callable[[argparse._SubParsersAction], None]:
    """A stand-in for a command whose module needs a package this install lacks: listed by `nst --help`,
    and running it is one line naming the package, not a traceback."""
    missing = error.name or str(error)

    def fail(args: argparse.Namespace) -> int:
        raise not_installed(missing)

    def register(subparsers: argparse._SubParsersAction) -> None:
        # No option prefix, so every argument (--style ...) lands in `rest` instead of being refused
        p = subparsers.add_parser(name, help=f"(not installed: needs {missing})", add_help=False, prefix_chars="\0")
        p.add_argument("rest", nargs="*")
        p.set_defaults(func=fail)

    return register


@contextmanager
def _max_pixels(limit: int | None) -> Iterator[None]:
    """--max-pixels (nst_core.cli.options.add_max_pixels_option) for this command only, then the old limit."""
    if limit is None:
        yield
        return
    from nst_core.image_io import set_max_pixels

    previous = set_max_pixels(limit)
    try:
        yield
    finally:
        set_max_pixels(previous)


def main(argv: Sequence[str] | None = None, package: str | None = None) -> int:
    """Entry point of `nst`; returns the exit status (also used by `python -m train` / `infer`, whose ``package``
    limits the commands to its own). Ctrl-C at any moment, even while the command's modules load, is one line
    and status 130."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    try:
        return _main(argv, command, package)
    except KeyboardInterrupt:  # while the modules load or the arguments are read (the command's own: exit_status)
        configure("nst" if command is None else f"nst {command}")
        LOG.error("interrupted")
        return 130


def _main(argv: list[str], command: str | None, package: str | None) -> int:
    # Load only the chosen subcommand (fast start, and a broken optional one can't block the rest).
    parser = build_parser(only=command if command in commands(package) else None, package=package)
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # the command's own error (`nst train: error: ...`), as for any other bad argument of it
        subcommand(parser, args.command).error(f"unrecognized arguments: {' '.join(unknown)}")
    configure(f"nst {args.command}", getattr(args, "quiet", False), getattr(args, "verbose", 0))

    def run_command() -> int:
        with _max_pixels(getattr(args, "max_pixels", None)):
            return int(args.func(args) or 0)

    return exit_status(run_command)


def exit_status(command: Callable[[], int]) -> int:
    """``command()``'s exit status, errors reported the command-line way (after `configure` named the program):
    an NSTError or a missing package is one line on stderr and status 2, a closed pipe 141, Ctrl-C 130.
    Every `nst` command and the maintainers' scripts (tools/) end through here."""
    try:
        return int(command() or 0)
    except NSTError as e:
        LOG.error(" ".join(str(e).split()))  # always one line
        return 2
    except ModuleNotFoundError as e:  # a light install running a command (or option) that needs torch ...
        LOG.error(str(not_installed(e.name or str(e))))
        return 2
    except BrokenPipeError:  # `nst ... --json | head`: the reader left early; not an error worth a traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit-time flush cannot fail again
        return 141
    except KeyboardInterrupt:
        LOG.error("interrupted")
        return 130


def run() -> None:
    """Console-script wrapper."""
    sys.exit(main())
