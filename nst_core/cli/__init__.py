"""The `nst` command: one parser whose subcommands come from the ``nst.commands`` entry points (``command``),
and the argument types, help format and shared options every command uses (``options``)."""

from nst_core.cli.command import OneLineParser, build_parser, exit_status, main, run

__all__ = ["OneLineParser", "build_parser", "exit_status", "main", "run"]
