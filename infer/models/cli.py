"""`nst models`: the pretrained models that ship with the package, with their training and quality figures.

Offline and instant: the table comes from each file's own metadata (`infer.models.shipped`); neither torch nor
onnxruntime is imported.
"""

from __future__ import annotations

import argparse
import json

from nst_core.cli.options import add_command, add_report_options

HELP = "list the pretrained models that ship with the package (style, training, quality)"
DESCRIPTION = (
    "The shipped models, usable by name wherever a model is taken (nst stylize --model NAME, nst compare, "
    "nst app). Iterations to match: the median number of optimizer iterations `nst compare --metric model` "
    "needed to reach the network's loss on held-out photos (higher is better; - when not measured), the "
    "optimizer started from noise as Johnson et al. measured (noise@N) or from the photo, a stricter test "
    "(photo@N). "
    "Set NST_MODELS_DIR to list another folder of models."
)
EXAMPLES = (
    "nst models",
    "nst models --json",
    "nst stylize photo.jpg --model starry_night -o out.png",
)
#: The compare sizes the table shows (the model cards' compare table has the same two).
SIZES = (256, 512)
#: The optimizer's starts, as the columns name them: (start, column prefix).
STARTS = (("noise", "noise"), ("content", "photo"))
COLUMNS = ("name", "style", "variant", "steps", "images", "size", *(f"{p}@{s}" for _, p in STARTS for s in SIZES))


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(subparsers, "models", HELP, DESCRIPTION, EXAMPLES)
    add_report_options(p, "print a JSON list of the models (every card fact) on stdout")
    p.set_defaults(func=run)


def fmt_bytes(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n / 1e3:.0f} kB"


def fmt_count(n: int | None) -> str:
    return "-" if n is None else f"{n:,}"


def table(rows: list[tuple[str, ...]]) -> str:
    """Left-aligned text columns, two spaces apart."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


def run(args: argparse.Namespace) -> int:
    from infer.models.shipped import models_dir, shipped_models
    from nst_core.log import LOG

    models = shipped_models()
    if args.json:
        print(json.dumps([m.to_dict() for m in models], indent=2))
        return 0
    if not models:
        LOG.info(f"no pretrained models ship in {models_dir()} yet")
        return 0
    rows = [COLUMNS] + [
        (
            m.name,
            f"{len(m.styles)} styles" if m.styles else m.style,
            m.variant,
            fmt_count(m.steps),
            fmt_count(m.images_seen),
            fmt_bytes(m.size_bytes),
            *(m.iterations_to_match(s, start) for start, _ in STARTS for s in SIZES),
        )
        for m in models
    ]
    total = sum(m.size_bytes for m in models)
    print(table(rows))
    for m in models:
        if m.styles:
            blend = f"{m.styles[0]}=0.5,{m.styles[1]}=0.5"
            print(f"{m.name}: {', '.join(m.styles)} (--style NAME, or a blend such as {blend})")
    print(
        f"{len(models)} model(s), {fmt_bytes(total)} in {models_dir()}; noise@N, photo@N: optimizer iterations to "
        "match the network at N px, started from noise (Johnson et al.) or from the photo"
    )
    return 0
