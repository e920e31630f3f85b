"""Turn a trained run into a shipped model: ``python tools/ship.py RUN_DIR --name NAME --facts FACTS.yaml
--compare REPORT_256 REPORT_512 --models infer/models --docs docs/models``.

The maintainers' one way to ship a style (docs/models/README.md). It

1. gathers the card's facts: the facts file (training stages, data, hardware, wall time: what a run folder
   does not know), the run's ``config.yaml`` (loss weights), the style's provenance line from
   ``nst_core/styles/SOURCES.md`` and the `nst compare --metric model` report folders (optimizer
   iterations to match the network, per photo and the median);
2. exports the network with `infer.export.exporter.export_onnx`, the facts in its ``nst.*`` metadata (the keys of
   `infer.models.shipped`), fp32 unless that file exceeds `FP16_ABOVE` bytes (then fp16: see docs/models/README.md);
3. renders a sample picture (built-in photos stylized by the exported file) and writes the model card
   ``docs/models/<name>.md`` beside it;
4. copies the ONNX file into the models folder last, so a model never ships without its card.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from infer.compare.config import STARTS
from infer.export.format import config_summary
from infer.models import shipped
from nst_core.builtin_styles import STYLES_DIR, builtin_style_path
from nst_core.cli import OneLineParser, exit_status
from nst_core.errors import NSTError
from nst_core.files import atomic_path
from nst_core.image_io import display_name
from nst_core.log import configure
from nst_core.losses.weights import loss_section

#: The folder that holds the packages: a built-in style's ``nst.style_file`` is relative to it, as
#: `infer.models.shipped.ShippedModel.style_image` reads it back.
PACKAGES_ROOT = STYLES_DIR.parents[1]
SAMPLE_PHOTOS = ("chelsea", "coffee")
SAMPLE_SIZE = 384
#: Ship fp16 only when the fp32 file would be larger than this (docs/models/README.md: the measurements).
FP16_ABOVE = 2_000_000
#: `infer.compare.run.metric_spec`'s source text for ``--metric model``: the figure is defined at that metric only.
MODEL_METRIC_SOURCE = "the model's training loss"
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_]*")
FACT_KEYS = ("style", "data", "hardware", "how", "stages")
STAGE_KEYS = ("steps", "batch_size", "image_size", "images_seen", "wall_time", "hardware", "note")


# ---------------------------------------------------------------------------------------------- facts


@dataclass
class Stage:
    """One training stage (a network may be trained from scratch at 128 px, then continued at 256 px)."""

    steps: int
    batch_size: int
    image_size: int
    images_seen: int
    wall_time: str = "-"
    hardware: str = "-"
    note: str = ""


@dataclass
class Facts:
    """What the card says about training: from the facts file, defaults from the run."""

    style: str
    data: str
    how: str
    stages: list[Stage] = field(default_factory=list)


def fmt_duration(value: Any) -> str:
    """Seconds as ``2 h 05 min`` / ``24 min`` / ``40 s``; text is kept as written."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return str(value)
    minutes = round(value / 60)
    if value < 60:
        return f"{value:.0f} s"
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


def _positive_int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise NSTError(f"{where} must be a positive integer, got {value!r}")
    return value


def _check_keys(mapping: Any, known: Sequence[str], where: str) -> dict[str, Any]:
    if not isinstance(mapping, Mapping):
        raise NSTError(f"{where}: expected a mapping of {', '.join(known)}")
    unknown = sorted(set(mapping) - set(known))
    if unknown:
        raise NSTError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(known)})")
    return dict(mapping)


def read_stage(raw: Any, where: str, hardware: str, run: Mapping[str, Any]) -> Stage:
    """One stage of the facts file; batch and image size default to the run's config."""
    raw = _check_keys(raw, STAGE_KEYS, where)
    steps = _positive_int(raw.get("steps"), f"{where}: steps")
    batch = _positive_int(raw.get("batch_size", run.get("batch_size")), f"{where}: batch_size")
    size = _positive_int(raw.get("image_size", run.get("image_size")), f"{where}: image_size")
    seen = _positive_int(raw.get("images_seen", steps * batch), f"{where}: images_seen")
    wall = fmt_duration(raw.get("wall_time", "-"))
    return Stage(steps, batch, size, seen, wall, str(raw.get("hardware", hardware)), str(raw.get("note", "")))


