"""`nst export CHECKPOINT -o model.onnx`: a trained network to ONNX, checked against PyTorch."""

from __future__ import annotations

import argparse
import json
import sys

from nst_core.cli_options import positive_float


def _opset(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer opset, got {text!r}") from None
    if not 13 <= value <= 23:
        raise argparse.ArgumentTypeError(f"opset must be between 13 and 23, got {value}")
    return value


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), value


def register(subparsers: argparse._SubParsersAction) -> None:
    from infer.export import DEFAULT_OPSET, DEFAULT_TOLERANCE, EXPORTERS

    p = subparsers.add_parser(
        "export",
        help="export a trained network to ONNX (checked against PyTorch; optional fp16 / int8)",
        description="Export a trained style network to ONNX with dynamic batch, height and width. The model "
        "is run with onnxruntime on random images and compared with PyTorch; the export fails "
        "above --tolerance. --fp16 / --int8 also write OUT.fp16.onnx / OUT.int8.onnx.",
    )
    p.add_argument(
        "checkpoint",
        metavar="CHECKPOINT",
        help="run folder (its final or latest network), checkpoint folder, or network .safetensors file",
    )
    p.add_argument("-o", "--output", required=True, help="output .onnx file")
    p.add_argument("--opset", type=_opset, default=DEFAULT_OPSET, help=f"ONNX opset (default: {DEFAULT_OPSET})")
    p.add_argument("--fp16", action="store_true", help="also write a float16 model (OUT.fp16.onnx)")
    p.add_argument(
        "--int8", action="store_true", help="also write an int8 model (OUT.int8.onnx, static onnxruntime quantization)"
    )
    p.add_argument(
        "--calibration",
        action="append",
        default=None,
        metavar="PATH",
        help="images or folders to calibrate int8 with; repeatable (default: built-in photos)",
    )
    p.add_argument(
        "--tolerance",
        type=positive_float,
        default=DEFAULT_TOLERANCE,
        help=f"largest max-abs difference from PyTorch, RGB in [0, 1] (default: {DEFAULT_TOLERANCE:g})",
    )
    p.add_argument("--style", default=None, help="style name stored in the model (default: the checkpoint's)")
    p.add_argument(
        "--meta",
        action="append",
        type=_key_value,
        default=[],
        metavar="KEY=VALUE",
        help="extra metadata (stored as nst.KEY); repeatable",
    )
    p.add_argument(
        "--exporter",
        choices=EXPORTERS,
        default="auto",
        help="torch.onnx exporter (default: auto = dynamo, falling back to torchscript)",
    )
    p.add_argument(
        "--no-rewrite",
        dest="rewrite",
        action="store_false",
        help="export the output convolution as is (see `infer.export` for the CPU-speed rewrite)",
    )
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    p.add_argument("--quiet", "-q", action="store_true", help="print nothing but errors (and --json)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from infer.export import export_onnx

    extra = dict(args.meta)
    if args.style:
        extra["style"] = args.style
    result = export_onnx(
        args.checkpoint,
        args.output,
        opset=args.opset,
        fp16=args.fp16,
        int8=args.int8,
        tolerance=args.tolerance,
        metadata=extra,
        calibration=args.calibration,
        exporter=args.exporter,
        rewrite=args.rewrite,
    )
    if args.json:
        print(json.dumps(result.to_dict()))
        return 0
    if args.quiet:
        return 0
    meta = result.metadata
    out = sys.stdout
    print(
        f"exported {result.path} ({meta.get('nst.variant')} network, style {meta.get('nst.style', '?')}, "
        f"opset {result.opset}, {result.exporter} exporter, {result.size_bytes / 1e6:.2f} MB, "
        f"{result.seconds:.1f}s)",
        file=out,
    )
    print(
        f"  fp32 vs PyTorch: max abs error {result.max_abs_error:.2e} (tolerance {result.tolerance:.0e}) "
        f"on random images {', '.join('x'.join(map(str, s)) for s in result.check_shapes)}",
        file=out,
    )
    for variant in (result.fp16, result.int8):
        if variant is not None:
            print(
                f"  {variant.precision} {variant.path}: max abs error vs fp32 {variant.max_abs_error:.2e}, "
                f"mean {variant.mean_abs_error:.2e} ({variant.size_bytes / 1e6:.2f} MB)",
                file=out,
            )
    return 0
