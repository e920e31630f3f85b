"""Your own style on a CPU: the `cpu` preset from a painting to a network, judged as Johnson et al. judged theirs.

For each style image: `nst train -c cpu` (its 30 minutes unless --max-time), then the optimizer's iterations
to match the network from noise on photos it never saw (`match_iterations.py`: 256 px up to 200 iterations,
512 px up to 120), then a contact sheet per size (painting, then each photo and its stylized picture) in
benchmarks/figures/. A run folder that exists is resumed (`--resume`) and a finished one is only measured.
Rows go to benchmarks/results/cpu_recipe.json, keyed by style (and `+NAME` per --also). The optimizer's curves are
kept in runs/curves and reused (`match_iterations.py --curves`). Run nothing else heavy beside it: the
preset trains for a fixed time, so a busy machine gives a weaker network.

    python benchmarks/cpu_recipe.py STYLE.jpg [STYLE2.jpg ...] --data photos/ --photos held_out/
    python benchmarks/cpu_recipe.py STYLE.jpg --also size512    # the preset with configs/size512.yaml added
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results" / "cpu_recipe.json"
FIGURES = ROOT / "benchmarks" / "figures"
#: (size, L-BFGS iterations at most): the goals are 100 at 256 px and 50 at 512 px, so both caps are above them.
SIZES = ((256, 200), (512, 120))


def recipe_name(style: Path, args: argparse.Namespace) -> str:
    """``candy``, or ``candy+size512`` with ``--also size512``: the run's, the results' and the sheets' name."""
    return "+".join([style.stem, *args.also])


def train(style: Path, args: argparse.Namespace) -> tuple[Path, dict]:
    """The preset's run for ``style``: trained, resumed or (when finished) left alone; its --json summary."""
    run = args.runs / f"cpu_{recipe_name(style, args).replace('+', '_')}"
    cmd = ["nst", "train", "-c", "cpu", *(a for name in args.also for a in ("-c", name))]
    cmd += ["--style", str(style), "--data", str(args.data), "-o", str(run), "--json"]
    cmd += ["--sample-images", str(args.photos)]
    if args.max_time:
        cmd += ["--max-time", args.max_time]
    summary_file = run / "cpu_recipe_train.json"
    if summary_file.is_file():
        return run, json.loads(summary_file.read_text())
    if (run / "checkpoints").is_dir():
        cmd.append("--resume")
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
    summary = json.loads(out)
    summary_file.write_text(json.dumps(summary, indent=2))
    return run, summary


def match(run: Path, style: Path, args: argparse.Namespace) -> list[dict]:
    """Iterations to match from noise at each size (`match_iterations.py`, one process per size)."""
    rows = []
    for size, cap in SIZES:
        out = run.with_name(f"{run.name}_{size}.json")
        cmd = [sys.executable, str(ROOT / "benchmarks" / "match_iterations.py"), str(run), "--style", str(style)]
        cmd += ["--photos", str(args.photos), "--sizes", str(size), "--starts", "noise", "--max-steps", str(cap)]
        cmd += ["--curves", str(args.curves)]
        subprocess.run([*cmd, "--json", str(out)], check=True)
        rows += json.loads(out.read_text())["rows"]
    return rows


def contact_sheet(run: Path, style: Path, args: argparse.Namespace, size: int) -> Path:
    """The painting, then each held-out photo beside its stylized picture, at ``size`` (as `nst stylize` paints)."""
    from match_iterations import DEFAULT_NAMES

    from infer.stylize import Stylizer

    stylizer = Stylizer(run)
    pairs = []
    for name in DEFAULT_NAMES:
        photo = Image.open(args.photos / name).convert("RGB")
        photo.thumbnail((size, size), Image.Resampling.LANCZOS)
        pairs += [photo, stylizer.stylize(photo)]
    painting = Image.open(style).convert("RGB")
    painting.thumbnail((size, size), Image.Resampling.LANCZOS)
    cells = [painting, *pairs]
    width, height = sum(c.width for c in cells) + 4 * len(cells), max(c.height for c in cells) + 20
    sheet = Image.new("RGB", (width, height), "white")
    x = 0
    for cell in cells:
        sheet.paste(cell, (x, 20))
        x += cell.width + 4
    presets = " ".join(f"-c {name}" for name in ["cpu", *args.also])
    ImageDraw.Draw(sheet).text((4, 4), f"{style.stem}: `nst train {presets}` network at {size} px", fill="black")
    FIGURES.mkdir(parents=True, exist_ok=True)
    path = FIGURES / f"cpu_{recipe_name(style, args).replace('+', '_')}_{size}.jpg"
    sheet.save(path, quality=88)
    return path


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("styles", nargs="+", type=Path, help="painting files")
    p.add_argument("--data", type=Path, default=DATA / "photos_large", help="training photos")
    p.add_argument("--photos", type=Path, default=DATA / "content", help="photos never trained on")
    p.add_argument("--runs", type=Path, default=ROOT / "runs", help="where the run folders go")
    p.add_argument("--max-time", help="the preset's budget instead of its 30 minutes")
    p.add_argument("--also", action="append", default=[], help="a config added after `cpu` (e.g. size512)")
    p.add_argument("--curves", type=Path, default=ROOT / "runs" / "curves", help="the optimizer's curves, reused")
    args = p.parse_args()
    sys.path.insert(0, str(ROOT / "benchmarks"))
    results = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    for style in args.styles:
        run, summary = train(style, args)
        rows = match(run, style, args)
        sheets = [str(contact_sheet(run, style, args, size).relative_to(ROOT)) for size, _ in SIZES]
        results[recipe_name(style, args)] = {"train": summary, "match": rows, "sheets": sheets}
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=2))
        medians = ", ".join(f"{r['size']} px from noise: median {r['median']}" for r in rows)
        steps = f"{summary.get('step')} steps in {summary.get('seconds')} s"
        print(f"{recipe_name(style, args)}: {steps}; {medians}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
