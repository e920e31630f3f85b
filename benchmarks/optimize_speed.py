"""Iterative optimizer vs the `pastiche` package: `nst optimize`'s defaults against pastiche's 500 L-BFGS steps.

Both methods run on the same content/style pixels at the same size, each in its own subprocess (so
peak RSS is per method), each with its own defaults: pastiche's objective (content 1, style 1000 in
nst_core's scaling) for 500 steps, `nst optimize` with no step count (each scale stops once converged,
coarse-to-fine chosen by size) and its weights (content 5, style 100). Both outputs are scored by one
fixed nst_core metric (caffe VGG19, default layers, TV off) term by term: ours counts as reaching
pastiche's quality only when BOTH its content and its style term are at or below pastiche's, so the
weights cannot trade one for the other. Reported per pair and size: both loop times, the ratio, both
terms, steps per scale, peak memory. ``--ablation`` adds ours on pastiche's own objective, and the old
variant that stops at pastiche's loss.
``--cache DIR`` keeps pastiche's runs (its time and picture) so tuning ours does not repeat them.

    python benchmarks/optimize_speed.py --sizes 256 512 --cache /tmp/pastiche-cache -o /tmp/speed
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from nst_core.machine import describe

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
# pastiche's own objective in nst_core's scaling, times 100: its content term is 0.01 * MSE(relu4_2)
# and its style term 10/C^2 * MSE of Grams divided by H*W, which is 10 * nst_core's Gram/(C*H*W) MSE.
# Scoring (and stopping) with it means both methods minimise the same objective.
METRIC = {"content": 1.0, "style": 1000.0, "tv": 0.0}


PAIRS = ("tubingen:starry_night", "golden_gate:the_scream", "chicago:great_wave")


def default_images() -> tuple[Path, Path]:
    """tubingen + starry night from ../shared/data, else astronaut + coffee from scikit-image."""
    if (SHARED / "content" / "tubingen.jpg").is_file():
        return SHARED / "content" / "tubingen.jpg", SHARED / "styles" / "starry_night.jpg"
    import skimage.data

    d = Path(os.path.dirname(skimage.data.__file__))
    return d / "astronaut.png", d / "coffee.png"


def same_pixels(content: str, style: str, size: int, tmp: Path) -> tuple[str, str]:
    """Resize both images once, losslessly saved at ``size``, so both methods and the metric see the same pixels.

    Resampling matters more than it looks: pastiche's bilinear and nst_core's own resize of the same
    style image differ by 5/255 on average, yet the Gram targets differ enough that pastiche's
    output scored 12x higher style loss against nst_core's targets than against its own.
    """
    from nst_core.image_io import load_image, save_image

    out = []
    for path in (content, style):
        dest = tmp / f"{Path(path).stem}_{size}.png"
        save_image(load_image(path, size), dest)
        out.append(str(dest))
    return out[0], out[1]


def run_pastiche(content: str, style: str, size: int, steps: int, out: str) -> dict:
    """pastiche's own loop (PasticheArtist.draw, one L-BFGS evaluation per step), timed without its set-up."""
    from pastiche.pastiche import PasticheArtist, save_image

    t0 = time.perf_counter()
    artist = PasticheArtist(content, [style], device="cpu", size=size, style_size=size)
    setup = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(steps):
        artist.draw()
    loop = time.perf_counter() - t0
    save_image(artist.pastiche, out)
    return {"setup_s": setup, "loop_s": loop, "steps": steps}


def score(content: str, style: str, image: str, size: int) -> dict:
    """The fixed metric: nst_core's content + style loss (caffe VGG19, default layers) weighted like pastiche."""
    from nst_core.image_io import load_image
    from nst_core.losses.perceptual import LossWeights, PerceptualLoss

    loss = PerceptualLoss.build(LossWeights(**METRIC))
    c = load_image(content, size).unsqueeze(0)
    loss.set_style([load_image(style, size).unsqueeze(0)])
    img = load_image(image).unsqueeze(0)
    if img.shape != c.shape:
        raise SystemExit(f"size mismatch: {image} is {tuple(img.shape)}, content {tuple(c.shape)}")
    import torch

    with torch.no_grad():
        return {k: float(v) for k, v in loss(img, loss.content_targets(c)).items()}


