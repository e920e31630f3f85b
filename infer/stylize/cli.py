"""`nst stylize INPUT... --model MODEL -o OUT`: instant stylization of images, folders, stdin and videos.

* one input: ``-o`` is the output file (its extension picks the format), an existing folder, or ``-``
  (stdout, PNG unless ``--format``); ``-`` as the input reads an encoded image from stdin, and any readable
  path that is not a folder is read as one image (a pipe such as ``<(curl ...)`` too);
* several inputs or a folder (searched recursively): ``-o`` is a folder (created if missing), file names
  and sub-folders are kept; an unreadable file is reported and skipped, the rest still done, and the
  exit status is 1 at the end; files that are neither images (what Pillow reads) nor videos are skipped
  and named on stderr;
* videos (``.mp4``, ``.mov``, ``.mkv``, ``.webm`` ...) are stylized frame by frame, their sound kept (``pip
  install 'nst-toolkit[video]'``, PyAV), ``--smooth`` against flicker;
* ``--model`` is an ``.onnx`` file from `nst export`, a shipped model's name (`infer.models.shipped`), or a trained
  network (run folder, checkpoint folder, ``.safetensors``) exported in memory for this run.

The steps live in their own modules: `infer.stylize.plan` (inputs -> jobs), `infer.stylize.run` (model,
images, videos) and `infer.stylize.report` (text or --json). Nothing heavy is imported until `run`.
"""

from __future__ import annotations

import argparse
import time

from infer.stylize.tiling import MIN_TILE, check_tile
from nst_core.cli.options import (
    add_command,
    add_max_pixels_option,
    add_output_option,
    add_report_options,
    nonneg_int,
    number,
    positive_int,
    unit_float,
)
from nst_core.errors import NSTError
from nst_core.image_io import SAVE_FORMATS

HELP = "stylize images, folders, stdin or videos with a trained network (onnxruntime)"
DESCRIPTION = (
    "Instant stylization with onnxruntime. One input: -o is a file, a folder or - (stdout). "
    "Several inputs or a folder: -o is a folder, names kept. `-` reads stdin."
)
EXAMPLES = (
    "nst stylize astronaut --model starry_night -o astronaut_starry_night.png",
    "nst stylize photo.jpg --model candy.onnx -o out.png",
    "nst stylize photos/ more.jpg --model candy.onnx -o styled/",
    "nst stylize - --model candy.onnx -o - < in.jpg > out.png",
    "nst stylize clip.mp4 --model starry_night_fast -o clip_starry.mp4 --temporal",
    "nst stylize --info --model candy.onnx",
    "nst stylize photo.jpg --model runs/candy -o out.png",
)
#: ``--format`` values: the extensions `save_image` writes, without the dot.
FORMATS = tuple(sorted(ext[1:] for ext in SAVE_FORMATS))
quality = number(int, 1, 100)
smooth = number(float, 0, 1, high_open=True)
#: --temporal given without a value: strong enough for a 3x lower warping error, weak enough not to smear
#: (benchmarks/README.md, "Video flicker").
TEMPORAL_DEFAULT = 0.7


def tile(text: str) -> int:
    """argparse type of --tile: 0 (never tile) or a tile side of at least `infer.stylize.tiling.MIN_TILE` pixels."""
    value = nonneg_int(text)
    try:
        return check_tile(value)  # type: ignore[return-value]
    except NSTError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


tile.bounds = f"0 or >= {MIN_TILE}"  # type: ignore[attr-defined]  # shown by HelpFormatter


def add_work_size_option(p: argparse.ArgumentParser) -> None:
    """--work-size: the stroke size of a picture larger than the painting the model learnt from (`nst stylize`,
    `nst live`; nst_core.scales)."""
    p.add_argument(
        "--work-size",
        type=nonneg_int,
        metavar="PX",
        help="on a picture well over PX px, run the network at PX too and blend, so the strokes have the size the "
        "painting's have at the picture's size; 0: one pass at the picture's size (default: the model's own "
        "choice, made by its loss when it was trained: --info shows it)",
    )


def add_runtime_options(p: argparse.ArgumentParser) -> None:
    """--provider and --threads: where onnxruntime runs the model (`nst stylize`, `nst live`)."""
    p.add_argument(
        "--provider",
        default="auto",
        help="execution provider: auto (the first this onnxruntime build has of TensorRT, CUDA, MIGraphX, ROCm, "
        "CoreML, DirectML, OpenVINO, else the CPU), or cpu, cuda, tensorrt, rocm, coreml, dml, openvino ... or a full "
        "onnxruntime provider name",
    )
    p.add_argument("--threads", type=positive_int, help="onnxruntime CPU threads (default: its own choice)")
    p.add_argument(
        "--style",
        metavar="NAME[=W],...",
        help="a network of several styles: the style to paint, or a blend such as starry_night=0.7,udnie=0.3 "
        "(weights normalised; default: its first style; --info lists them)",
    )
    p.add_argument(
        "--pixel-range",
        choices=("0-1", "0-255"),
        help="the pixel values the model takes and gives: 0-255 for the ONNX model zoo's fast-neural-style networks "
        "(default: the model's nst.input_range, else 0-1)",
    )
    p.add_argument(
        "--precision",
        choices=("auto", "fp32"),
        default="auto",
        help="auto: on the CPU, a shipped model's int8 copy where one ships (the _fast ones: 1.4x faster, as good); "
        "fp32: the model file as named",
    )