def style_names(config: Mapping[str, Any]) -> list[str]:
    """The styles a run was trained on, in the network's order: built-in names as they are, files by their stem (a
    distillation without style images: its teachers' names)."""
    names = config.get("style") or config.get("teacher") or "-"
    return [display_name(str(n)) for n in (names if isinstance(names, list) else [names])]


def style_name(config: Mapping[str, Any]) -> str:
    """The style of a run's network: its one style's name, or its styles' joined by ``+``."""
    return "+".join(style_names(config))


def teachers_text(config: Mapping[str, Any]) -> str | None:
    """The teacher(s) of a distillation, as the card names them; None for a run trained from a painting."""
    teacher = config.get("teacher")
    if not teacher:
        return None
    return ", ".join(f"`{t}`" for t in teacher) if isinstance(teacher, list) else f"`{teacher}`"


def default_how(facts: Facts, variant: str, teacher: str | None = None) -> str:
    stages = ", then ".join(f"{s.steps:,} steps at {s.image_size} px (batch {s.batch_size})" for s in facts.stages)
    what = f"distilled from {teacher} (`nst train --teacher`)" if teacher else "trained"
    return f"`{variant}` network {what} {stages} on {facts.data}, with `nst train`."


def read_facts(path: Path | None, config: Mapping[str, Any], step: int | None, variant: str) -> Facts:
    """The facts file (YAML; see docs/models/README.md), or one stage made of the run's own config and step."""
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as e:
            raise NSTError(f"{path}: cannot read the facts file ({type(e).__name__}: {e})") from None
        raw = _check_keys(raw, FACT_KEYS, str(path))
    hardware = str(raw.get("hardware", "-"))
    stages_raw = raw.get("stages") or ([{"steps": step}] if step else [])
    if not isinstance(stages_raw, list) or not stages_raw:
        raise NSTError(f"{path or 'the run'}: no training stages (give `stages:` in the facts file)")
    where = str(path or "the run")
    stages = [read_stage(s, f"{where}: stage {i + 1}", hardware, config) for i, s in enumerate(stages_raw)]
    data = str(raw.get("data") or Path(str(config.get("data", "-"))).name)
    facts = Facts(str(raw.get("style") or style_name(config)), data, "", stages)
    facts.how = str(raw.get("how") or default_how(facts, variant, teachers_text(config)))
    return facts


# ---------------------------------------------------------------------------------------------- run, style, compare


def run_config(run: Path) -> dict[str, Any]:
    """The run's ``config.yaml`` (in the run folder, or above a checkpoint folder / network file)."""
    for folder in (run, *run.parents[:3]):
        file = folder / "config.yaml"
        if file.is_file():
            try:
                config = yaml.safe_load(file.read_text(encoding="utf-8"))
            except (OSError, yaml.YAMLError) as e:
                raise NSTError(f"{file}: cannot read the run's config ({type(e).__name__}: {e})") from None
            return config if isinstance(config, dict) else {}
    raise NSTError(f"{run}: no config.yaml in this run folder or above it (not a training run?)")


def network_meta(run: Path) -> dict[str, str]:
    """The trained network's own metadata (variant, step ...), read without loading the weights."""
    from safetensors import safe_open

    from nst_core.checkpoint_io import find_network_file

    with safe_open(str(find_network_file(run)), framework="np") as f:
        return dict(f.metadata() or {})


