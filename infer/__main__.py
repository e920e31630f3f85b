"""`python -m infer COMMAND ...` == `nst COMMAND ...`, for the inference commands (their entry points live here)."""

import sys

from nst_core.cli import main

if __name__ == "__main__":
    sys.exit(main(package="infer"))