def add_flicker_options(p: argparse.ArgumentParser) -> None:
    """--temporal, --smooth and --flicker: video frames against flicker, and its measure (`nst stylize`, `nst live`)."""
    p.add_argument(
        "--temporal",
        type=smooth,
        nargs="?",
        const=TEMPORAL_DEFAULT,
        default=0.0,
        metavar="S",
        help="video: follow the motion (optical flow) and blend each frame with the previous output moved along it, "
        f"S of it, where the flow is reliable; scene cuts start afresh (flag alone: {TEMPORAL_DEFAULT}; needs OpenCV)",
    )
    p.add_argument(
        "--smooth",
        type=smooth,
        nargs="?",
        const=0.5,
        default=0.0,
        metavar="S",
        help="video: blend each frame with the previous output where the input did not change (flag alone: 0.5; "
        "moving things still flicker: --temporal follows them)",
    )
    p.add_argument(
        "--flicker",
        action="store_true",
        help="video: measure the warping error of the frames written (Lai et al. 2018; lower is steadier) and report "
        "it with --json and on stderr",
    )


def check_flicker_options(args: argparse.Namespace, videos: bool = True) -> None:
    """Before any work: one way against flicker at a time, and OpenCV present when there are ``videos`` to follow."""
    from infer.stylize.stylizer import FrameOptions

    FrameOptions.from_args(args).check()
    if videos and (args.temporal > 0 or args.flicker):
        from infer.temporal.flow import load_cv2

        load_cv2()


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(subparsers, "stylize", HELP, DESCRIPTION, EXAMPLES)
    p.add_argument("inputs", nargs="*", metavar="INPUT", help="image or video files, folders (recursive), - for stdin")
    p.add_argument(
        "--model",
        "-m",
        required=True,
        help="an .onnx model from `nst export`, a shipped model's name (`nst models` lists them), or a trained "
        "network (run folder, checkpoint folder or .safetensors), then exported in memory for this run",
    )
    add_output_option(p, "output file, folder, or - for stdout", required=False)
    p.add_argument("--size", type=positive_int, help="longer side of the output in pixels (default: the input's)")
    p.add_argument("--preserve-color", action="store_true", help="keep the input's colours (stylized luminance)")
    p.add_argument(
        "--strength", type=unit_float, default=1.0, help="blend of the stylized image with the input (0: the input)"
    )
    add_work_size_option(p)
    add_runtime_options(p)
    p.add_argument(
        "--tile",
        type=tile,
        metavar="N",
        help="process in overlapping NxN tiles when a side is longer than N; 0: never "
        "(default: 1024 px tiles for images over 2048x2048 pixels)",
    )
    add_flicker_options(p)
    p.add_argument(
        "--format", choices=FORMATS, help="output image format for folders and stdout (default: the input's, else png)"
    )
    p.add_argument(
        "--quality", type=quality, default=95, help="JPEG/WebP quality; videos: x264/VP9 CRF (100 - Q) x 0.51, 95 -> 3"
    )
    p.add_argument("--info", action="store_true", help="print the model's metadata, inputs and provider, then exit")
    add_max_pixels_option(p)
    add_report_options(p, "print one JSON object on stdout: outputs, per-image ms, errors, skipped files, provider")
    p.set_defaults(func=run)


def show_info(args: argparse.Namespace) -> int:
    """--info: the model's metadata, inputs, outputs and provider (a table, or --json)."""
    import json

    from infer.stylize.report import print_info
    from infer.stylize.run import load_model

    info = load_model(args).info()
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        print_info(info)
    return 0


def run(args: argparse.Namespace) -> int:
    """Plan (all argument errors before any work), load the model, run every job, report."""
    from infer.stylize.plan import STDIN, plan
    from infer.stylize.report import report, report_skipped
    from infer.stylize.run import load_model, run_plan

    if args.info:
        return show_info(args)
    if args.json and args.output == STDIN:
        raise NSTError("--json and -o - both use stdout; write the image to a file")
    jobs = plan(args.inputs, args.output, args.format)
    if jobs.single_video:
        from infer.stylize.video import check_video_support

        check_video_support()
    videos = any(job.video for job in jobs.jobs)
    check_flicker_options(args, videos)
    report_skipped(jobs, args)
    t0 = time.perf_counter()
    stylizer = load_model(args, frames=videos)
    outcomes = run_plan(stylizer, jobs, args)
    return report(outcomes, jobs, stylizer, args, time.perf_counter() - t0)
