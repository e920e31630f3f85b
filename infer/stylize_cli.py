"""`nst stylize INPUT... --model model.onnx -o OUT`: instant stylization of images, folders, stdin and videos.

* one input: ``-o`` is the output file (its extension picks the format), an existing folder, or ``-``
  (stdout, PNG unless ``--format``); ``-`` as the input reads an encoded image from stdin;
* several inputs or a folder (searched recursively): ``-o`` is a folder (created if missing), file names
  and sub-folders are kept; an unreadable file is reported and skipped, the rest still done, and the
  exit status is 1 at the end;
* videos (``.mp4``, ``.mov``, ``.mkv``, ``.webm`` ...) are stylized frame by frame (``pip install
  'nst-toolkit[video]'``), ``--smooth`` against flicker.

Bad input (not an ONNX model, a model whose input is not an image, a missing output folder ...) is
one line and exit status 2; outputs are written to a temporary file and renamed, never half-written.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nst_core.cli_options import positive_int
from nst_core.errors import NSTError
from nst_core.image_io import BUILTIN_PREFIX, SAVE_FORMATS, encode_image, image_format, save_image

#: Extensions picked up when a folder is given (other files are ignored).
IMAGE_EXTS = frozenset(
    {".png", ".jpg", ".jpeg", ".jfif", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".ppm", ".pgm", ".pnm", ".tga"}
)
FORMAT_EXTS = {
    "png": ".png",
    "jpg": ".jpg",
    "jpeg": ".jpg",
    "webp": ".webp",
    "bmp": ".bmp",
    "tif": ".tif",
    "tiff": ".tif",
}
STDIN = "-"


def _unit_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def _smooth(text: str) -> float:
    value = _unit_float(text)
    if value >= 1.0:
        raise argparse.ArgumentTypeError("must be below 1 (1 would freeze the first frame)")
    return value


def _nonneg_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _quality(text: str) -> int:
    value = _nonneg_int(text)
    if not 1 <= value <= 100:
        raise argparse.ArgumentTypeError(f"must be between 1 and 100, got {value}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "stylize",
        help="stylize images, folders, stdin or videos with an exported ONNX model (onnxruntime)",
        description="Instant stylization with a model from `nst export`. One input: -o is a file, a folder or - "
        "(stdout). Several inputs or a folder: -o is a folder, names kept. `-` reads stdin.",
    )
    p.add_argument(
        "inputs",
        nargs="*",
        metavar="INPUT",
        help="image or video files, folders (searched recursively), or - for stdin",
    )
    p.add_argument("--model", "-m", required=True, help="the .onnx model (from `nst export`)")
    p.add_argument("-o", "--output", help="output file, folder, or - for stdout")
    p.add_argument(
        "--size",
        type=positive_int,
        default=None,
        help="longer side of the output in pixels (default: the input's own size)",
    )
    p.add_argument("--preserve-color", action="store_true", help="keep the input's colours (stylized luminance)")
    p.add_argument(
        "--strength",
        type=_unit_float,
        default=1.0,
        help="0..1: blend of the stylized image with the input (default: 1; 0 returns the input)",
    )
    p.add_argument(
        "--provider",
        default="auto",
        help="execution provider: auto (default: TensorRT, CUDA, else CPU), cpu, cuda, tensorrt, dml, "
        "coreml, openvino, or a full onnxruntime provider name",
    )
    p.add_argument("--threads", type=positive_int, default=None, help="CPU threads (default: onnxruntime's)")
    p.add_argument(
        "--tile",
        type=_nonneg_int,
        default=None,
        metavar="N",
        help="process in overlapping NxN tiles when a side is longer than N; 0: never "
        "(default: 1024 px tiles for images over 2048x2048 pixels)",
    )
    p.add_argument(
        "--smooth",
        type=_smooth,
        nargs="?",
        const=0.5,
        default=0.0,
        metavar="S",
        help="video: blend each frame with the previous output where the input did not move, "
        "S in [0, 1) (flag alone: 0.5)",
    )
    p.add_argument(
        "--format",
        choices=sorted(FORMAT_EXTS),
        default=None,
        help="output image format for folders and stdout (default: the input's, else png)",
    )
    p.add_argument("--quality", type=_quality, default=95, help="JPEG/WebP quality (default: 95; videos: quality/10)")
    p.add_argument("--info", action="store_true", help="print the model's metadata, inputs and provider, then exit")
    p.add_argument("--json", action="store_true", help="print one JSON object: outputs, per-image ms, provider, model")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar or summary")
    p.set_defaults(func=run)


# ---------------------------------------------------------------------------------------------- planning


@dataclass
class Job:
    """One input and where its result goes (``dest`` None: stdout)."""

    source: str
    dest: Path | None
    video: bool = False
    error: str | None = None  # known to fail before anything runs (e.g. a missing file among several)


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


def _is_video(path: str | Path) -> bool:
    from infer.video import is_video

    return is_video(path)


def _image_ext(src: Path, fmt: str | None) -> str:
    if fmt:
        return FORMAT_EXTS[fmt]
    ext = src.suffix.lower()
    return ext if ext in SAVE_FORMATS else ".png"


def _scan(folder: Path, skip: Path | None) -> list[Path]:
    """Image and video files under ``folder`` (recursive, sorted), hidden files and ``skip``'s contents left out."""
    from infer.video import VIDEO_EXTS

    found = []
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts) or not p.is_file():
            continue
        if skip is not None and p.resolve().is_relative_to(skip):
            continue
        if p.suffix.lower() in IMAGE_EXTS or p.suffix.lower() in VIDEO_EXTS:
            found.append(p)
    return found


