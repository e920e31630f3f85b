"""A trained network's loss on photos it never saw: the cheap yardstick for comparing training recipes.

Each network is scored with ONE loss (the first run's `loss:` section and style image, unless
--style / weights are given), at one size, on every photo of a folder (default: shared/data/content,
which no shipped network trains on): the mean of the per-photo trainer losses (content, style, total),
with ``forward_loss``, the trainer's own step. A recipe is better when its network scores lower for the
same training cost; `nst compare --metric model` turns the winner into optimizer iterations.

    python benchmarks/held_out_loss.py /work/runs/starry_128 /work/runs/starry_256 --size 256
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nst_core.checkpoint_io import load_network  # noqa: E402
from nst_core.image_io import load_image, scan_images  # noqa: E402
from nst_core.machine import describe, machine_info  # noqa: E402
from train.config import TrainConfig, build_config, read_yaml  # noqa: E402
from train.trainer import build_loss, forward_loss  # noqa: E402

DEFAULT_PHOTOS = ROOT.parent / "shared" / "data" / "content"


def run_config(run: Path) -> TrainConfig:
    """The config a run folder saved (its style, loss and style size)."""
    return build_config(read_yaml(run / "config.yaml"))


@torch.no_grad()
def held_out_loss(net: torch.nn.Module, cfg: TrainConfig, photos: list[Path], size: int) -> dict[str, float]:
    """Mean trainer loss terms over ``photos`` (longer side ``size``), one photo at a time, float32."""
    style = load_image(cfg.style, size=cfg.style_size or size)
    loss_fn = build_loss(cfg, style, torch.device("cpu"))
    terms: dict[str, list[float]] = {}
    for photo in photos:
        x = load_image(photo, size=size).unsqueeze(0)
        for k, v in forward_loss(net, loss_fn, x).items():
            terms.setdefault(k, []).append(float(v))
    return {k: statistics.fmean(v) for k, v in terms.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("networks", nargs="+", type=Path, help="run folders, checkpoint folders or .safetensors files")
    p.add_argument("--size", type=int, default=256, help="longer side of the photos")
    p.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS, help="held-out photo folder")
    p.add_argument("--style-weight", type=float, help="score with this style weight (default: the first run's)")
    p.add_argument("--json", action="store_true", help="one JSON object per network on stdout")
    args = p.parse_args()
    torch.manual_seed(0)
    photos, _ = scan_images(args.photos)
    first = args.networks[0]
    cfg = run_config(first if first.is_dir() and (first / "config.yaml").exists() else first.parents[1])
    if args.style_weight is not None:
        cfg = cfg.updated({"loss": {"style": args.style_weight}}, "--style-weight")
    print(f"# {describe(machine_info())}; {len(photos)} photos of {args.photos} at {args.size} px", file=sys.stderr)
    print(f"# loss: {json.dumps(cfg.loss.to_dict())}, style {cfg.style} at {cfg.style_size or args.size} px")
    print("| network | content | style | total |\n|---|---:|---:|---:|")
    for path in args.networks:
        net, _ = load_network(path)
        scores = held_out_loss(net, cfg, photos, args.size)
        if args.json:
            print(json.dumps({"network": str(path), **scores}))
        else:
            print(f"| {path} | {scores['content']:.4g} | {scores['style']:.4g} | {scores['total']:.4g} |")


if __name__ == "__main__":
    main()
