"""Batch planning for `nst stylize`: the inputs (files, folders, stdin, videos) as jobs with output paths.

Everything that can be wrong with the arguments is found here, before a model is loaded: a missing
output folder, an output name two inputs would share, an image written as a video ... One input
writes one file (or stdout); several inputs or a folder write into an output folder, names kept.
In a folder, images are the files Pillow's registry can read (`nst_core.image_io.is_image_file`),
videos those `infer.stylize.video.is_video` knows; any other file is skipped and reported.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from infer.stylize.video import VIDEO_EXTS, is_video
from nst_core.errors import NSTError
from nst_core.files import check_output_dir, check_output_folder
from nst_core.image_io import SAVE_FORMATS, builtin_name, check_output_image, scan_images

STDIN = "-"


@dataclass
class Job:
    """One input and where its result goes (``dest`` None: stdout)."""

    source: str
    dest: Path | None
    video: bool = False
    error: str | None = None  # known to fail before anything runs (e.g. a missing file among several)


@dataclass
class Plan:
    """The jobs of one run; ``batch``: the output is a folder; ``skipped``: folder files neither image nor video."""

    jobs: list[Job]
    batch: bool = False
    skipped: list[Path] = field(default_factory=list)

    @property
    def single_video(self) -> bool:
        return not self.batch and self.jobs[0].video


def output_ext(src: Path, fmt: str | None) -> str:
    """The output extension of an image: ``--format``'s, else the input's when it can be written, else .png."""
    if fmt:
        return f".{fmt}"
    ext = src.suffix.lower()
    return ext if ext in SAVE_FORMATS else ".png"


def plan(inputs: list[str], output: str | None, fmt: str | None) -> Plan:
    """The jobs for the inputs; NSTError (before any work) on unusable arguments."""
    if not inputs:
        raise NSTError("no input given (image or video files, folders, or - for stdin)")
    if STDIN in inputs and len(inputs) > 1:
        raise NSTError("- (stdin) cannot be combined with other inputs")
    if output is None:
        raise NSTError("no output given: use -o FILE, -o FOLDER, or -o - for stdout")
    if len(inputs) == 1 and (inputs[0] == STDIN or not Path(inputs[0]).is_dir()):
        return Plan([single_job(inputs[0], output, fmt)])
    return batch_plan(inputs, output_folder(output), fmt)


def output_folder(output: str) -> Path:
    """The output folder of a batch: an existing writable folder, or one whose parent can hold it."""
    if output == STDIN:
        raise NSTError("several inputs or a folder need an output folder (-o FOLDER), not stdout")
    folder = Path(output)
    if folder.exists() and not folder.is_dir():
        raise NSTError(f"{folder}: exists and is not a folder (several inputs or a folder need an output folder)")
    if not folder.exists() and not folder.parent.is_dir():
        raise NSTError(f"{folder}: output folder {folder.parent} does not exist")
    return check_output_dir(folder)  # it, or the parent it is made in, accepts new files


def batch_plan(inputs: list[str], out_dir: Path, fmt: str | None) -> Plan:
    """One job per file of the inputs, written under ``out_dir`` (folders: relative paths kept)."""
    result = Plan([], batch=True)
    for item in inputs:
        path, name = Path(item), builtin_name(item)
        if name is not None:  # a demo photo (chelsea, skimage:NAME) or a built-in painting, by name
            result.jobs.append(Job(item, out_dir / f"{name}.{fmt or 'png'}"))
        elif path.is_dir():
            files, skipped = scan_folder(path, out_dir)
            result.jobs += [file_job(f, out_dir / f.relative_to(path), fmt) for f in files]
            result.skipped += skipped
        elif path.exists():
            result.jobs.append(file_job(path, out_dir / path.name, fmt))
        else:
            result.jobs.append(Job(item, None, error=f"{item}: no such file or folder"))
    check_unique(result.jobs)
    return result


def scan_folder(folder: Path, out_dir: Path) -> tuple[list[Path], list[Path]]:
    """(images and videos, other files) under ``folder``, sorted; the output folder's own files left out."""
    images, others = scan_images(folder)
    skip = out_dir.resolve()
    images = [p for p in images if not p.resolve().is_relative_to(skip)]
    others = [p for p in others if not p.resolve().is_relative_to(skip)]
    files = sorted(images + [p for p in others if is_video(p)])
    skipped = [p for p in others if not is_video(p)]
    if not files:
        also = f" ({len(skipped)} other files: {names(skipped)})" if skipped else ""
        raise NSTError(f"{folder}: no images or videos in this folder{also}")
    return files, skipped


def names(paths: list[Path], limit: int = 5) -> str:
    """``a.txt, b.doc`` or ``a.txt, ... and 7 more``: file names for a one-line message."""
    shown = ", ".join(str(p) for p in paths[:limit])
    return shown + (f" and {len(paths) - limit} more" if len(paths) > limit else "")


def file_job(src: Path, dest: Path, fmt: str | None) -> Job:
    """A job for one file in a batch: videos keep their name, images take the output extension."""
    video = is_video(src)
    return Job(str(src), dest if video else dest.with_suffix(output_ext(src, fmt)), video=video)


def check_unique(jobs: list[Job]) -> None:
    """NSTError when two inputs would be written to the same output file."""
    seen: dict[Path, str] = {}
    for job in jobs:
        if job.dest is None:
            continue
        key = job.dest.resolve()
        if key in seen:
            raise NSTError(f"{seen[key]} and {job.source} would both be written to {job.dest}")
        seen[key] = job.source


def check_input(src: Path) -> None:
    """A single input: any readable path that is not a folder (a file, or a pipe such as ``<(cat a.jpg)``)."""
    if not src.exists():
        raise NSTError(f"{src}: no such file")
    if not os.access(src, os.R_OK):
        raise NSTError(f"{src}: not readable")


def single_job(src: str, output: str, fmt: str | None) -> Job:
    """One input to one file, into an existing folder, or to stdout (images only)."""
    name = builtin_name(src) if src != STDIN else None
    builtin = name is not None
    if src != STDIN and not builtin:
        check_input(Path(src))
    video = src != STDIN and not builtin and is_video(src)
    if output == STDIN:
        if video:
            raise NSTError("a video cannot be written to stdout; give -o OUT.mp4")
        return Job(src, None)
    dest = Path(output)
    if dest.is_dir():
        name = "stdin.png" if src == STDIN else f"{name}.png" if builtin else Path(src).name
        dest = dest / (name if video else Path(name).with_suffix(output_ext(Path(name), fmt)).name)
    if video and dest.suffix.lower() not in VIDEO_EXTS:
        raise NSTError(f"{dest}: a video input needs a video output ({', '.join(sorted(VIDEO_EXTS))})")
    if not video and dest.suffix.lower() in VIDEO_EXTS:
        raise NSTError(f"{dest}: an image input cannot be written as a video")
    return Job(src, check_output_folder(dest) if video else check_output_image(dest), video=video)
