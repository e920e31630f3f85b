"""Maintainer tool: put figures measured after shipping into shipped models, their metadata and their cards.

`tools/ship.py` stores the iterations-to-match figures a model ships with. Figures measured later (another
optimizer start or size, or a model never measured, such as a distilled ``_fast`` one) reach the file through
this: its ``nst.compare`` metadata gains them (a figure of the same size and start is replaced, the others
kept), the file is rewritten in place atomically (graph and weights untouched), and its card and sample picture
are made again from it (the picture as `nst stylize` paints it today). Every input is read and checked before
any file is written.

    python benchmarks/match_iterations.py starry_night starry_night_fast --sizes 256 --starts noise,content \\
        --curves curves/ --json match.json
    python tools/figures.py infer/models/starry_night*.onnx --match match.json --docs docs/models
    python tools/figures.py infer/models/udnie.onnx --compare reports/udnie_512_noise --docs docs/models
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from infer.models import shipped  # noqa: E402
from nst_core.cli import OneLineParser, exit_status  # noqa: E402
from nst_core.errors import NSTError  # noqa: E402
from nst_core.log import configure  # noqa: E402
from tools.ship import SAMPLE_PHOTOS, compare_figures, read_compare, rewrite_metadata, write_card  # noqa: E402

ROW_KEYS = ("model", "size", "start", "iterations", "median", "max_steps")


def read_match(file: Path) -> dict[str, list[dict[str, Any]]]:
    """The figures of a `benchmarks/match_iterations.py --json` file, by model name (a file's stem), in the
    form `tools.ship.read_compare` gives a report folder's."""
    try:
        doc = json.loads(file.read_text(encoding="utf-8"))
        machine, rows = str(doc["machine"]), doc["rows"]
        by_model: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            missing = [k for k in ROW_KEYS if k not in row]
            if missing:
                raise KeyError(", ".join(missing))
            photos = [{"name": name, "iterations": n} for name, n in row["iterations"].items()]
            figures = {"size": int(row["size"]), "photos": photos, "max_steps": int(row["max_steps"])}
            figures |= {"median": str(row["median"]), "machine": machine, "start": str(row["start"])}
            by_model.setdefault(Path(row["model"]).stem, []).append(figures)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise NSTError(f"{file}: not a match_iterations.py --json file ({type(e).__name__}: {e})") from None
    return by_model


def gather(models: Sequence[Path], match: Sequence[Path], reports: Sequence[Path]) -> dict[Path, list[dict]]:
    """Each model file's new figures: match rows named after it, and every report folder when one model is given."""
    if reports and len(models) != 1:
        raise NSTError("--compare reports name no model: give exactly one model file with them")
    rows: dict[str, list[dict[str, Any]]] = {}
    for file in match:
        for name, figures in read_match(file).items():
            rows.setdefault(name, []).extend(figures)
    found = {m: [*rows.get(m.stem, []), *(read_compare(r) for r in reports)] for m in models}
    for model, figures in found.items():
        if not model.is_file():
            raise NSTError(f"{model}: no such model file")
        if not figures:
            raise NSTError(f"{model}: no figures for {model.stem!r} in {', '.join(map(str, match))}")
    return found


def refigure(model: Path, figures: Sequence[dict[str, Any]], docs: Path, photos: Sequence[str] | None) -> Path:
    """``model``'s metadata with ``figures`` added; its card ``docs/<name>.md`` and sample picture made again."""
    meta = shipped.read_metadata(model)
    current = shipped.ShippedModel(model.stem, model, meta)
    values = {shipped.COMPARE_KEY: json.dumps(compare_figures(current.compare, figures))}
    photos = photos or current.sample_photos or SAMPLE_PHOTOS
    values[shipped.SAMPLE_PHOTOS_KEY] = json.dumps(list(photos))
    rewrite_metadata(model, values)
    updated = shipped.ShippedModel(model.stem, model, meta | values)  # what the rewritten file now holds
    return write_card(updated, json.loads(meta.get("nst.config", "{}")), photos, docs)


def main(argv: Sequence[str] | None = None) -> int:
    p = OneLineParser(prog="tools/figures.py", description=__doc__.split("\n\n")[0])
    p.add_argument("models", nargs="+", type=Path, help="shipped ONNX files (infer/models/NAME.onnx)")
    p.add_argument("--match", type=Path, nargs="*", default=[], help="match_iterations.py --json files")
    p.add_argument("--compare", type=Path, nargs="*", default=[], metavar="REPORT", help="nst compare report folders")
    p.add_argument("--docs", type=Path, required=True, help="the cards' folder (docs/models)")
    p.add_argument("--photos", nargs="+", help="the sample picture's photos (default: the file's own record)")
    args = p.parse_args(argv)
    configure(p.prog)
    return exit_status(lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    if not args.match and not args.compare:
        raise NSTError("nothing to add: give --match files or --compare report folders")
    for model, figures in gather(args.models, args.match, args.compare).items():
        card = refigure(model, figures, args.docs, args.photos)
        keys = sorted(shipped.compare_key(f["size"], f["start"]) for f in figures)
        print(json.dumps({"model": str(model), "card": str(card), "figures": keys}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
