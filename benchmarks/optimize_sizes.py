"""Time and peak memory of each scale of a default `nst optimize` run, across --resume sessions.

The run is `nst optimize` with its defaults (auto scales, convergence stop, the memory plan of --max-memory),
through the same function, with a step callback that reads the process's peak RSS (ru_maxrss, which only
grows): its value at a scale's last step is the peak of everything up to that scale's end. A poster run
takes hours, so ``--max-time`` ends a session with the run's checkpoint and the next call (``--resume``)
goes on; each session appends one JSON line to ``--log``: the machine, and per scale the steps and seconds
taken in that session and the peak so far.

    python benchmarks/optimize_sizes.py --size 4096 -o /tmp/poster.png --max-time 2h --log /tmp/poster.jsonl
    python benchmarks/optimize_sizes.py --size 4096 -o /tmp/poster.png --resume --log /tmp/poster.jsonl
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

from nst_core.builtin_styles import resolve_style
from nst_core.image_io import save_image
from nst_core.machine import describe
from nst_core.optimize.cli import checkpoint_path
from nst_core.optimize.config import OptimizeConfig
from nst_core.optimize.scales import optimize

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--content", default=str(SHARED / "content" / "tubingen.jpg"))
    ap.add_argument("--style", default="starry_night")
    ap.add_argument("--size", type=int, required=True)
    ap.add_argument("-o", "--output", type=Path, required=True)
    ap.add_argument("--max-memory", type=float, default=OptimizeConfig.max_memory_gb)
    ap.add_argument("--max-time", type=float, help="seconds of this session")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--log", type=Path, required=True, help="JSON lines, one per session")
    args = ap.parse_args()

    scales: dict[str, dict[str, float]] = {}  # size -> steps, seconds (this session), peak so far
    last = [time.perf_counter()]

    def callback(step: int, seconds: float, image, terms: dict[str, float]) -> None:
        now = time.perf_counter()
        entry = scales.setdefault(f"{image.shape[-1]}x{image.shape[-2]}", {"steps": 0, "seconds": 0.0})
        entry["steps"] += 1
        entry["seconds"] += now - last[0]
        entry["peak_gib"] = round(peak_gib(), 3)
        last[0] = now

    cfg = OptimizeConfig(
        size=args.size,
        max_memory_gb=args.max_memory,
        checkpoint=str(checkpoint_path(args.output)),
        resume=args.resume,
        max_time=args.max_time,
    )
    t0 = time.perf_counter()
    result = optimize(args.content, resolve_style(args.style), cfg, callback=callback)
    if not result.out_of_time:
        save_image(result.image, args.output)
    line = {
        "machine": describe(),
        "size": args.size,
        "max_memory_gib": args.max_memory,
        "session_seconds": round(time.perf_counter() - t0, 1),
        "session_peak_gib": round(peak_gib(), 3),
        "finished": not result.out_of_time,
        "steps_so_far": result.steps,
        "run_seconds_so_far": round(result.seconds, 1),
        "scales": scales,
        "scale_results": result.scales,
        "loss": result.loss,
    }
    with args.log.open("a") as f:
        f.write(json.dumps(line) + "\n")
    print(json.dumps(line))


if __name__ == "__main__":
    main()
