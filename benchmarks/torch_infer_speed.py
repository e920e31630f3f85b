"""Inference speed of the transformation network in PyTorch on any device (the GPU figures; `nst stylize`
runs onnxruntime, whose CPU figures are infer_speed.py's).

Baseline, measured in the same run: pytorch/examples' way, the standard network in fp32, NCHW, eager.
Against it: bf16 autocast, channels-last, and the small variant. Batch 1, random weights (speed does not
depend on them), a real photo cropped square (or 16:9 for the 1080p row). Medians of timed forwards after
warm-up; each forward is followed by a device sync.

    python benchmarks/torch_infer_speed.py --device cuda --sizes 256 512 1024 1080p
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nst_core.image_io import open_image, pil_to_tensor  # noqa: E402
from nst_core.machine import describe, machine_info  # noqa: E402
from nst_core.transformer import TransformerNet  # noqa: E402

#: name -> (variant, bf16, channels_last); the first is the baseline.
SETUPS = {
    "standard fp32 (baseline)": ("standard", False, False),
    "standard bf16": ("standard", True, False),
    "standard bf16 channels-last": ("standard", True, True),
    "small fp32": ("small", False, False),
    "small bf16 channels-last": ("small", True, True),
}


def frame(size: str) -> torch.Tensor:
    """skimage's astronaut resized to SIZE x SIZE, or 1920 x 1080 for "1080p"."""
    w, h = (1920, 1080) if size == "1080p" else (int(size), int(size))
    return pil_to_tensor(open_image("skimage:astronaut").convert("RGB").resize((w, h))).unsqueeze(0)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def median_ms(setup: tuple[str, bool, bool], x: torch.Tensor, device: torch.device, warmup: int, runs: int) -> float:
    variant, bf16, channels_last = setup
    memory = torch.channels_last if channels_last else torch.contiguous_format
    net = TransformerNet.from_variant(variant).to(device, memory_format=memory).eval()
    x = x.to(device).contiguous(memory_format=memory)
    ctx = torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    times = []
    with torch.inference_mode(), ctx:
        for i in range(warmup + runs):
            sync(device)
            t = time.perf_counter()
            net(x)
            sync(device)
            if i >= warmup:
                times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--sizes", nargs="+", default=["256", "512", "1024", "1080p"])
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--runs", type=int, default=30)
    args = p.parse_args()
    device = torch.device(args.device)
    torch.backends.cudnn.benchmark = True  # fixed input size: let cuDNN pick its fastest kernels
    print(f"machine: {describe(machine_info(args.device))}")
    print(f"batch 1, median ms of {args.runs} forwards after {args.warmup} warm-up, device {device}")
    for size in args.sizes:
        x = frame(size)
        base = None
        for name, setup in SETUPS.items():
            ms = median_ms(setup, x, device, args.warmup, args.runs)
            base = base or ms
            print(f"{size:>6}  {name:<30} {ms:9.2f} ms  {1000 / ms:8.1f} fps  {base / ms:5.2f}x", flush=True)


if __name__ == "__main__":
    main()
