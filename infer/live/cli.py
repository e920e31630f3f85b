"""`nst live --model NAME`: a webcam (or a video file or stream) stylized live, in a window and/or into a file.

The loop is `infer.live.run`; the model is loaded as `nst stylize` loads it (`infer.stylize.run.load_model`:
a shipped name, an .onnx file or a trained network). Everything that can be wrong with the arguments (the
output, the source, no window to show) is one line before the model loads. Nothing heavy is imported
until `run`: OpenCV and PyAV come from the ``[live]`` extra.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from infer.stylize.cli import (
    add_flicker_options,
    add_runtime_options,
    add_work_size_option,
    check_flicker_options,
    quality,
)
from nst_core.cli.options import add_command, add_output_option, add_report_options, positive_int, unit_float
from nst_core.errors import NSTError
from nst_core.log import LOG

HELP = "stylize a webcam, video file or stream live: a window, a recording, the frame rate"
DESCRIPTION = (
    "Read a camera (--source 0, the default), a video file or a stream URL with OpenCV, stylize every frame "
    "with onnxruntime, show it (q or Esc stops) and/or record it (-o, sound not recorded). Reports frames per "
    "second. A window needs OpenCV with a GUI (opencv-python) and a display; without one, -o is required and "
    "Ctrl-C or --max-frames ends the recording. Needs the [live] extra: pip install 'nst-toolkit[live]'."
)
EXAMPLES = (
    "nst live --model starry_night_fast",
    "nst live --model starry_night_fast --size 480 --temporal",
    "nst live --model udnie_fast --source clip.mp4 -o clip_udnie.mp4 --json",
    "nst live --model the_scream_fast --source 0 -o webcam.mp4 --max-frames 300",
    "nst live --model six_styles_fast --style udnie  # n or the space bar: the next of its six styles",
)
DEFAULT_SIZE = 320


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(subparsers, "live", HELP, DESCRIPTION, EXAMPLES)
    p.add_argument(
        "--model",
        "-m",
        required=True,
        help="a shipped model's name (`nst models`; the *_fast ones are made for this), an .onnx file or a trained "
        "network",
    )
    p.add_argument("--source", default="0", help="camera index, video file or stream URL")
    add_output_option(p, "also record the stylized frames to this video file (.mp4, .mkv, .webm ...)", required=False)
    p.add_argument(
        "--size",
        type=positive_int,
        default=DEFAULT_SIZE,
        help="longer side of the stylized frames at most, in pixels (a smaller source keeps its size)",
    )
    p.add_argument("--max-frames", type=positive_int, metavar="N", help="stop after N frames (default: at the end)")
    p.add_argument("--no-window", action="store_true", help="show nothing (record to -o only)")
    p.add_argument("--preserve-color", action="store_true", help="keep the input's colours (stylized luminance)")
    p.add_argument("--strength", type=unit_float, default=1.0, help="blend with the input (0: the input)")
    add_work_size_option(p)
    add_flicker_options(p)
    p.add_argument("--quality", type=quality, default=95, help="recording quality: x264 CRF (100 - Q) x 0.51")
    add_runtime_options(p)
    add_report_options(p, "print one JSON object on stdout: frames, seconds, frames_per_second, size, provider")
    p.set_defaults(func=run)


def hint_fast_sibling(model: str) -> None:
    """A shipped style named without ``_fast`` when its fast network ships too: say so (same style, ~8x the
    frame rate on a CPU), once, on stderr."""
    from infer.models.shipped import find_shipped

    if not Path(model).exists() and find_shipped(f"{model}_fast") is not None:
        LOG.info(f"note: --model {model}_fast is the same style distilled into the fast network, for live frame rates")


def check_output(output: str) -> Path:
    """-o: a video file in a folder that accepts it, and PyAV to write it; one line otherwise."""
    from infer.stylize.video import VIDEO_EXTS, check_video_support
    from nst_core.files import check_output_folder

    dest = Path(output)
    if dest.suffix.lower() not in VIDEO_EXTS:
        raise NSTError(f"{dest}: the recording is a video; use one of {', '.join(sorted(VIDEO_EXTS))}")
    check_video_support()
    return check_output_folder(dest)


def wants_window(args: argparse.Namespace) -> bool:
    """Whether to show a window: unless --no-window, and only where one can be shown; -o is then required."""
    from infer.live.run import display_problem

    if args.no_window:
        if not args.output:
            raise NSTError("--no-window without -o: nothing would be shown or recorded")
        return False
    problem = display_problem()
    if problem is None:
        return True
    if not args.output:
        raise NSTError(f"no window can be shown: {problem}; give -o FILE to record the stylized frames instead")
    LOG.info(f"nst live: {problem}; recording to {args.output} without a window (Ctrl-C or --max-frames stops)")
    return False


def run(args: argparse.Namespace) -> int:
    """Check everything, open the source, load the model, run the loop, report."""
    from infer.live.run import Window, open_capture, run_live
    from infer.stylize.report import temporal_note
    from infer.stylize.run import load_model
    from infer.stylize.stylizer import FrameOptions

    output = check_output(args.output) if args.output else None
    check_flicker_options(args)
    show = wants_window(args)
    capture = open_capture(args.source)
    window = None
    try:
        stylizer = load_model(args, frames=True)
        hint_fast_sibling(args.model)
        window = Window() if show else None
        options = FrameOptions.from_args(args)
        result = run_live(
            stylizer, capture, options, output=output, window=window, max_frames=args.max_frames, quality=args.quality
        )
    finally:
        capture.close()
        if window is not None:
            window.close()
    summary = {**result.summary(), "provider": stylizer.provider, "model": str(stylizer.model_path)}
    if stylizer.styles:
        summary["style"] = stylizer.style_name
    if args.json:
        print(json.dumps(summary))
    else:
        (w, h), saved = result.size, f", saved {output}" if output else ""
        LOG.info(
            f"{result.frames} frames ({w}x{h}) in {result.seconds:.1f}s = {result.frames_per_second:.1f} frames/s, "
            f"median {summary['median_ms_per_frame']} ms/frame, {stylizer.provider}{temporal_note(summary)}; "
            f"stopped: {result.stopped}{saved}"
        )
    return 0
