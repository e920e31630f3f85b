"""The `nst` command: one parser whose subcommands come from the ``nst.commands`` entry points (``main``),
and the argument types, help format and shared options every command uses (``options``)."""

from nst_core.cli.main import build_parser, main, run

__all__ = ["build_parser", "main", "run"]
