"""`nst compare CONTENT... --style STYLE --model MODEL -o REPORT_DIR`: fast vs iterative, same metric."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from nst_core.cli_options import name_list, nonneg_float, positive_int
from nst_core.errors import NSTError
from nst_core.losses import DEFAULT_CONTENT_LAYERS, DEFAULT_STYLE_LAYERS, LossWeights

DEFAULT_STEPS = "50,100,300,500"
_W = LossWeights()


def step_list(text: str) -> list[int]:
    """argparse type: comma-separated positive step counts (sorted, duplicates dropped)."""
    from infer.compare import parse_steps

    try:
        return parse_steps(text)
    except NSTError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "compare",
        help="fast (feed-forward) vs iterative stylization: same images, same metric, times, grid",
        description="Run a trained model and the iterative optimizer on the same content images at the same size, "
        "score every output with one fixed perceptual metric, time both, and write grid.png, "
        "loss_vs_time.png, report.json and report.md into REPORT_DIR.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("content", nargs="+", help="content image(s) (or skimage:NAME)")
    p.add_argument("--style", "-s", required=True, help="style image the metric and the optimizer use")
    p.add_argument(
        "--model",
        "-m",
        required=True,
        help="trained model: .onnx (onnxruntime), or .safetensors / checkpoint / run folder (PyTorch)",
    )
    p.add_argument("-o", "--output", required=True, metavar="REPORT_DIR", help="report folder (created)")
    p.add_argument(
        "--steps",
        type=step_list,
        default=DEFAULT_STEPS,
        help="comma-separated iterative step counts (one run to the largest, snapshots at each)",
    )
    p.add_argument("--size", type=positive_int, default=512, help="longer side of every output in pixels")
    p.add_argument("--repeats", type=positive_int, default=3, help="timed fast inferences per image (median)")
    p.add_argument("--tile", type=positive_int, default=256, help="longer side of the grid thumbnails")
    p.add_argument(
        "--metric",
        choices=("optimize", "model"),
        default="optimize",
        help="optimize: the nst optimize loss (weights and layers below); model: the loss the model was "
        "trained with, from its metadata (Johnson et al.'s comparison; the options below are ignored)",
    )
    p.add_argument(
        "--content-weight", type=nonneg_float, default=_W.content, help="metric (and optimizer) content weight"
    )
    p.add_argument("--style-weight", type=nonneg_float, default=_W.style, help="metric (and optimizer) style weight")
    p.add_argument(
        "--content-layers", type=name_list, default=list(DEFAULT_CONTENT_LAYERS), help="metric content layers"
    )
    p.add_argument("--style-layers", type=name_list, default=list(DEFAULT_STYLE_LAYERS), help="metric style layers")
    p.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto")
    p.add_argument(
        "--vgg-weights",
        default="caffe",
        help="caffe (original VGG19, offline), torchvision (IMAGENET1K_V1), or a state-dict path",
    )
    p.add_argument("--json", action="store_true", help="print the report's summary as JSON on stdout")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from infer.compare import compare, write_report
    from nst_core.vgg import check_layers

    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise NSTError(f"{out}: exists and is not a folder")
    if not Path(args.model).exists():
        raise NSTError(f"{args.model}: no such model file")
    check_layers([*args.content_layers, *args.style_layers])
    weights = LossWeights(
        content=args.content_weight,
        style=args.style_weight,
        tv=0.0,
        content_layers=args.content_layers,
        style_layers=args.style_layers,
    )
    report = compare(
        args.content,
        args.style,
        args.model,
        steps=args.steps,
        size=args.size,
        device=args.device,
        vgg_weights=args.vgg_weights,
        weights="model" if args.metric == "model" else weights,
        repeats=args.repeats,
        progress=not (args.quiet or (args.json and not sys.stderr.isatty())),
    )
    created = not out.exists()
    try:
        write_report(report, out, tile=args.tile)
    except BaseException:
        if created:  # never leave a half-filled new folder behind
            import shutil

            shutil.rmtree(out, ignore_errors=True)
        raise
    for w in report.warnings:
        print(f"nst compare: warning: {w}", file=sys.stderr)
    if args.json:
        print(json.dumps({"report_dir": str(out), **report.summary()}))
    elif not args.quiet:
        print(f"{report.answer()}\nwrote {out}/grid.png, loss_vs_time.png, report.json, report.md", file=sys.stderr)
    return 0
