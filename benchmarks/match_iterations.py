"""Optimizer iterations to match a network, from noise (Johnson et al.'s protocol) and from the photo.

Johnson et al. (2016, Fig. 5) judged a network by the L-BFGS iterations, started from noise, the optimizer
needs to reach the network's loss; `nst compare` starts from the content photo by default, a far stronger
baseline. This runs `nst compare --metric model` for each model, size and start on photos the networks never
saw, and prints per-photo iterations and the median of each, with the machine line. ``--reports DIR`` keeps
each comparison's report folder (``DIR/MODEL_SIZE_START``), the input of the release tool's cards.

    python benchmarks/match_iterations.py starry_night --sizes 256 --photos ../shared/data/content
    python benchmarks/match_iterations.py starry_night udnie model.onnx --style my.jpg --sizes 256,512 \\
        --starts noise,content --max-steps 300 --reports /tmp/match --json match.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from nst_core.cli.options import list_of, positive_int
from nst_core.machine import describe, machine_info

#: Photos no shipped network trained on (the development data's content folder), three as the issue asks.
DEFAULT_PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "data" / "content"
DEFAULT_NAMES = ("tubingen.jpg", "golden_gate.jpg", "chicago.jpg")


def style_of(model: str, given: str | None) -> str:
    """The style image to score with: ``--style``, else the shipped model's built-in painting."""
    from infer.models import shipped_models

    if given:
        return given
    for m in shipped_models():
        if m.name == model and m.style_image is not None:
            return str(m.style_image)
    raise SystemExit(f"{model}: not a shipped model with a built-in style; give --style")


def measure(model: str, style: str, photos: list[Path], size: int, start: str, args: argparse.Namespace) -> dict:
    """One `nst compare --metric model` run: iterations to match per photo (None: not within --max-steps)."""
    from infer.compare import CompareConfig, compare, write_report
    from infer.models.shipped import median_text

    cfg = CompareConfig(steps=[args.max_steps], size=size, repeats=1, metric="model", init=start, progress=False)
    t0 = time.perf_counter()
    report = compare(photos, style, model, cfg)
    if args.reports:
        write_report(report, args.reports / f"{Path(model).stem}_{size}_{start}")
    per = {im.name: im.reach.iterations if im.reach.reached else None for im in report.images}
    median = median_text(list(per.values()), args.max_steps)  # ">300" counts as above every number
    return {
        "model": model,
        "size": size,
        "start": start,
        "iterations": per,
        "median": median,
        "max_steps": args.max_steps,
        "seconds": round(time.perf_counter() - t0, 1),
    }


def row_text(row: dict[str, Any]) -> str:
    """``starry_night | 256 px | from noise | tubingen 72, ... | median 72 | 95.1 s``"""
    over = f">{row['max_steps']}"
    per = ", ".join(f"{name} {over if n is None else n}" for name, n in row["iterations"].items())
    cells = (row["model"], f"{row['size']} px", f"from {row['start']}", per, f"median {row['median']}")
    return " | ".join((*cells, f"{row['seconds']} s"))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="+", help="shipped model names or model files")
    p.add_argument("--style", help="style image for every model (default: each shipped model's painting)")
    p.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS, help="folder of photos the networks never saw")
    p.add_argument("--names", type=list_of(str), default=list(DEFAULT_NAMES), help="photos of --photos to use")
    p.add_argument("--sizes", type=list_of(positive_int), default=[256, 512], help="longer sides, comma-separated")
    p.add_argument("--starts", type=list_of(str), default=["noise", "content"], help="noise, content or both")
    p.add_argument("--max-steps", type=positive_int, default=300, help="L-BFGS iterations at most per run")
    p.add_argument("--reports", type=Path, help="keep each comparison's report folder here")
    p.add_argument("--json", type=Path, help="also write the rows here")
    args = p.parse_args()
    photos = [args.photos / n for n in args.names]
    missing = [str(f) for f in photos if not f.is_file()]
    if missing:
        print(f"no such photo: {', '.join(missing)}", file=sys.stderr)
        return 2
    if args.reports:
        args.reports.mkdir(parents=True, exist_ok=True)
    machine = describe(machine_info())
    rows = []
    for model in args.models:
        style = style_of(model, args.style)
        for size in args.sizes:
            for begin in args.starts:
                rows.append(measure(model, style, photos, size, begin, args))
                print(row_text(rows[-1]), flush=True)
    print(machine)
    if args.json:
        args.json.write_text(json.dumps({"machine": machine, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