def _parent(path: Path) -> Path:
    return path.parent if str(path.parent) else Path(".")


def plan(inputs: list[str], output: str | None, fmt: str | None) -> tuple[list[Job], bool]:
    """Jobs for the inputs and whether this is a batch (output folder) run; NSTError on unusable arguments."""
    if not inputs:
        raise NSTError("no input given (image or video files, folders, or - for stdin)")
    if STDIN in inputs and len(inputs) > 1:
        raise NSTError("- (stdin) cannot be combined with other inputs")
    if output is None:
        raise NSTError("no output given: use -o FILE, -o FOLDER, or -o - for stdout")
    batch = len(inputs) > 1 or any(i != STDIN and Path(i).is_dir() for i in inputs)
    if not batch:
        return [_single_job(inputs[0], output, fmt)], False

    if output == STDIN:
        raise NSTError("several inputs or a folder need an output folder (-o FOLDER), not stdout")
    out_dir = Path(output)
    if out_dir.exists() and not out_dir.is_dir():
        raise NSTError(f"{out_dir}: exists and is not a folder (several inputs or a folder need an output folder)")
    if not out_dir.exists() and not _parent(out_dir).is_dir():
        raise NSTError(f"{out_dir}: cannot create the output folder, {_parent(out_dir)} does not exist")
    skip = out_dir.resolve()
    jobs: list[Job] = []
    for item in inputs:
        p = Path(item)
        if item.startswith(BUILTIN_PREFIX):
            jobs.append(Job(item, out_dir / f"{item[len(BUILTIN_PREFIX) :]}{FORMAT_EXTS[fmt or 'png']}"))
            continue
        if p.is_dir():
            files = _scan(p, skip)
            if not files:
                raise NSTError(f"{p}: no images or videos in this folder")
            pairs = [(f, f.relative_to(p)) for f in files]
        elif p.exists():
            pairs = [(p, Path(p.name))]
        else:
            jobs.append(Job(item, None, error=f"{item}: no such file or folder"))
            continue
        for src, rel in pairs:
            video = _is_video(src)
            dest = out_dir / (rel if video else rel.with_suffix(_image_ext(src, fmt)))
            jobs.append(Job(str(src), dest, video=video))
    seen: dict[Path, str] = {}
    for job in jobs:
        if job.dest is None:
            continue
        key = job.dest.resolve()
        if key in seen:
            raise NSTError(f"{seen[key]} and {job.source} would both be written to {job.dest}")
        seen[key] = job.source
    return jobs, True