def run_ours(content: str, style: str, size: int, target: float | None, out: str, opts: dict) -> dict:
    """nst_core.optimize.scales with ``opts`` (scales, coarse_steps, steps, device, channels_last; none: the defaults),
    stopping once the metric reaches ``target`` if one is given; VGG load timed apart."""
    from nst_core.image_io import save_image
    from nst_core.losses.perceptual import LossWeights, PerceptualLoss
    from nst_core.optimize.scales import optimize

    opts = dict(opts)
    t0 = time.perf_counter()
    loss = PerceptualLoss.build(None if opts.pop("own_weights", False) else LossWeights(**METRIC))
    setup = time.perf_counter() - t0
    res = optimize(
        content, [style], size=size, stop_loss=target, loss=loss.weights, loss_fn=loss, progress=False, **opts
    )
    save_image(res.image, out)
    return {"setup_s": setup, "seconds": res.seconds, "steps": res.steps, "scales": res.scales}


def child(kind: str, kwargs: dict) -> None:
    result = {"pastiche": run_pastiche, "ours": run_ours, "score": score}[kind](**kwargs)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(result))


def spawn(kind: str, **kwargs: object) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", kind, json.dumps(kwargs)], capture_output=True, text=True, check=False
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode or not lines:
        raise SystemExit(f"{kind} failed:\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT ") :])


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    ap.add_argument("--pastiche-steps", type=int, default=500)
    ap.add_argument(
        "--ablation", action="store_true", help="also run the old variant: 2 scales, stop at pastiche's loss"
    )
    ap.add_argument(
        "--long", type=int, default=0, help="also run ours for exactly this many steps (a reference picture)"
    )
    ap.add_argument("--device", default="cpu", help="device of nst_core's run (pastiche runs on the CPU)")
    ap.add_argument("--pairs", nargs="+", default=list(PAIRS), help="CONTENT:STYLE names in ../shared/data")
    ap.add_argument("--content", help="a content image path (instead of --pairs)")
    ap.add_argument("--style", help="a style image path (with --content)")
    ap.add_argument("--cache", type=Path, help="folder keeping pastiche's runs between invocations")
    ap.add_argument("-o", "--out", type=Path, help="folder for every output picture (default: a temporary one)")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    return ap.parse_args()


def pastiche_run(args: argparse.Namespace, content: str, style: str, size: int, out: Path) -> dict:
    """pastiche's run (from ``--cache`` when it holds this pair, size and step count), its picture at ``out``."""
    key = f"{Path(content).stem}_{Path(style).stem}_{args.pastiche_steps}"
    cached = args.cache / f"{key}.json" if args.cache else None
    if cached and cached.is_file():
        shutil.copy(cached.with_suffix(".png"), out)
        return json.loads(cached.read_text())
    p = spawn("pastiche", content=content, style=style, size=size, steps=args.pastiche_steps, out=str(out))
    if cached:
        args.cache.mkdir(parents=True, exist_ok=True)
        shutil.copy(out, cached.with_suffix(".png"))
        cached.write_text(json.dumps(p))
    return p


