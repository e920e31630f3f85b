"""A new style on a CPU: added to a trained network of several styles (only its norm rows train) against a network
of the same variant trained for it from scratch, both for the same minutes.

Both runs learn ``--style`` with the same loss, data, schedule and seconds (the `cpu` preset with ``--variant``):

- ``scratch``: a network of one style from random weights, every weight trained;
- ``added``: ``--add-style`` onto ``--base`` (e.g. the shipped ``six_styles_fast``): its convolutions and styles frozen,
  only the new style's instance-norm scales and shifts trained (about 1% of the weights).

Every ``--every`` steps a checkpoint keeps the network and the seconds trained so far; afterwards each checkpoint's
held-out loss (the trainer's own loss, on photos not trained on, at 256 px) is measured. The figure: the minutes the
added style needs to reach the scratch network's final held-out loss. Run it alone: the minutes are the result.

    python benchmarks/add_style.py --style ../shared/data/styles/candy.jpg --base infer/models/six_styles_fast.onnx \\
        --data ../shared/data/photos_large --minutes 10 --out /tmp/add_style --json
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.held_out_loss import DEFAULT_PHOTOS, held_out_loss  # noqa: E402
from nst_core.checkpoint_io import checkpoint_dirs, load_network  # noqa: E402
from nst_core.image_io import display_name, scan_images  # noqa: E402
from nst_core.machine import describe, machine_info  # noqa: E402
from train.checkpoint import TRAINING_STATE  # noqa: E402
from train.config import build_config, config_file, read_yaml  # noqa: E402
from train.trainer import run_training  # noqa: E402


def run(name: str, args: argparse.Namespace, **overrides: object) -> Path:
    """One training run of ``args.minutes`` into ``args.out/name``, a checkpoint every ``args.every`` steps."""
    preset = read_yaml(config_file("cpu"))
    values = {
        "style": str(args.style),
        "data": str(args.data),
        "output": str(args.out / name),
        "variant": args.variant,
        "init_from": None,
        "max_time": args.minutes * 60,
        "checkpoint_every": args.every,
        "keep_checkpoints": 10_000,
        "sample_every": 10_000,
        "report_to": "none",
        **overrides,
    }
    cfg = build_config(preset, values)
    t0 = time.perf_counter()
    result = run_training(cfg, progress=False, messages=False)
    print(f"# {name}: {result.step} steps in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return args.out / name


def curve(folder: Path, photos: list[Path], size: int) -> list[dict[str, float]]:
    """(step, minutes trained, held-out loss) of every checkpoint of a run, its newest style scored."""
    cfg = build_config(read_yaml(folder / "config.yaml"))
    points = []
    for ckpt in checkpoint_dirs(folder):
        net, _ = load_network(ckpt)
        state = torch.load(ckpt / TRAINING_STATE, map_location="cpu", weights_only=True)
        painting = functools.partial(net, style=net.styles - 1)  # the style this run learnt: the last row
        loss = held_out_loss(painting, cfg, photos, size)
        points.append({"step": int(state["step"]), "minutes": float(state["seconds"]) / 60, **loss})
    return points


def minutes_to_reach(points: list[dict[str, float]], target: float) -> float | None:
    """The minutes of the first checkpoint whose held-out total loss is at most ``target``."""
    return next((p["minutes"] for p in points if p["total"] <= target), None)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--style", type=Path, required=True, help="the new painting")
    p.add_argument("--base", required=True, help="the trained network the style is added to (.onnx, run folder)")
    p.add_argument("--data", type=Path, required=True, help="training photos")
    p.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS, help="held-out photos")
    p.add_argument("--variant", default="fast", help="the base network's variant")
    p.add_argument("--minutes", type=float, default=10.0, help="training minutes of each run")
    p.add_argument("--every", type=int, default=50, help="steps between checkpoints")
    p.add_argument("--size", type=int, default=256, help="longer side of the held-out photos")
    p.add_argument("--out", type=Path, required=True, help="where the two run folders go")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = p.parse_args()
    torch.manual_seed(0)
    print(f"# {describe(machine_info())}; nothing else should run", file=sys.stderr)
    scratch = run("scratch", args)
    added = run("added", args, init_from=str(args.base), add_style=True)
    photos = scan_images(args.photos)[0]
    curves = {"scratch": curve(scratch, photos, args.size), "added": curve(added, photos, args.size)}
    target = curves["scratch"][-1]["total"]
    reach = minutes_to_reach(curves["added"], target)
    for name, points in curves.items():
        for q in points:
            line = f"{name:8s} step {q['step']:5d} {q['minutes']:5.1f} min  held-out loss {q['total']:.4g}"
            print(line, file=sys.stderr)
    said = f"{reach:.1f} minutes" if reach is not None else f"not within {args.minutes:g} minutes"
    style = display_name(str(args.style))
    print(f"# {style}: the added style reaches scratch's final held-out loss {target:.4g} in {said}", file=sys.stderr)
    if args.json:
        summary = {"machine": machine_info(), "style": str(args.style), "base": args.base, "minutes": args.minutes}
        print(json.dumps(summary | {"target": target, "minutes_to_reach": reach, "curves": curves}))


if __name__ == "__main__":
    main()