def style_file(style: str, config: Mapping[str, Any]) -> str:
    """The style image's file: the built-in one when it ships, else the name the run's config gives."""
    builtin = builtin_style_path(style)
    return str(builtin.relative_to(PACKAGES_ROOT)) if builtin else Path(str(config.get("style", style))).name


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def provenance(file_name: str, sources: Path = STYLES_DIR / "SOURCES.md") -> str | None:
    """The style's row of ``nst_core/styles/SOURCES.md`` as one line (rights; repository, path, commit,
    processing); None when the file or the row is absent."""
    if not sources.is_file():
        return None
    lines = sources.read_text(encoding="utf-8").splitlines()
    row = next((ln for ln in lines if ln.lstrip("| ").startswith(file_name)), None)
    header = next((ln for ln in lines if ln.startswith("| file |")), None)
    if row is None:
        return None
    if header is None:
        return " · ".join(c for c in _cells(row) if c)
    cell = dict(zip(_cells(header), _cells(row)))
    commit = f" @ {cell['commit'][:7]}" if cell.get("commit") else ""
    where = f"{cell.get('repository', '-')} {cell.get('path in repository', '')}{commit}".strip()
    return f"{cell.get('artwork / rights', '-')}; from {where}, {cell.get('processing', '-')}"


def read_compare(folder: Path) -> dict[str, Any]:
    """The figures of one `nst compare --metric model` report folder: size, photos, iterations to match each
    (None: not within the run's steps), the run's largest step count and the median."""
    file = folder / "report.json"
    try:
        report = json.loads(file.read_text(encoding="utf-8"))
        size, steps, per_image = report["size"], report["steps"], report["summary"]["per_image"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise NSTError(f"{file}: not an `nst compare` report ({type(e).__name__}: {e})") from None
    source = report.get("metric", {}).get("source")
    if source != MODEL_METRIC_SOURCE:
        raise NSTError(f"{file}: scored with {source!r}; the card's figures need `nst compare --metric model`")
    photos = [{"name": im["name"], "iterations": im["iterations"] if im["reached"] else None} for im in per_image]
    iterations = [p["iterations"] for p in photos]
    median = shipped.median_text(iterations, max(steps))
    start = report.get("start", {}).get("init", "content")  # reports before version 3 started from the photo
    figures = {"size": size, "photos": photos, "max_steps": max(steps), "median": median}
    return figures | {"machine": _machine(report), "start": start}


def compare_figures(
    figures: Mapping[str, Mapping[str, Any]], new: Sequence[Mapping[str, Any]]
) -> dict[str, dict[str, Any]]:
    """``figures`` (an ``nst.compare`` value) with ``new`` figures added, each replacing any of its size and start."""
    merged = {key: dict(value) for key, value in figures.items()}
    for c in new:
        merged[shipped.compare_key(c["size"], c.get("start", "content"))] = dict(c)
    return merged


def _machine(report: Mapping[str, Any]) -> str:
    from nst_core.machine import describe

    machine = report.get("machine")
    return describe(machine) if isinstance(machine, dict) else "-"


# ---------------------------------------------------------------------------------------------- metadata and card


def card_metadata(
    name: str,
    facts: Facts,
    config: Mapping[str, Any],
    compares: Sequence[Mapping[str, Any]],
    photos: Sequence[str] = SAMPLE_PHOTOS,
) -> dict[str, Any]:
    """The ``nst.*`` keys `infer.models.shipped` reads back (export_onnx's ``metadata`` overrides)."""
    names = style_names(config)
    if len(names) > 1:  # each style's painting and its provenance; the exporter writes nst.style and nst.styles
        sources = "; ".join(f"{n}: {provenance(Path(style_file(n, {})).name) or '-'}" for n in names)
        return card_facts(name, facts, config, compares, photos) | {shipped.STYLE_SOURCE_KEY: sources}
    file = style_file(facts.style, config)
    meta = card_facts(name, facts, config, compares, photos) | {
        shipped.STYLE_KEY: facts.style,
        shipped.STYLE_FILE_KEY: file,
    }
    source = provenance(Path(file).name)
    if source:
        meta[shipped.STYLE_SOURCE_KEY] = source
    return meta


def card_facts(
    name: str,
    facts: Facts,
    config: Mapping[str, Any],
    compares: Sequence[Mapping[str, Any]],
    photos: Sequence[str],
) -> dict[str, Any]:
    """The card's keys that do not depend on how many styles the network paints."""
    return {
        shipped.NAME_KEY: name,
        shipped.TRAINING_KEY: [asdict(s) for s in facts.stages],
        shipped.DATA_KEY: facts.data,
        shipped.LOSS_KEY: loss_section(config),
        shipped.HOW_KEY: facts.how,
        shipped.COMPARE_KEY: compare_figures({}, compares),
        shipped.SAMPLE_PHOTOS_KEY: list(photos),
    }


def sample_picture(model: Path, photos: Sequence[str], size: int = SAMPLE_SIZE) -> Any:
    """Rows of (photo | the model's stylization of it, in each of its styles) at ``size`` px (half that for a network
    of several styles), white gaps; a PIL image."""
    from PIL import Image

    from infer.stylize.stylizer import Stylizer
    from nst_core.image_io import open_image, resize_longer

    stylizer = Stylizer(model, provider="cpu")
    styles = stylizer.styles or [None]
    size = size if len(styles) == 1 else size // 2
    rows = [
        [resize_longer(open_image(p), size), *(stylizer.stylize(p, size=size, tile=0, style=s) for s in styles)]
        for p in photos
    ]
    gap = 8
    width = max(sum(a.width for a in row) for row in rows) + (len(rows[0]) + 1) * gap
    height = sum(row[0].height for row in rows) + (len(rows) + 1) * gap
    canvas, y = Image.new("RGB", (width, height), "white"), gap
    for row in rows:
        x = gap
        for picture in row:
            canvas.paste(picture.convert("RGB"), (x, y))
            x += picture.width + gap
        y += row[0].height + gap
    return canvas


def _row(*cells: Any) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def card_markdown(
    model: shipped.ShippedModel,
    config: Mapping[str, Any],
    photos: Sequence[str],
    docs: Path,
    painting_link: Callable[[Path], str] | None = None,
) -> str:
    """The model card (written into ``docs``): everything read back from the shipped file's metadata, plus the
    run's config. ``painting_link``: how a painting's file is linked (default: its path relative to ``docs``)."""
    d = model.to_dict()
    styles = model.styles or [d["style"]]
    title = ", ".join(styles) if model.styles else d["style"]
    size = SAMPLE_SIZE if not model.styles else SAMPLE_SIZE // 2
    lines = [f"# `{model.name}`: {title}", ""]
    lines += [f"![{model.name}: photos and their stylization]({model.name}.jpg)", ""]
    each = f" in each of its styles, in the order {', '.join(styles)}" if model.styles else ""
    lines += [
        f"*Left: the built-in photos {', '.join(f'`{p}`' for p in photos)}; right: this network at "
        f"{size} px{each} (`nst stylize PHOTO --model {model.name} --size {size}`).*",
        "",
    ]
    lines += ["| | |", "|---|---|"]
    link = painting_link or (lambda file: Path(os.path.relpath(file, docs.resolve())).as_posix())
    lines.append(_row("style image" if not model.styles else "style images", style_images(model, link)))
    lines.append(_row("provenance", d["style_source"] or "-"))
    lines.append(_row("variant", f"`{d['variant']}`"))
    lines.append(_row("file", f"`infer/models/{model.path.name}`, {d['precision']}, {d['size_bytes']:,} bytes"))
    lines.append(_row("training data", d["data"]))
    lines.append(_row("steps", f"{d['steps']:,} ({d['images_seen']:,} images seen)"))
    lines.append(_row("hardware", " + ".join(dict.fromkeys(s["hardware"] for s in d["training"]))))  # stage order
    lines.append(_row("wall time", " + ".join(s["wall_time"] for s in d["training"])))
    lines += ["", "## How it was trained", "", d["how"] or "-", ""]
    lines += [_row("stage", "steps", "batch", "image size", "images seen", "wall time", "hardware", "note")]
    lines += ["|---:|---:|---:|---:|---:|---|---|---|"]
    for i, s in enumerate(d["training"], 1):
        lines.append(
            _row(
                i,
                f"{s['steps']:,}",
                s["batch_size"],
                f"{s['image_size']} px",
                f"{s['images_seen']:,}",
                s["wall_time"],
                s["hardware"],
                s.get("note") or "",
            )
        )
    if config.get("teacher"):
        lines += ["", f"Loss: pixel L1 to the output of the teacher {teachers_text(config)} (distillation)", ""]
    else:
        lines += ["", f"Loss weights (the run's `config.yaml`): `{json.dumps(d['loss'], sort_keys=True)}`", ""]
    summary = {k: v for k, v in config_summary(dict(config)).items() if k != "loss"}
    lines += ["Training config (the run's last stage, as `nst export` keeps it):", "", "```yaml"]
    lines += [yaml.safe_dump(summary, sort_keys=True).strip(), "```", ""]
    lines += compare_section(model)
    lines += ["## Use", "", "```bash", f"nst stylize photo.jpg --model {model.name} -o out.png"]
    if model.styles:
        a, b = model.styles[:2]
        lines += [f"nst stylize photo.jpg --model {model.name} --style {a}=0.5,{b}=0.5 -o blend.png  # any blend"]
    return "\n".join([*lines, "```", ""])


def paintings(model: shipped.ShippedModel) -> dict[str, Path]:
    """The model's style paintings by style name (each one for a network of several styles)."""
    if model.styles:
        return {name: PACKAGES_ROOT / style_file(name, {}) for name in model.styles}
    return {model.style: PACKAGES_ROOT / str(model.metadata.get(shipped.STYLE_FILE_KEY))}


def style_images(model: shipped.ShippedModel, link: Callable[[Path], str]) -> str:
    """The card's style image cell: the painting (each one, for a network of several styles), linked where it ships."""
    found = paintings(model).items()
    return " ".join(f"![{name}]({link(file)})" if file.is_file() else f"`{file.name}`" for name, file in found)


def compare_section(model: shipped.ShippedModel) -> list[str]:
    """The fast-vs-iterative table: optimizer iterations to match the network, per photo and the median."""
    lines = ["## Fast vs iterative", ""]
    if not model.compare:
        return [*lines, "Not measured yet (`nst compare --metric model`).", ""]
    lines += [
        "Optimizer (L-BFGS) iterations `nst compare --metric model` needed to reach this network's loss "
        "on photos not used in training (`>N`: not within N).",
        "",
    ]
    header = _row("size", "photos", "iterations per photo", "median", "machine", "optimizer's start")
    lines += [header, "|---:|---|---|---:|---|---|"]
    for c in sorted(model.compare.values(), key=lambda c: (c["size"], c.get("start", "content") != "noise")):
        size = c["size"]
        per = ", ".join(
            f"{p['name']} {p['iterations'] if p['iterations'] is not None else '>' + str(c['max_steps'])}"
            for p in c["photos"]
        )
        start = STARTS[c.get("start", "content")]  # figures shipped before the start was recorded: the photo
        lines.append(_row(f"{size} px", len(c["photos"]), per, c["median"], c.get("machine", "-"), start))
    return [*lines, ""]


# ---------------------------------------------------------------------------------------------- ship


def check_name(name: str) -> str:
    if not NAME_PATTERN.fullmatch(name):
        raise NSTError(f"{name!r}: a model name is lowercase letters, digits and _ (it is the file and CLI name)")
    return name


def export_for_shipping(run: Path, dest: Path, metadata: Mapping[str, Any], precision: str) -> Path:
    """The run exported into ``dest`` (a temporary folder) at ``precision`` (``auto``: fp32 unless too large)."""
    from infer.export.exporter import export_onnx

    result = export_onnx(run, dest, fp16=precision != "fp32", metadata=metadata)
    if precision == "fp16" or (precision == "auto" and result.size_bytes > FP16_ABOVE):
        return result.fp16.path  # type: ignore[union-attr]
    return result.path


def write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_card(model: shipped.ShippedModel, config: Mapping[str, Any], photos: Sequence[str], docs: Path) -> Path:
    """The sample picture ``docs/<name>.jpg`` (``photos`` stylized by the model's file) and the card
    ``docs/<name>.md`` from its metadata; returns the card."""
    from nst_core.image_io import save_image

    docs.mkdir(parents=True, exist_ok=True)
    save_image(sample_picture(model.path, photos), docs / f"{model.name}.jpg", quality=90)
    card = docs / f"{model.name}.md"
    write_bytes(card, card_markdown(model, config, photos, docs).encode())
    return card


def rewrite_metadata(path: Path, values: Mapping[str, str]) -> None:
    """The ONNX file at ``path`` with ``values`` set in its metadata (other keys kept, in order), rewritten in
    place atomically; the graph and weights untouched (figures and checks measured after shipping)."""
    import onnx

    proto = onnx.load(str(path))
    kept = [(p.key, p.value) for p in proto.metadata_props if p.key not in values]
    del proto.metadata_props[:]
    for key, value in [*kept, *values.items()]:
        proto.metadata_props.add(key=key, value=value)
    with atomic_path(path) as tmp:
        onnx.save(proto, str(tmp))


def ship(
    run: Path,
    name: str,
    *,
    models: Path,
    docs: Path,
    facts_file: Path | None = None,
    compare: Sequence[Path] = (),
    photos: Sequence[str] = SAMPLE_PHOTOS,
    precision: str = "auto",
) -> shipped.ShippedModel:
    """Export ``run`` as the shipped model ``name`` into the folder ``models``, its card and sample into ``docs``;
    returns the shipped model."""
    check_name(name)
    config = run_config(run)
    net_meta = network_meta(run)
    step = int(net_meta["step"]) if net_meta.get("step", "").isdigit() else None
    facts = read_facts(facts_file, config, step, net_meta.get("variant", "-"))
    compares = sorted((read_compare(c) for c in compare), key=lambda c: c["size"])
    metadata = card_metadata(name, facts, config, compares, photos)
    with tempfile.TemporaryDirectory(prefix="nst-ship-") as tmp:
        onnx_file = export_for_shipping(run, Path(tmp) / f"{name}{shipped.SUFFIX}", metadata, precision)
        staged = Path(tmp) / "staged" / f"{name}{shipped.SUFFIX}"  # the final name: the card reads it back
        staged.parent.mkdir()
        shutil.copyfile(onnx_file, staged)
        model = shipped.ShippedModel(name, staged, shipped.read_metadata(staged))
        write_card(model, config, photos, docs)
        write_bytes(models / staged.name, staged.read_bytes())  # last: never a model without its card
    return shipped.ShippedModel(name, models / staged.name, model.metadata)


def main(argv: Sequence[str] | None = None) -> int:
    p = OneLineParser(prog="tools/ship.py", description=__doc__.split("\n\n")[0])
    p.add_argument("run", type=Path, help="training run folder (or checkpoint folder / network.safetensors)")
    p.add_argument("--name", required=True, help="the shipped name (file MODELS/NAME.onnx, --model NAME)")
    p.add_argument("--models", type=Path, required=True, help="the models folder (the repository's infer/models)")
    p.add_argument("--docs", type=Path, required=True, help="where the card and sample go (docs/models)")
    p.add_argument("--facts", type=Path, help="YAML: style, data, hardware, how, stages (docs/models/README.md)")
    p.add_argument("--compare", type=Path, nargs="*", default=[], metavar="REPORT", help="nst compare report folders")
    p.add_argument("--photos", nargs="+", default=list(SAMPLE_PHOTOS), help="photos of the sample picture")
    p.add_argument(
        "--precision",
        choices=("auto", "fp32", "fp16"),
        default="auto",
        help=f"auto: fp32 unless that file exceeds {FP16_ABOVE:,} bytes",
    )
    args = p.parse_args(argv)
    configure(p.prog)
    return exit_status(lambda: _ship_and_report(args))


def _ship_and_report(args: argparse.Namespace) -> int:
    model = ship(
        args.run,
        args.name,
        models=args.models,
        docs=args.docs,
        facts_file=args.facts,
        compare=args.compare,
        photos=args.photos,
        precision=args.precision,
    )
    card = args.docs / f"{model.name}.md"
    print(json.dumps({"model": str(model.path), "card": str(card), "size_bytes": model.size_bytes}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
