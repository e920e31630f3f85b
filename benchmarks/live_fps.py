"""Frames per second of `nst live` on a recorded clip, at a few sizes: is it real time on this machine?

The clip stands in for a webcam: 640x480 at 30 frames/s, a slow pan across a real photo (scikit-image's
astronaut), recorded once with `infer.stylize.video.open_writer`. Each size runs the live loop
(`infer.live.run.run_live`: OpenCV reads, the shipped network stylizes, nothing shown or recorded) over the whole
clip; sizes run in interleaved rounds, so background load hits them alike, and the medians are printed.

    python benchmarks/live_fps.py                              # 256, 320, 480 px, 3 rounds, ~1 min on 2 cores
    python benchmarks/live_fps.py --model udnie --sizes 240,360 --rounds 5 --json out.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

from nst_core.cli.options import list_of, positive_int
from nst_core.image_io import open_image
from nst_core.machine import describe, machine_info

WIDTH, HEIGHT, FPS = 640, 480, 30


def record_clip(path: Path, frames: int) -> Path:
    """A 640x480 clip panning slowly across the astronaut photo (scaled to 960 px wide), as a camera would film it."""
    from infer.stylize.video import open_writer

    photo = np.asarray(open_image("skimage:astronaut").resize((960, 960)))
    with open_writer(path, FPS, quality=80) as writer:
        for i in range(frames):
            x, y = (i * 5) % (960 - WIDTH), (i * 3) % (960 - HEIGHT)
            writer.write(np.ascontiguousarray(photo[y : y + HEIGHT, x : x + WIDTH]))
    return path


def one_run(stylizer: object, clip: Path, size: int) -> dict[str, float]:
    """The live loop over the whole clip at ``size``: frames per second and the median ms per frame."""
    from infer.live.run import open_capture, run_live
    from infer.stylize.stylizer import FrameOptions

    capture = open_capture(str(clip))
    try:
        result = run_live(stylizer, capture, FrameOptions(size=size))  # type: ignore[arg-type]
    finally:
        capture.close()
    return {"fps": result.frames_per_second, "ms": statistics.median(result.frame_ms), "frames": result.frames}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="starry_night", help="a shipped model's name or an .onnx file")
    p.add_argument("--sizes", type=list_of(positive_int), default=[256, 320, 480], help="longer sides, comma-separated")
    p.add_argument("--frames", type=positive_int, default=60, help="frames in the recorded clip")
    p.add_argument("--precision", default="auto", help="auto (int8 copies on the CPU, as nst live) or fp32")
    p.add_argument("--rounds", type=positive_int, default=3, help="interleaved rounds over the sizes")
    p.add_argument("--threads", type=positive_int, help="onnxruntime CPU threads (default: its own choice)")
    p.add_argument("--json", type=Path, help="also write the figures to this file")
    args = p.parse_args()

    from infer.models.shipped import resolve_model
    from infer.stylize.stylizer import Stylizer

    machine = machine_info()
    print(f"machine: {describe(machine)}", file=sys.stderr)
    stylizer = Stylizer(resolve_model(args.model), threads=args.threads, precision=args.precision, spinning=False)
    runs: dict[int, list[dict[str, float]]] = {size: [] for size in args.sizes}
    with tempfile.TemporaryDirectory() as tmp:
        clip = record_clip(Path(tmp) / "clip.mp4", args.frames)
        one_run(stylizer, clip, min(args.sizes))  # warm-up: onnxruntime's first runs plan their memory
        for r in range(args.rounds):
            for size in args.sizes:
                runs[size].append(one_run(stylizer, clip, size))
                print(f"  round {r + 1} {size} px: {runs[size][-1]['fps']:.1f} frames/s", file=sys.stderr)
    rows = {
        size: {
            "frames_per_second": round(statistics.median(x["fps"] for x in got), 2),
            "median_ms_per_frame": round(statistics.median(x["ms"] for x in got), 1),
            "frames": int(got[0]["frames"]),
        }
        for size, got in runs.items()
    }
    print(
        f"nst live, {args.model} ({stylizer.provider}), {WIDTH}x{HEIGHT} clip at {FPS} frames/s, medians of "
        f"{args.rounds} rounds; machine: {describe(machine)}"
    )
    print("| longer side | frames/s | ms/frame |")
    print("|---:|---:|---:|")
    for size, row in rows.items():
        print(f"| {size} px | {row['frames_per_second']:.1f} | {row['median_ms_per_frame']:.0f} |")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine, "model": args.model, "sizes": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
