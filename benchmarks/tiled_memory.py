"""Peak memory and time of one loss+gradient evaluation, whole image vs tiled (nst_core.optimize.tiled_loss).

Each case runs in a fresh subprocess, so its peak RSS (ru_maxrss; on CUDA also the peak allocated
GPU memory) is its own: torch, the VGG weights, the content targets and one value_and_grad. The
whole-image case is skipped at 4096 px, where it would not fit. ``--halo-sweep`` instead measures how
close the tiled loss and gradient come to the whole image's for several halos, which set the default.

    python benchmarks/tiled_memory.py --sizes 512 1024 2048 --tile 512
    python benchmarks/tiled_memory.py --halo-sweep --sizes 256 512 --tile 128 --halos 0 32 64 80
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from nst_core.machine import describe

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
FULL_MAX = 2048  # a whole-image evaluation above this needs more than 16 GiB


def default_images() -> tuple[Path, Path]:
    """tubingen + starry night from ../shared/data, else astronaut + coffee from scikit-image."""
    if (SHARED / "content" / "tubingen.jpg").is_file():
        return SHARED / "content" / "tubingen.jpg", SHARED / "styles" / "starry_night.jpg"
    import skimage.data

    d = Path(os.path.dirname(skimage.data.__file__))
    return d / "astronaut.png", d / "coffee.png"


def setup(size: int, device: str, channels_last: bool = False):
    """The default loss with its style set (style at <= 512 px), the content at ``size`` and a noisy start image."""
    import torch

    from nst_core.image_io import load_image
    from nst_core.losses.perceptual import PerceptualLoss

    content_path, style_path = default_images()
    loss = PerceptualLoss.build().to(device)
    if channels_last:
        loss = loss.to(memory_format=torch.channels_last)
    loss.set_style([load_image(style_path, min(size, 512)).unsqueeze(0).to(device)])
    content = load_image(content_path, size).unsqueeze(0).to(device)
    gen = torch.Generator().manual_seed(0)
    image = (content + 0.1 * torch.randn(content.shape, generator=gen).to(device)).clamp(0, 1)
    return loss, content, image


def child(case: dict) -> None:
    """One case: build, content targets, then ``repeats`` value_and_grad calls; prints a RESULT line."""
    import torch

    from nst_core.optimize.tiled_loss import TiledLoss

    device = case["device"]
    loss, content, image = setup(case["size"], device, case["channels_last"])
    tiled = TiledLoss(loss, tile=case["tile"], halo=case["halo"])
    t0 = time.perf_counter()
    targets = tiled.content_targets(content)
    targets_s = time.perf_counter() - t0
    times = []
    for _ in range(case["repeats"]):
        t0 = time.perf_counter()
        terms, _grad = tiled.value_and_grad(image, targets)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
        del _grad
    result = {
        **case,
        "shape": list(image.shape[-2:]),
        "tiles": len(tiled.tiles(*image.shape[-2:])),
        "targets_s": round(targets_s, 2),
        "times_s": [round(t, 2) for t in times],
        "median_s": round(statistics.median(times), 2),
        "total": terms["total"],
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    if device.startswith("cuda"):
        result["peak_cuda_mb"] = round(torch.cuda.max_memory_allocated() / 2**20)
    print("RESULT " + json.dumps(result), flush=True)


def spawn(case: dict) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(case)], capture_output=True, text=True, check=False
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        return {**case, "error": (proc.stderr.strip().splitlines() or ["?"])[-1]}
    return json.loads(lines[-1][len("RESULT ") :])


def halo_sweep(sizes: list[int], tile: int, halos: list[int], device: str) -> None:
    """Tiled vs whole-image loss terms and gradient, per halo: relative errors, cosine, seam ratio."""
    import torch

    from nst_core.optimize.tiled_loss import TiledLoss

    for size in sizes:
        loss, content, image = setup(size, device)
        whole = TiledLoss(loss, tile=None)
        ref_terms, ref_grad = whole.value_and_grad(image, whole.content_targets(content))
        for halo in halos:
            tiled = TiledLoss(loss, tile=tile, halo=halo)
            terms, grad = tiled.value_and_grad(image, tiled.content_targets(content))
            g, r = grad.double().flatten(), ref_grad.double().flatten()
            row = {
                "size": size,
                "tile": tile,
                "halo": halo,
                "tiles": len(tiled.tiles(*image.shape[-2:])),
                **{f"{k}_rel": abs(terms[k] - ref_terms[k]) / max(abs(ref_terms[k]), 1e-30) for k in terms},
                "grad_1-cos": 1 - float(torch.nn.functional.cosine_similarity(g, r, dim=0)),
                "grad_rel": float((g - r).norm() / r.norm()),
                **seam_errors(grad, ref_grad, tiled.tiles(*image.shape[-2:])),
            }
            print(json.dumps({k: f"{v:.3g}" if isinstance(v, float) else v for k, v in row.items()}), flush=True)


def seam_errors(grad, ref, tiles, width: int = 4) -> dict[str, float]:
    """Mean |grad - ref| within ``width`` px of an inner tile edge: relative to the mean |ref| there
    (``seam_rel``) and to the mean |grad - ref| elsewhere (``seam_ratio``, 1: errors not concentrated)."""
    import torch

    h, w = grad.shape[-2:]
    near = torch.zeros(h, w, dtype=torch.bool, device=grad.device)
    for y0, _, x0, _ in (t.core for t in tiles):
        if y0 > 0:
            near[max(0, y0 - width) : y0 + width, :] = True
        if x0 > 0:
            near[:, max(0, x0 - width) : x0 + width] = True
    diff, mag = (grad - ref).abs().sum(1)[0], ref.abs().sum(1)[0]
    return {
        "seam_rel": float(diff[near].mean() / mag[near].mean()),
        "seam_ratio": float(diff[near].mean() / diff[~near].mean()),
    }


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[512, 1024, 2048], help="long sides in px")
    ap.add_argument("--tile", type=int, default=512)
    ap.add_argument("--halo", type=int, default=None, help="default: the tiled loss's own (exact) halo")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--no-full", action="store_true", help="tiled cases only")
    ap.add_argument("--halo-sweep", action="store_true")
    ap.add_argument("--halos", type=int, nargs="+", default=[0, 32, 64, 80])
    ap.add_argument("--child", help=argparse.SUPPRESS)
    return ap.parse_args()


def main() -> None:
    args = parse_args()
    if args.child:
        child(json.loads(args.child))
        return
    print(describe(), flush=True)
    if args.halo_sweep:
        halo_sweep(args.sizes, args.tile, args.halos, args.device)
        return
    base = {"tile": args.tile, "halo": args.halo, "repeats": args.repeats, "device": args.device}
    base["channels_last"] = args.channels_last
    for size in args.sizes:
        modes = ["tiled"] if args.no_full or size > FULL_MAX else ["full", "tiled"]
        for mode in modes:
            case = {**base, "size": size, "mode": mode} | ({"tile": None} if mode == "full" else {})
            print(json.dumps(spawn(case)), flush=True)


if __name__ == "__main__":
    main()