def _single_job(src: str, output: str, fmt: str | None) -> Job:
    from infer.video import VIDEO_EXTS

    builtin = src.startswith(BUILTIN_PREFIX)
    if src != STDIN and not builtin and not Path(src).is_file():
        raise NSTError(f"{src}: {'is a directory' if Path(src).is_dir() else 'no such file'}")
    video = src != STDIN and not builtin and _is_video(src)
    if output == STDIN:
        if video:
            raise NSTError("a video cannot be written to stdout; give -o OUT.mp4")
        return Job(src, None)
    dest = Path(output)
    if dest.is_dir():
        name = "stdin.png" if src == STDIN else f"{src[len(BUILTIN_PREFIX) :]}.png" if builtin else Path(src).name
        dest = dest / (name if video else Path(name).with_suffix(_image_ext(Path(name), fmt)).name)
    if video:
        if dest.suffix.lower() not in VIDEO_EXTS:
            raise NSTError(f"{dest}: a video input needs a video output ({', '.join(sorted(VIDEO_EXTS))})")
    else:
        if dest.suffix.lower() in VIDEO_EXTS:
            raise NSTError(f"{dest}: an image input cannot be written as a video")
        image_format(dest)  # NSTError naming the unsupported extension
    if not _parent(dest).is_dir():
        raise NSTError(f"{dest}: output folder {_parent(dest)} does not exist")
    return Job(src, dest, video=video)


# ---------------------------------------------------------------------------------------------- running


def _read_stdin() -> bytes:
    data = sys.stdin.buffer.read()
    if not data:
        raise NSTError("<stdin>: no data (pipe an image in, e.g. `nst stylize - ... < photo.jpg`)")
    return data


def _run_image(stylizer: Any, job: Job, args: argparse.Namespace) -> Outcome:
    source: Any = _read_stdin() if job.source == STDIN else job.source
    content = stylizer.content_tensor(source, args.size)
    t0 = time.perf_counter()
    out = stylizer.stylize_content(content, preserve_color=args.preserve_color, strength=args.strength, tile=args.tile)
    ms = (time.perf_counter() - t0) * 1000
    h, w = out.shape[-2:]
    tiles = 0 if args.strength == 0 else stylizer.count_tiles(w, h, args.tile)
    if job.dest is None:
        data = encode_image(out, SAVE_FORMATS[FORMAT_EXTS[args.format or "png"]], quality=args.quality)
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        where = "<stdout>"
    else:
        job.dest.parent.mkdir(parents=True, exist_ok=True)
        save_image(out, job.dest, quality=args.quality)
        where = str(job.dest)
    return Outcome(job.source, where, round(ms, 2), (int(w), int(h)), tiles)


def _run_video(stylizer: Any, job: Job, args: argparse.Namespace, progress: bool) -> Outcome:
    from infer.video import stylize_video

    assert job.dest is not None
    job.dest.parent.mkdir(parents=True, exist_ok=True)
    res = stylize_video(
        stylizer,
        job.source,
        job.dest,
        size=args.size,
        preserve_color=args.preserve_color,
        strength=args.strength,
        smooth=args.smooth,
        tile=args.tile,
        quality=args.quality,
        progress=progress,
    )
    return Outcome(
        job.source,
        str(job.dest),
        round(res.ms_per_frame, 2),
        res.size,
        frames=res.frames,
        extra={"fps": res.fps, "seconds": round(res.seconds, 3)},
    )


def _print_info(info: dict[str, Any]) -> None:
    from infer.stylize import _fmt_shape, short_provider

    meta = info["metadata"]
    rows = [
        ("model", f"{info['model']} ({info['size_bytes'] / 1e6:.2f} MB, loaded in {info['load_ms']:.0f} ms)"),
        (
            "provider",
            f"{info['provider']} (available: {', '.join(short_provider(p) for p in info['providers_available'])})",
        ),
    ]
    rows += [("input", f"{i['name']}: {i['type']} {_fmt_shape(i['shape'])}") for i in info["inputs"]]
    rows += [("output", f"{o['name']}: {o['type']} {_fmt_shape(o['shape'])}") for o in info["outputs"]]
    for key in sorted(meta, key=lambda k: (not k.startswith("nst."), k)):
        value = meta[key]
        rows.append((key, json.dumps(value, sort_keys=True) if isinstance(value, dict | list) else str(value)))
    if not meta:
        rows.append(("metadata", "(none: not exported by `nst export`)"))
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")


