"""`nst export CHECKPOINT -o model.onnx`: a trained network to ONNX, checked against PyTorch.

A thin layer over `infer.export.export_onnx`: parse, export, report (the summary on stderr, the
JSON object on stdout with --json). Each flag is named after the keyword argument it sets. The options
come from `infer.export.format` (no torch); the exporter, which imports torch and onnx, loads only when an
export runs, so `--help` stays fast.
"""

from __future__ import annotations

import argparse
import inspect
import json
from typing import TYPE_CHECKING, Any

from infer.export.format import DEFAULT_OPSET, DEFAULT_TOLERANCE, EXPORTERS, MAX_OPSET, MIN_OPSET
from nst_core.cli.options import add_command, add_output_option, add_report_options, number, positive_float
from nst_core.log import LOG

if TYPE_CHECKING:
    from infer.export import ExportResult

HELP = "export a trained network to ONNX (checked against PyTorch; optional fp16 / int8)"
DESCRIPTION = (
    "Export a trained style network to ONNX with dynamic batch, height and width.\n"
    "The model is run with onnxruntime on random images and compared with PyTorch; the export\n"
    "fails above --tolerance and writes nothing. --fp16 / --int8 also write OUT.fp16.onnx /\n"
    "OUT.int8.onnx, each with its error against the fp32 model reported."
)
EXAMPLES = (
    "nst export runs/candy -o candy.onnx [--fp16] [--int8]        # run folder, checkpoint folder or .safetensors",
    "nst export runs/candy -o candy.onnx --int8 --calibration photos/  # int8 calibrated on your own photos",
    "nst export runs/candy/network.safetensors -o candy.onnx --style candy --meta author=me --json",
)


def key_value(text: str) -> tuple[str, str]:
    """argparse type: ``KEY=VALUE`` (the value may be empty or contain ``=``)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), value


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(subparsers, "export", HELP, DESCRIPTION, EXAMPLES)
    p.add_argument(
        "checkpoint",
        metavar="CHECKPOINT",
        help="run folder (its final or latest network), checkpoint folder, or network .safetensors file",
    )
    add_output_option(p, "output .onnx file", metavar="OUT.onnx")
    p.add_argument("--opset", type=number(int, MIN_OPSET, MAX_OPSET), default=DEFAULT_OPSET, help="ONNX opset")
    p.add_argument("--fp16", action="store_true", help="also write a float16 model (OUT.fp16.onnx)")
    p.add_argument("--int8", action="store_true", help="also write a statically quantized int8 model (OUT.int8.onnx)")
    p.add_argument(
        "--calibration",
        action="append",
        metavar="PATH",
        help="image or folder (recursive) to calibrate int8 with; repeatable (default: built-in photos)",
    )
    p.add_argument(
        "--tolerance",
        type=positive_float,
        default=DEFAULT_TOLERANCE,
        help="largest max-abs difference from PyTorch, RGB in [0, 1]",
    )
    p.add_argument("--style", help="style name stored in the model (default: the checkpoint's)")
    p.add_argument(
        "--meta", action="append", type=key_value, metavar="KEY=VALUE", help="extra metadata (nst.KEY); repeatable"
    )
    p.add_argument(
        "--exporter", choices=EXPORTERS, default="auto", help="torch.onnx exporter; auto: dynamo, then torchscript"
    )
    p.add_argument(
        "--no-rewrite",
        dest="rewrite",
        action="store_false",
        help="export the output convolution as is (see infer/export/graph.py for the CPU-speed rewrite)",
    )
    add_report_options(p, "print the result as one JSON object on stdout")
    p.set_defaults(func=run)


def export_options(args: argparse.Namespace) -> dict[str, Any]:
    """`export_onnx`'s keyword arguments from the flags of the same name; --style and --meta as its metadata."""
    from infer.export import export_onnx

    names = [p.name for p in inspect.signature(export_onnx).parameters.values() if p.kind is p.KEYWORD_ONLY]
    options = {name: getattr(args, name) for name in names if hasattr(args, name)}
    options["metadata"] = dict(args.meta or []) | ({"style": args.style} if args.style else {})
    return options


def run(args: argparse.Namespace) -> int:
    from infer.export import export_onnx

    result = export_onnx(args.checkpoint, args.output, **export_options(args))
    if args.json:
        print(json.dumps(result.to_dict()))
    else:
        LOG.info(summary(result))
    return 0


def summary(result: ExportResult) -> str:
    """The result in a few lines for people: file, error against PyTorch, each variant's error."""
    meta = result.metadata
    shapes = ", ".join("x".join(map(str, s)) for s in result.check_shapes)
    lines = [
        f"exported {result.path} ({meta.get('nst.variant')} network, style {meta.get('nst.style', '?')}, "
        f"opset {result.opset}, {result.exporter} exporter, {result.size_bytes / 1e6:.2f} MB, {result.seconds:.1f}s)",
        f"  fp32 vs PyTorch: max abs error {result.max_abs_error:.2e} (tolerance {result.tolerance:.0e}) "
        f"on random images {shapes}",
    ]
    for v in (result.fp16, result.int8):
        if v is not None:
            lines.append(
                f"  {v.precision} {v.path}: max abs error vs fp32 {v.max_abs_error:.2e}, "
                f"mean {v.mean_abs_error:.2e} ({v.size_bytes / 1e6:.2f} MB)"
            )
    if result.calibration_skipped:
        names = ", ".join(result.calibration_skipped[:3]) + (", ..." if len(result.calibration_skipped) > 3 else "")
        lines.append(f"  calibration: skipped {len(result.calibration_skipped)} non-image file(s): {names}")
    return "\n".join(lines)
