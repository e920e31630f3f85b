"""`python -m train ...`, `accelerate launch -m train ...` and `torchrun -m train ...` == `nst train ...`."""

import sys

from nst_core.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