def run(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from infer.stylize import Stylizer

    if args.info:
        stylizer = Stylizer(args.model, provider=args.provider, threads=args.threads)
        info = stylizer.info()
        if args.json:
            print(json.dumps(info, indent=2))
        else:
            _print_info(info)
        return 0
    if args.json and args.output == STDIN:
        raise NSTError("--json and -o - both use stdout; write the image to a file")
    jobs, batch = plan(args.inputs, args.output, args.format)
    if any(j.video for j in jobs if j.error is None):
        from infer.video import check_video_support

        if not batch:
            check_video_support()
    if args.tile is not None and 0 < args.tile < 32:
        raise NSTError(f"--tile must be 0 (off) or at least 32 pixels, got {args.tile}")

    t_start = time.perf_counter()
    stylizer = Stylizer(args.model, provider=args.provider, threads=args.threads)
    if batch:
        Path(args.output).mkdir(exist_ok=True)
    show = not (args.quiet or (args.json and not sys.stderr.isatty()))
    outcomes: list[Outcome] = []
    bar = tqdm(jobs, desc="stylize", unit="file", disable=not (show and batch), dynamic_ncols=True)
    for job in bar:
        try:
            if job.error:
                raise NSTError(job.error)
            outcome = _run_video(stylizer, job, args, show) if job.video else _run_image(stylizer, job, args)
        except NSTError as e:
            if not batch:
                raise
            outcomes.append(Outcome(job.source, error=str(e)))
            tqdm.write(f"nst stylize: error: {e} (skipped)", file=sys.stderr)
            continue
        except OSError as e:  # e.g. disk full while writing: a per-file failure in a batch
            if not batch:
                raise NSTError(f"{job.dest or job.source}: {e.strerror or e}") from None
            outcomes.append(Outcome(job.source, error=f"{job.dest or job.source}: {e.strerror or e}"))
            tqdm.write(f"nst stylize: error: {outcomes[-1].error} (skipped)", file=sys.stderr)
            continue
        outcomes.append(outcome)
    bar.close()

    done = [o for o in outcomes if o.error is None]
    failed = [o for o in outcomes if o.error is not None]
    total_s = time.perf_counter() - t_start
    if args.json:
        images = []
        for o in done:
            entry: dict[str, Any] = {"input": o.source, "output": o.output, "ms": o.ms, "size": list(o.size or ())}
            if o.frames is not None:
                entry.update(frames=o.frames, **o.extra)
            else:
                entry["tiles"] = o.tiles
            images.append(entry)
        print(
            json.dumps(
                {
                    "outputs": [o.output for o in done],
                    "ms": [o.ms for o in done],
                    "images": images,
                    "errors": [{"input": o.source, "error": o.error} for o in failed],
                    "provider": stylizer.provider,
                    "model": str(stylizer.model_path),
                    "style": stylizer.metadata.get("nst.style"),
                    "load_ms": round(stylizer.load_seconds * 1000, 1),
                    "total_s": round(total_s, 3),
                }
            )
        )
    elif not args.quiet:
        if batch:
            mean = sum(o.ms or 0 for o in done) / max(1, len(done))
            print(
                f"stylized {len(done)} of {len(outcomes)} inputs into {args.output} "
                f"({mean:.0f} ms per image/frame, {stylizer.provider}, {total_s:.1f}s in all)",
                file=sys.stderr,
            )
        elif done:
            o = done[0]
            what = f"{o.frames} frames, {o.ms:.0f} ms/frame" if o.frames is not None else f"{o.ms:.0f} ms"
            tiles = f", {o.tiles} tiles" if o.tiles > 1 else ""
            print(
                f"saved {o.output} ({o.size[0]}x{o.size[1]}, {what}{tiles}, {stylizer.provider})",  # type: ignore[index]
                file=sys.stderr,
            )
    if failed:
        print(f"nst stylize: {len(failed)} of {len(outcomes)} inputs failed", file=sys.stderr)
        return 1
    return 0
