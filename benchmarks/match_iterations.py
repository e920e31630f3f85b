"""Optimizer iterations to match a network, from noise (Johnson et al.'s protocol) and from the photo.

Johnson et al. (2016, Fig. 5) judged a network by the L-BFGS iterations, started from noise, the optimizer
needs to reach the network's loss; `nst compare` starts from the content photo by default, a far stronger
baseline. This runs `nst compare --metric model` for each model, size and start on photos the networks never
saw, and prints per-photo iterations and the median of each, with the machine line. ``--reports DIR`` keeps
each comparison's report folder (``DIR/MODEL_SIZE_START``), the input of the release tool's cards.
``--curves DIR`` keeps the optimizer's loss curves and reuses them: the optimizer's run depends only on the
photo, the painting, the size, the start, the loss and the step cap (and the optimizer's code, all hashed into
each curve's key), so a second model with the same training loss is measured in seconds, not minutes.

    python benchmarks/match_iterations.py starry_night --sizes 256 --photos ../shared/data/content
    python benchmarks/match_iterations.py starry_night udnie model.onnx --style my.jpg --sizes 256,512 \\
        --starts noise,content --max-steps 300 --reports /tmp/match --json match.json
"""

from __future__ import annotations

import argparse
import hashlib
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


def _digest(*parts: object) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part if isinstance(part, bytes) else json.dumps(part, sort_keys=True, default=str).encode())
    return h.hexdigest()[:24]


def _optimizer_code() -> bytes:
    """The source of everything the optimizer's curve depends on: a change to it invalidates stored curves."""
    import nst_core

    root = Path(nst_core.__file__).parent
    files = sorted([*(root / "optimize").glob("*.py"), *(root / "losses").glob("*.py"), root / "image_io.py"])
    return b"".join(f.read_bytes() for f in files)


def curve_key(photo: Path, style: str, size: int, start: str, loss: Any, cap: int, vgg: str) -> str:
    """Everything an optimizer run from ``start`` on ``photo`` depends on, hashed."""
    from dataclasses import asdict

    return _digest(photo.read_bytes(), Path(style).read_bytes(), size, start, asdict(loss), cap, vgg, _optimizer_code())


def measure_with_curves(
    model: str, style: str, photos: list[Path], size: int, start: str, args: argparse.Namespace
) -> dict:
    """As `measure`, the optimizer's curve read from ``--curves`` when an earlier run stored it (else run and
    stored); the model is always run and scored anew."""
    from infer.compare import CompareConfig, compare
    from infer.compare.model import load_fast_model
    from infer.compare.results import find_reach
    from infer.compare.run import Metric, metric_spec
    from infer.models.shipped import median_text
    from nst_core.files import atomic_path
    from nst_core.image_io import open_image
    from nst_core.optimize.scales import resolve_device

    cfg = CompareConfig(steps=[args.max_steps], size=size, repeats=1, metric="model", init=start, progress=False)
    t0 = time.perf_counter()
    device = resolve_device(cfg.device)
    net = load_fast_model(model, device, cfg.device)
    spec = metric_spec(cfg, net)
    metric = Metric(spec.loss, cfg.vgg_weights, device)
    resized = metric.fit(photos, [open_image(p) for p in photos], size)
    metric.set_style(open_image(style), size)
    per, reused = {}, 0
    for photo, content in zip(photos, resized):
        key = curve_key(photo, style, size, start, spec.loss, args.max_steps, cfg.vgg_weights)
        stored = args.curves / f"{key}.json"
        if stored.is_file():
            reused += 1
        else:
            report = compare([photo], style, model, cfg)
            with atomic_path(stored) as tmp:
                tmp.write_text(json.dumps([list(row) for row in report.images[0].curve]))
        loss = metric.score(net.stylize(content), metric.targets(content)).total
        reach = find_reach(json.loads(stored.read_text()), loss, 0.0, args.max_steps)
        per[photo.stem] = reach.iterations
    return {
        "model": model,
        "size": size,
        "start": start,
        "iterations": per,
        "median": median_text(list(per.values()), args.max_steps),
        "max_steps": args.max_steps,
        "seconds": round(time.perf_counter() - t0, 1),
        "curves_reused": reused,
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
    p.add_argument("--curves", type=Path, help="keep the optimizer's curves here and reuse those already kept")
    args = p.parse_args()
    photos = [args.photos / n for n in args.names]
    missing = [str(f) for f in photos if not f.is_file()]
    if missing:
        print(f"no such photo: {', '.join(missing)}", file=sys.stderr)
        return 2
    for folder in (args.reports, args.curves):
        if folder:
            folder.mkdir(parents=True, exist_ok=True)
    if args.reports and args.curves:
        print("--reports and --curves: give one (a reused curve has no report folder)", file=sys.stderr)
        return 2
    machine = describe(machine_info())
    rows = []
    for model in args.models:
        style = style_of(model, args.style)
        for size in args.sizes:
            for begin in args.starts:
                how = measure_with_curves if args.curves else measure
                rows.append(how(model, style, photos, size, begin, args))
                print(row_text(rows[-1]), flush=True)
    print(machine)
    if args.json:
        args.json.write_text(json.dumps({"machine": machine, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
