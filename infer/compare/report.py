"""The report of a comparison: report.md, grid.png, loss_vs_time.png, report.json and images/, in one folder.

Every file is written to a temporary name and renamed (`nst_core.files.atomic_path`), so none is ever
half-written; thumbnails are resized like every other image (`image_io.resize_longer`).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from infer.compare.config import DEFAULT_THUMB_SIZE, STARTS
from infer.compare.results import FILES, CompareReport, fmt_seconds
from nst_core.errors import NSTError
from nst_core.files import atomic_path, check_output_folder, clean_stale_temporaries
from nst_core.image_io import display_name, resize_longer, save_image
from nst_core.losses.weights import LossWeights
from nst_core.machine import describe

IMAGES_DIR = "images"
PAD = 8  # pixels between grid cells and around the grid


def check_report_dir(path: str | os.PathLike) -> Path:
    """A report folder: an existing writable folder, or a new one whose parent exists and is writable."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise NSTError(f"{out}: exists and is not a folder")
    check_output_folder(out / FILES["json"] if out.is_dir() else out)
    return out


# ---------------------------------------------------------------------------------------------- grid.png


def _font(px: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=px)
    except TypeError:  # Pillow < 10.1: a fixed bitmap font
        return ImageFont.load_default()


def label_height(thumb_size: int) -> int:
    """Height of the two label lines under each thumbnail."""
    return 2 * (font_px(thumb_size) + 4) + 4