def bench_pair(args: argparse.Namespace, size: int, content: str, style: str, tmp: Path) -> list[dict]:
    """pastiche's run at ``size``, then each variant of ours, each in its own process, all scored alike."""
    content, style = same_pixels(content, style, size, tmp)
    pair = f"{Path(content).stem.rsplit('_', 1)[0]} x {Path(style).stem.rsplit('_', 1)[0]}"
    p_out = tmp / f"{Path(content).stem}_{Path(style).stem}_pastiche.png"
    p = pastiche_run(args, content, style, size, p_out)
    target = spawn("score", content=content, style=style, image=str(p_out), size=size)
    variants: list[tuple[str, dict, float | None]] = [("defaults", {"own_weights": True}, None)]
    if args.ablation:
        variants.append(("defaults, pastiche's weights", {}, None))
        variants.append(("2 scales, stop at pastiche's loss", {"scales": 2, "coarse_steps": 150, "steps": 500}, 1.0))
    if args.long:
        variants.append((f"{args.long} steps", {"steps": args.long, "scales": 1}, None))
    rows = []
    for name, opts, stop in variants:
        o_out = tmp / f"{Path(content).stem}_{Path(style).stem}_{name.split(',')[0].replace(' ', '_')}.png"
        opts = opts | {"device": args.device}
        goal = target["total"] * stop if stop else None
        o = spawn("ours", content=content, style=style, size=size, target=goal, out=str(o_out), opts=opts)
        o_score = spawn("score", content=content, style=style, image=str(o_out), size=size)
        row = {"size": size, "pair": pair, "variant": name, "pastiche_loop_s": round(p["loop_s"], 1)}
        row |= {"pastiche_loss": target, "pastiche_rss_mb": round(p["peak_rss_mb"]), "ours_s": round(o["seconds"], 1)}
        row |= {"ours_steps": o["steps"], "ours_scales": o["scales"], "ours_loss": o_score}
        reached = all(o_score[k] <= target[k] for k in ("content", "style"))  # both terms: no trade-off hides
        row |= {"ours_rss_mb": round(o["peak_rss_mb"]), "reached": reached}
        row["speedup"] = round(p["loop_s"] / o["seconds"], 2)
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def print_table(rows: list[dict], pastiche_steps: int) -> None:
    print(
        f"\n| size | pair | variant | pastiche {pastiche_steps} steps (s) | nst_core (s) | steps | speed-up | "
        "loss pastiche / ours (content, style) | peak RSS pastiche / ours (MB) |"
    )
    print("|---|---|---|---:|---:|---:|---:|---|---:|")
    for r in rows:
        pl, ol = r["pastiche_loss"], r["ours_loss"]
        steps = " + ".join(str(s["steps"]) for s in r["ours_scales"])
        print(
            f"| {r['size']} | {r['pair']} | {r['variant']} | {r['pastiche_loop_s']} | {r['ours_s']} | {steps} | "
            f"{r['speedup']}x | {pl['total']:.3g} ({pl['content']:.3g}, {pl['style']:.3g}) / "
            f"{ol['total']:.3g} ({ol['content']:.3g}, {ol['style']:.3g}) | "
            f"{r['pastiche_rss_mb']} / {r['ours_rss_mb']} |"
        )


def main() -> None:
    args = parse_args()
    if args.child:
        child(args.child[0], json.loads(args.child[1]))
        return
    pairs = [(args.content, args.style)] if args.content else [pair_paths(p) for p in args.pairs]
    print(f"machine: {describe()}")
    names = ", ".join(f"{Path(c).name} x {Path(s).name}" for c, s in pairs)
    print(f"pairs: {names}; pastiche {args.pastiche_steps} steps")
    out = args.out or Path(tempfile.mkdtemp(prefix="nst-bench-"))
    out.mkdir(parents=True, exist_ok=True)
    rows = [row for size in args.sizes for c, s in pairs for row in bench_pair(args, size, str(c), str(s), out)]
    print_table(rows, args.pastiche_steps)
    (out / "results.json").write_text(json.dumps(rows, indent=1))
    print(f"\noutputs in {out}")


def pair_paths(pair: str) -> tuple[Path, Path]:
    """CONTENT:STYLE names in ../shared/data, or scikit-image's astronaut x coffee when that folder is absent."""
    content, style = pair.split(":")
    if (SHARED / "content").is_dir():
        return SHARED / "content" / f"{content}.jpg", SHARED / "styles" / f"{style}.jpg"
    return default_images()


if __name__ == "__main__":
    main()
