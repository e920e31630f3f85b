"""The optimizer's path before and after the overshoot guard: final loss, worst/start ratio, restarts.

    git show 4c5db49:nst_core/optimize.py > /tmp/optimize_old.py
    python benchmarks/optimize_path.py --old /tmp/optimize_old.py --size 256 --steps 100

The "old" module is any earlier nst_core/optimize/scales.py; both run the same pairs of ../shared/data, sizes,
steps and losses (nst optimize's defaults and the trainer's), on the CPU. Counts VGG evaluations, not time.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import nst_core.optimize.scales as new
from nst_core.losses.weights import LossWeights
from nst_core.machine import describe

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
PAIRS = [
    ("tubingen", "starry_night"),
    ("golden_gate", "candy"),
    ("horses_pasture", "the_scream"),
    ("chicago", "great_wave"),
]
LOSSES = {
    "train": LossWeights(
        content=1, style=0.2, content_layers=["relu2_2"], style_layers=["relu1_2", "relu2_2", "relu3_3", "relu4_3"]
    ),
    "default": LossWeights(),
}


def load_old(path: str):
    spec = importlib.util.spec_from_file_location("nst_core.optimize_old", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def run(module, content: str, style: str, loss: LossWeights, size: int, steps: int) -> str:
    restarts = [0]
    overshoot = getattr(module, "_Overshoot", None)
    if overshoot is not None:
        original = overshoot.__init__
        overshoot.__init__ = lambda self, *a: (restarts.__setitem__(0, restarts[0] + 1), original(self, *a))[1]
    paths = (DATA / "content" / f"{content}.jpg", DATA / "styles" / f"{style}.jpg")
    r = module.optimize(*paths, size=size, steps=steps, loss=loss, progress=False, device="cpu")
    h = [x[2] for x in r.history]
    if overshoot is not None:
        overshoot.__init__ = original
    return f"{r.loss['total']:.4g} (worst x{max(h) / h[0]:.1f}, {restarts[0]} restarts)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--old", required=True, help="an earlier nst_core/optimize/scales.py")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--steps", type=int, default=100)
    args = ap.parse_args()
    old = load_old(args.old)
    print(f"machine: {describe()}; size {args.size}, {args.steps} steps")
    for setting, loss in LOSSES.items():
        for c, s in PAIRS:
            before, after = (run(m, c, s, loss, args.size, args.steps) for m in (old, new))
            print(f"{setting:7s} {c} x {s}: old {before}  new {after}", flush=True)


if __name__ == "__main__":
    main()