def font_px(thumb_size: int) -> int:
    return max(10, thumb_size // 17)


def grid_size(rows: int, cols: int, thumb_size: int) -> tuple[int, int]:
    """(width, height) of a grid of ``rows`` x ``cols`` labelled tiles."""
    return cols * thumb_size + (cols + 1) * PAD, rows * (thumb_size + label_height(thumb_size)) + (rows + 1) * PAD


def _fit(text: str, draw: ImageDraw.ImageDraw, font: Any, width: int) -> str:
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


def make_grid(report: CompareReport, thumb_size: int = DEFAULT_THUMB_SIZE) -> Image.Image:
    """Rows: content images; columns: content, style, fast, iterative at each step count; labelled."""
    cols = 3 + len(report.steps)
    width, height = grid_size(len(report.images), cols, thumb_size)
    grid = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(grid)
    font = _font(font_px(thumb_size))
    line = font_px(thumb_size) + 4
    style_thumb = report.style_image
    for r, im in enumerate(report.images):
        y = PAD + r * (thumb_size + label_height(thumb_size) + PAD)
        cells: list[tuple[Image.Image | None, str, str]] = [
            (im.content_image, im.name, f"content {im.size[0]}x{im.size[1]}"),
            (style_thumb, display_name(report.style), "style"),
            (im.fast.image, f"fast  {fmt_seconds(im.fast.seconds)}", f"loss {im.fast.loss.total:.4g}"),
        ]
        cells += [
            (it.image, f"iterative {it.steps}  {fmt_seconds(it.seconds)}", f"from {report.start}: {it.loss.total:.4g}")
            for it in im.iterative
        ]
        for col, (img, top, bottom) in enumerate(cells):
            x = PAD + col * (thumb_size + PAD)
            if img is not None:
                small = resize_longer(img, thumb_size)
                grid.paste(small, (x + (thumb_size - small.width) // 2, y + (thumb_size - small.height) // 2))
            draw.text((x, y + thumb_size + 2), _fit(top, draw, font, thumb_size), fill="black", font=font)
            draw.text(
                (x, y + thumb_size + 2 + line), _fit(bottom, draw, font, thumb_size), fill=(90, 90, 90), font=font
            )
    return grid


# ---------------------------------------------------------------------------------------------- loss_vs_time.png


def plot_loss_vs_time(report: CompareReport, path: str | os.PathLike) -> Path:
    """The iterative loss curve over time per image (log-log), the fast result as a point and a dashed line."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 4.8), dpi=120)
    ax = fig.add_subplot()
    colors = [f"C{i % 10}" for i in range(len(report.images))]
    for im, color in zip(report.images, colors):
        curve = [(t, v) for _, t, v, _ in im.curve if t > 0 and v > 0]
        if curve:
            ax.plot(*zip(*curve), color=color, lw=1.5, label=f"{im.name}: iterative")
        snaps = [(it.seconds, it.loss.total) for it in im.iterative if it.seconds > 0]
        if snaps:
            ax.plot(*zip(*snaps), "o", color=color, ms=4)
            for it in im.iterative:
                ax.annotate(
                    str(it.steps),
                    (it.seconds, it.loss.total),
                    textcoords="offset points",
                    xytext=(3, 4),
                    fontsize=7,
                    color=color,
                )
        ax.axhline(im.fast.loss.total, color=color, ls="--", lw=1)
        ax.plot(
            [max(im.fast.seconds, 1e-6)],
            [im.fast.loss.total],
            marker="*",
            ms=13,
            color=color,
            ls="none",
            markeredgecolor="black",
            label=f"{im.name}: fast ({fmt_seconds(im.fast.seconds)})",
        )
        if im.reach.reached and im.reach.seconds and im.reach.seconds > 0:
            ax.axvline(im.reach.seconds, color=color, ls=":", lw=1)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("seconds per image (log)")
    ax.set_ylabel("metric loss: content + style (log)")
    ax.set_title(
        f"Fast vs iterative from {report.start} at {report.size} px (dashed: fast network's loss; dotted: iterative "
        "reaches it)",
        fontsize=9,
    )
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return Path(path)


# ---------------------------------------------------------------------------------------------- report.md


def markdown_table(report: CompareReport) -> str:
    rows = [
        "| image | method | steps | seconds | × fast time | content | style | total |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for im in report.images:
        fast = im.fast.seconds
        for r in (im.fast, *im.iterative):
            ratio = "1" if r.method == "fast" else (f"{r.seconds / fast:,.0f}" if fast > 0 else "-")
            rows.append(
                f"| {im.name} | {r.method} | {'-' if r.steps is None else r.steps} | {r.seconds:.4g} | "
                f"{ratio} | {r.loss.content:.4g} | {r.loss.style:.4g} | {r.loss.total:.4g} |"
            )
    return "\n".join(rows)


def loss_text(loss: LossWeights) -> str:
    """'content relu4_2 × 5, style relu1_1, ... × 100' (TV left out: the metric has none)."""
    return (
        f"content {', '.join(loss.content_layers)} × {loss.content:g}, "
        f"style {', '.join(loss.style_layers)} × {loss.style:g}"
    )


def _metric_note(report: CompareReport) -> list[str]:
    """A note when the model was trained with another loss than the metric it is scored with."""
    trained = report.metric.trained_with
    if trained is None or not report.metric.differs_from_training:
        return []
    return [
        f"The model was trained with another loss ({loss_text(trained)}), so it is "
        "scored here on a loss it did not minimise; `--metric model` scores both methods on its training loss, "
        "as Johnson et al. did.",
        "",
    ]


def markdown(report: CompareReport) -> str:
    m = report.metric
    load = report.load_seconds
    lines = [
        "# Fast vs iterative stylization",
        "",
        f"Style `{report.style}`, model `{report.model}` ({report.model_info.get('provider')}), "
        f"{len(report.images)} image(s) at {report.size} px, iterative steps {', '.join(map(str, report.steps))}.",
        "",
        f"Machine: {describe(report.machine)}.",
        "",
        f"Metric ({m.source}): VGG19 ({m.vgg_weights}), {loss_text(m.loss)}, TV 0; "
        f"the iterative method (L-BFGS, one scale) starts from {STARTS[report.start]} and minimises this same "
        "loss; its step k is the image `nst optimize --steps k` writes (step 1 is the starting image), every image "
        "scored as saved (8-bit). "
        "Seconds are per image, excluding model load "
        f"({fmt_seconds(load['fast_model'])} fast model, {fmt_seconds(load['vgg'])} VGG) and warm-up.",
        "",
        *_metric_note(report),
        markdown_table(report),
        "",
        "## After how many iterations does the optimizer catch up?",
        "",
        report.answer(),
        "",
    ]
    lines += [f"- **{im.name}**: {im.reach.text()}." for im in report.images]
    warm = ", ".join(
        f"{im.name} {fmt_seconds(im.fast_warmup_seconds)} / {fmt_seconds(im.iterative_warmup_seconds)}"
        for im in report.images
    )
    lines += ["", f"Warm-up (fast / iterative first pass, not counted): {warm}.", ""]
    if report.warnings:
        lines += ["Warnings:", "", *[f"- {w}" for w in report.warnings], ""]
    lines += [f"![grid]({FILES['grid']})", "", f"![loss vs time]({FILES['plot']})", ""]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- the folder


def write_report(
    report: CompareReport, out_dir: str | os.PathLike, thumb_size: int = DEFAULT_THUMB_SIZE
) -> dict[str, Path]:
    """Write grid.png, loss_vs_time.png, report.json, report.md and images/ into ``out_dir`` (created).

    ``thumb_size``: longer side of the grid's thumbnails. Returns the paths written, by kind (see FILES).
    """
    out = check_report_dir(out_dir)
    save_outputs(report, out)
    written = {
        "grid": save_image(make_grid(report, thumb_size), out / FILES["grid"]),
        "plot": plot_loss_vs_time(report, out / FILES["plot"]),
        "json": _write_text(out / FILES["json"], json.dumps(report.to_dict(), indent=1, ensure_ascii=False) + "\n"),
        "markdown": _write_text(out / FILES["markdown"], markdown(report)),
    }
    return written


def save_outputs(report: CompareReport, out: Path) -> None:
    """Every output image into ``out/images/`` (``01_NAME_fast.png``, ``01_NAME_iter00300.png``), noted in
    the results; the outputs of an earlier comparison in that folder, and temporaries a killed one left, go first."""
    images = out / IMAGES_DIR
    try:
        images.mkdir(parents=True, exist_ok=True)
        for old in images.glob("[0-9][0-9]_*.png"):
            if re.search(r"_(fast|iter\d{5})\.png$", old.name):
                old.unlink(missing_ok=True)
    except OSError as e:
        raise NSTError(f"{images}: cannot write ({e.strerror or e})") from None
    for folder in (out, images):
        clean_stale_temporaries(folder)
    for i, im in enumerate(report.images):
        stem = f"{i + 1:02d}_{im.name}"
        for r in (im.fast, *im.iterative):
            rel = f"{IMAGES_DIR}/{stem}_{'fast' if r.steps is None else f'iter{r.steps:05d}'}.png"
            if r.image is not None:
                save_image(r.image, out / rel)
                r.file = rel


def _write_text(path: Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path
