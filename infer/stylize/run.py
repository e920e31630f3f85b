"""Running a `nst stylize` plan: load the model once, then each job (image or video), per-file errors in a batch.

In a batch an input that fails is recorded and the rest still run (exit status 1 at the end); a single
input's failure is the run's one-line error. Options are read from the parsed arguments, handed down whole.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infer.models.shipped import resolve_model
from infer.stylize.plan import STDIN, Job, Plan
from infer.stylize.stylizer import FrameOptions, Stylizer, is_network_source
from nst_core.cli.options import show_progress
from nst_core.errors import NSTError
from nst_core.image_io import SAVE_FORMATS, array_to_pil, encode_image, save_image
from nst_core.log import LOG


@dataclass
class Outcome:
    """What one job produced (or its error), for the summary and --json."""

    source: str
    output: str | None = None
    ms: float | None = None
    size: tuple[int, int] | None = None
    tiles: int = 1
    frames: int | None = None
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def load_model(args: argparse.Namespace, frames: bool = False) -> Stylizer:
    """The Stylizer for ``--model`` (a path, else a shipped model's name); a trained network is exported in
    memory first, and the user told so. ``frames``: it will stylize video frames (onnxruntime's threads do not
    spin between runs, `Stylizer`)."""
    model = resolve_model(args.model)
    if is_network_source(model) and not args.quiet:
        LOG.info(
            f"nst stylize: exporting {model} to ONNX in memory; `nst export {model} -o MODEL.onnx` saves it for reuse"
        )
    return Stylizer(
        model,
        provider=args.provider,
        threads=args.threads,
        precision=args.precision,
        spinning=not frames,
        style=getattr(args, "style", None),
        pixel_range=getattr(args, "pixel_range", None),
    )


def read_stdin() -> bytes:
    data = sys.stdin.buffer.read()
    if not data:
        raise NSTError("<stdin>: no data (pipe an image in, e.g. `nst stylize - ... < photo.jpg`)")
    return data


def run_image(stylizer: Stylizer, job: Job, args: argparse.Namespace) -> Outcome:
    """Stylize one image into its file, or onto stdout (``--format``, PNG by default)."""
    content = stylizer.content_array(read_stdin() if job.source == STDIN else job.source, args.size)
    t0 = time.perf_counter()
    out = stylizer.stylize_array(
        content, preserve_color=args.preserve_color, strength=args.strength, tile=args.tile, work_size=args.work_size
    )
    ms = (time.perf_counter() - t0) * 1000
    h, w = out.shape[-2:]
    tiles = 0 if args.strength == 0 else stylizer.count_tiles(w, h, args.tile)
    image = array_to_pil(out)
    if job.dest is None:
        sys.stdout.buffer.write(encode_image(image, SAVE_FORMATS[f".{args.format or 'png'}"], quality=args.quality))
        sys.stdout.buffer.flush()
        where = "<stdout>"
    else:
        job.dest.parent.mkdir(parents=True, exist_ok=True)
        where = str(save_image(image, job.dest, quality=args.quality))
    return Outcome(job.source, where, round(ms, 2), (int(w), int(h)), tiles)


def run_video(stylizer: Stylizer, job: Job, args: argparse.Namespace) -> Outcome:
    """Stylize a video frame by frame, its sound kept (`infer.stylize.video.stylize_video`)."""
    from infer.stylize.video import stylize_video

    assert job.dest is not None
    job.dest.parent.mkdir(parents=True, exist_ok=True)
    options = FrameOptions.from_args(args)
    res = stylize_video(stylizer, job.source, job.dest, options, quality=args.quality, progress=show_progress(args))
    return Outcome(
        job.source,
        str(job.dest),
        round(res.ms_per_frame, 2),
        res.size,
        frames=res.frames,
        extra={
            "fps": res.fps,
            "frames_per_second": round(res.frames_per_second, 2),
            "seconds": round(res.seconds, 3),
            "audio": res.audio,
            **res.temporal,
        },
    )


def run_job(stylizer: Stylizer, job: Job, args: argparse.Namespace) -> Outcome:
    """One job; a write failure (disk full ...) becomes a one-line NSTError naming the file."""
    if job.error:
        raise NSTError(job.error)
    try:
        return run_video(stylizer, job, args) if job.video else run_image(stylizer, job, args)
    except OSError as e:  # reading is checked by open_image: this is the output (a sub-folder, stdout)
        raise NSTError(f"{job.dest or '<stdout>'}: cannot write ({e.strerror or e})") from None


def make_output_folder(folder: Path) -> bool:
    """Create a batch's output folder (its parent exists: the plan checked); True if this run made it."""
    try:
        folder.mkdir()
    except FileExistsError:
        return False
    except OSError as e:
        raise NSTError(f"{folder}: cannot create the output folder ({e.strerror or e})") from None
    return True


def remove_empty_folders(folder: Path) -> None:
    """Remove the empty folders under ``folder``, and ``folder`` if it ends up empty, deepest first."""
    for root, _, _ in os.walk(folder, topdown=False):
        with contextlib.suppress(OSError):
            os.rmdir(root)


def run_plan(stylizer: Stylizer, plan: Plan, args: argparse.Namespace) -> list[Outcome]:
    """Every job of the plan; in a batch a failed input is reported on stderr and the others still run."""
    from tqdm.auto import tqdm

    created = plan.batch and make_output_folder(Path(args.output))
    outcomes: list[Outcome] = []
    show = plan.batch and show_progress(args)
    bar = tqdm(plan.jobs, desc="stylize", unit="file", disable=not show, dynamic_ncols=True)
    try:
        for job in bar:
            try:
                outcomes.append(run_job(stylizer, job, args))
            except NSTError as e:
                if not plan.batch:
                    raise
                outcomes.append(Outcome(job.source, error=str(e)))
                LOG.error(f"{e} (skipped)")
    finally:
        bar.close()
        if created and not any(o.output for o in outcomes):  # a run that wrote nothing leaves no folder
            remove_empty_folders(Path(args.output))  # (only then: a second writer may be filling it)
    return outcomes
