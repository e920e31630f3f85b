"""Iterative optimizer vs the `pastiche` package: time to reach pastiche's loss after N steps (default 500).

Both methods run on the same content/style images at the same size, each in its own
subprocess (so peak RSS is per method), in this one run. pastiche's output is scored with the
fixed nst_core metric (caffe VGG19, default layers, pastiche's weights, no TV); nst_core then runs
coarse-to-fine and stops as soon as it reaches that score. Reported: pastiche's loop time,
nst_core's time to the target, the ratio, and peak memory.

    python benchmarks/optimize_speed.py --sizes 256 512
"""

from __future__ import annotations

import argparse
import json
import os
import resource
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
    for name, path in (("content", content), ("style", style)):
        dest = tmp / f"{name}_{size}.png"
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
    from nst_core.losses import LossWeights, PerceptualLoss

    loss = PerceptualLoss.build(LossWeights(**METRIC))
    c = load_image(content, size).unsqueeze(0)
    loss.set_style([load_image(style, size).unsqueeze(0)])
    img = load_image(image).unsqueeze(0)
    if img.shape != c.shape:
        raise SystemExit(f"size mismatch: {image} is {tuple(img.shape)}, content {tuple(c.shape)}")
    import torch

    with torch.no_grad():
        return {k: float(v) for k, v in loss(img, loss.content_targets(c)).items()}


def run_ours(content: str, style: str, size: int, target: float, out: str, opts: dict) -> dict:
    """nst_core.optimize with ``opts`` (scales, coarse_steps, steps, device, channels_last), stopping once the
    metric reaches ``target``; VGG load timed apart."""
    from nst_core.image_io import save_image
    from nst_core.losses import LossWeights, PerceptualLoss
    from nst_core.optimize import optimize

    t0 = time.perf_counter()
    loss = PerceptualLoss.build(LossWeights(**METRIC))
    setup = time.perf_counter() - t0
    res = optimize(
        content, [style], size=size, stop_loss=target, loss=loss.weights, loss_fn=loss, progress=False, **opts
    )
    save_image(res.image, out)
    fine = [h for h in res.history if h[0] > (opts["coarse_steps"] * (opts["scales"] - 1))]
    return {
        "setup_s": setup,
        "seconds": res.seconds,
        "steps": res.steps,
        "final_loss": res.loss["total"],
        "reached": res.loss["total"] <= target * 1.001 or (fine and fine[-1][2] <= target),
        "history_tail": fine[-1] if fine else None,
    }


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
    ap.add_argument("--scales", type=int, default=2)
    ap.add_argument("--coarse-steps", type=int, default=150)
    ap.add_argument("--max-steps", type=int, default=500, help="cap on nst_core steps at the final scale")
    ap.add_argument("--ablation", action="store_true", help="also run single-scale and channels-first variants")
    ap.add_argument("--device", default="cpu", help="device of nst_core's run (pastiche runs on the CPU)")
    ap.add_argument("--content")
    ap.add_argument("--style")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    return ap.parse_args()


def bench_size(args: argparse.Namespace, size: int, content: str, style: str, tmp: Path) -> list[dict]:
    """pastiche's run at ``size``, then each variant of ours to the same loss, each in its own process."""
    content, style = same_pixels(content, style, size, tmp)
    p_out = str(tmp / f"pastiche_{size}.png")
    p = spawn("pastiche", content=content, style=style, size=size, steps=args.pastiche_steps, out=p_out)
    target = spawn("score", content=content, style=style, image=p_out, size=size)["total"]
    variants = [("coarse-to-fine", args.scales, True)]
    if args.ablation:
        variants += [("single-scale", 1, True), ("coarse-to-fine, channels-first", args.scales, False)]
    rows = []
    for name, scales, cl in variants:
        o_out = str(tmp / f"ours_{size}_{scales}_{int(cl)}.png")
        opts = {"scales": scales, "coarse_steps": args.coarse_steps, "steps": args.max_steps}
        opts |= {"channels_last": cl, "device": args.device}
        o = spawn("ours", content=content, style=style, size=size, target=target, out=o_out, opts=opts)
        o_score = spawn("score", content=content, style=style, image=o_out, size=size)["total"]
        row = {"size": size, "variant": name, "pastiche_loop_s": round(p["loop_s"], 1)}
        row |= {"pastiche_setup_s": round(p["setup_s"], 1), "pastiche_loss": target}
        row |= {"pastiche_rss_mb": round(p["peak_rss_mb"]), "ours_s": round(o["seconds"], 1)}
        row |= {"ours_setup_s": round(o["setup_s"], 1), "ours_steps": o["steps"], "ours_loss": o_score}
        row |= {"ours_rss_mb": round(o["peak_rss_mb"]), "reached": bool(o_score <= target * 1.01)}
        row["speedup"] = round(p["loop_s"] / o["seconds"], 2)
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def print_table(rows: list[dict], pastiche_steps: int) -> None:
    print(
        f"\n| size | variant | pastiche {pastiche_steps} steps (s) | nst_core to same loss (s) | steps | "
        "speed-up | loss pastiche / ours | peak RSS pastiche / ours (MB) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['size']} | {r['variant']} | {r['pastiche_loop_s']} | {r['ours_s']} | {r['ours_steps']} | "
            f"{r['speedup']}x | {r['pastiche_loss']:.4g} / {r['ours_loss']:.4g} | "
            f"{r['pastiche_rss_mb']} / {r['ours_rss_mb']} |"
        )


def main() -> None:
    args = parse_args()
    if args.child:
        child(args.child[0], json.loads(args.child[1]))
        return
    content, style = default_images()
    content, style = str(args.content or content), str(args.style or style)
    print(f"machine: {describe()}")
    print(f"content={Path(content).name} style={Path(style).name} pastiche_steps={args.pastiche_steps}")
    tmp = Path(tempfile.mkdtemp(prefix="nst-bench-"))
    rows = [row for size in args.sizes for row in bench_size(args, size, content, style, tmp)]
    print_table(rows, args.pastiche_steps)
    print(f"\noutputs in {tmp}")


if __name__ == "__main__":
    main()
