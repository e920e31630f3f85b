"""`nst compare CONTENT... --style STYLE --model MODEL -o REPORT_DIR`: fast vs iterative, same metric."""

from __future__ import annotations

import argparse
import json

from infer.compare.config import DEFAULT_STEPS, DEFAULT_THUMB_SIZE, MODEL_METRIC, STARTS, CompareConfig
from nst_core.builtin_styles import style_help
from nst_core.cli.options import (
    LOSS_OPTIONS,
    add_command,
    add_device_option,
    add_max_pixels_option,
    add_output_option,
    add_report_options,
    add_vgg_option,
    list_of,
    loss_from_args,
    positive_int,
    show_progress,
)
from nst_core.log import LOG
from nst_core.losses.weights import LossWeights

_D = CompareConfig()
HELP = "fast (feed-forward) vs iterative stylization: same images, same metric, times, grid"
DESCRIPTION = (
    "Run a trained model and the iterative optimizer on the same content images at the same size, "
    "score every output with one fixed perceptual metric, time both, and write grid.png, "
    "loss_vs_time.png, report.json and report.md into REPORT_DIR."
)
EXAMPLES = (
    "nst compare photo1.jpg photo2.jpg --style candy.jpg --model candy.onnx -o report/ --size 512 "
    "--steps 50,100,300,500",
    "nst compare tubingen.jpg golden_gate.jpg --style candy.jpg --model candy.onnx -o report --size 256 "
    "--steps 50,100,200,300 --metric model",
    "nst compare photo.jpg --style starry_night --model starry_night -o report/ --size 256 --init noise "
    "--metric model  # Johnson et al.'s protocol: L-BFGS from noise",
)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(subparsers, "compare", HELP, DESCRIPTION, EXAMPLES)
    p.add_argument("content", nargs="+", help="content image(s) (a demo photo: astronaut, chelsea ...)")
    p.add_argument(
        "--style",
        "-s",
        required=True,
        help=style_help(
            "style image the metric and the optimizer use; for a network of several styles, its name picks the "
            "style the network paints (--style udnie scores the udnie style)"
        ),
    )
    p.add_argument(
        "--model",
        "-m",
        required=True,
        help="trained model: .onnx (onnxruntime), a shipped model's name (`nst models`), or .safetensors / "
        "checkpoint / run folder (PyTorch)",
    )
    add_output_option(p, "report folder (created; its parent must exist)", metavar="REPORT_DIR")
    p.add_argument(
        "--steps",
        type=list_of(positive_int),
        default=list(DEFAULT_STEPS),
        help="comma-separated iterative step counts (one run to the largest, snapshots at each)",
    )
    p.add_argument("--size", type=positive_int, default=_D.size, help="longer side of every output in pixels")
    p.add_argument(
        "--init",
        choices=list(STARTS),
        default=_D.init,
        help="the optimizer's starting image: the content photo (the stricter baseline) or noise, as Johnson et al. "
        "measured their networks; the report, grid and --json say which",
    )
    p.add_argument("--repeats", type=positive_int, default=_D.repeats, help="timed fast inferences per image (median)")
    p.add_argument(
        "--thumb-size", type=positive_int, default=DEFAULT_THUMB_SIZE, help="longer side of the grid's thumbnails"
    )
    add_device_option(p)
    add_vgg_option(p, _D.vgg_weights)
    add_max_pixels_option(p)
    add_metric_options(p)
    add_report_options(p, "print the report's summary as JSON on stdout")
    p.set_defaults(func=run)


def add_metric_options(p: argparse.ArgumentParser) -> None:
    """--metric and the loss flags it reads; no --tv-weight: the score is content + style, TV is no quality."""
    group = p.add_argument_group("metric")
    group.add_argument(
        "--metric",
        choices=("optimize", MODEL_METRIC),
        default="optimize",
        help="optimize: the nst optimize loss (the weights and layers below); model: the loss the model was "
        "trained with, from its metadata (Johnson et al.'s comparison; the options below are ignored)",
    )
    for flag, name, kind, text in LOSS_OPTIONS:
        if name != "tv":
            group.add_argument(flag, type=kind, default=getattr(_D.metric, name), help=text)


def config_from_args(args: argparse.Namespace) -> CompareConfig:
    """The flags as a CompareConfig; the loss flags as one LossWeights (validated here, layer names included)."""
    metric = MODEL_METRIC if args.metric == MODEL_METRIC else loss_from_args(args, LossWeights())
    return CompareConfig(
        steps=args.steps,
        size=args.size,
        repeats=args.repeats,
        metric=metric,
        init=args.init,
        device=args.device,
        vgg_weights=args.vgg_weights,
        progress=show_progress(args),
    )


def run(args: argparse.Namespace) -> int:
    from infer.compare.report import check_report_dir, write_report
    from infer.compare.run import compare

    out = check_report_dir(args.output)  # before minutes of work
    report = compare(args.content, args.style, args.model, config_from_args(args))
    created = not out.exists()
    try:
        write_report(report, out, thumb_size=args.thumb_size)
    except BaseException:
        if created:  # never leave a half-filled new folder behind
            import shutil

            shutil.rmtree(out, ignore_errors=True)
        raise
    for w in report.warnings:
        LOG.warning(w)
    if args.json:
        print(json.dumps({"report_dir": str(out), **report.summary()}))
    else:
        LOG.info(f"{report.answer()}\nwrote {out}/grid.png, loss_vs_time.png, report.json, report.md")
    return 0
