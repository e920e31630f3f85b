"""`python -m infer export|stylize|compare ...` == `nst export|stylize|compare ...`."""

import sys

from nst_core.cli import main

COMMANDS = ("export", "stylize", "compare")

if __name__ == "__main__":
    argv = sys.argv[1:]
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        print(f"usage: python -m infer {{{','.join(COMMANDS)}}} ...", file=sys.stderr)
        sys.exit(0 if argv and argv[0] in ("-h", "--help") else 2)
    sys.exit(main(argv))
