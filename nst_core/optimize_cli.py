"""`nst optimize CONTENT --style STYLE [--style STYLE2 ...] -o OUT`: the iterative method from the shell."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from nst_core.cli import name_list, nonneg_float, positive_float, positive_int
from nst_core.errors import NSTError
from nst_core.image_io import image_format, open_image, save_image
from nst_core.losses import DEFAULT_CONTENT_LAYERS, DEFAULT_STYLE_LAYERS
from nst_core.optimize import OptimizeConfig, optimize

_D = OptimizeConfig()


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "optimize",
        help="stylize one image by optimising its pixels (Gatys et al.)",
        description="Iterative neural style transfer: minimise content + style (+ TV) loss over the pixels.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("content", help="content image")
    p.add_argument(
        "--style", "-s", action="append", required=True, metavar="STYLE", help="style image; repeat for several styles"
    )
    p.add_argument("-o", "--output", required=True, help="output image (.png, .jpg, ...)")
    p.add_argument("--size", type=positive_int, default=_D.size, help="longer side of the output in pixels")
    p.add_argument("--steps", type=positive_int, default=_D.steps, help="optimizer steps at the final scale")
    p.add_argument("--optimizer", choices=("lbfgs", "adam"), default=_D.optimizer)
    p.add_argument("--lr", type=positive_float, default=_D.lr, help="Adam step size (pixels in [0, 1])")
    p.add_argument("--init", default=_D.init, help="content, noise, or the path of a starting image")
    p.add_argument("--content-weight", type=nonneg_float, default=_D.content_weight)
    p.add_argument("--style-weight", type=nonneg_float, default=_D.style_weight)
    p.add_argument("--tv-weight", type=nonneg_float, default=_D.tv_weight)
    p.add_argument(
        "--content-layers",
        type=name_list,
        default=list(DEFAULT_CONTENT_LAYERS),
        help="comma-separated VGG layers, e.g. relu4_2",
    )
    p.add_argument(
        "--style-layers", type=name_list, default=list(DEFAULT_STYLE_LAYERS), help="comma-separated VGG layers"
    )
    p.add_argument(
        "--style-layer-weights",
        type=lambda t: [nonneg_float(v) for v in name_list(t)],
        default=None,
        help="comma-separated weights, one per style layer (default: 1 each)",
    )
    p.add_argument(
        "--style-blend",
        type=lambda t: [nonneg_float(v) for v in name_list(t)],
        default=None,
        help="comma-separated weights, one per --style (default: equal)",
    )
    p.add_argument(
        "--style-scale",
        type=positive_float,
        default=_D.style_scale,
        help="style image size relative to the output size",
    )
    p.add_argument("--preserve-color", action="store_true", help="keep the content image's colours")
    p.add_argument(
        "--scales", type=positive_int, default=_D.scales, help="coarse-to-fine levels (each half the size of the next)"
    )
    p.add_argument(
        "--coarse-steps", type=positive_int, default=None, help="steps at each coarser scale (default: --steps)"
    )
    p.add_argument(
        "--save-every",
        type=positive_int,
        default=0,
        metavar="N",
        help="also save the image every N steps as OUT.stepNNNNN.png",
    )
    p.add_argument("--seed", type=int, default=_D.seed)
    p.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default=_D.device)
    p.add_argument(
        "--vgg-weights",
        default=_D.vgg_weights,
        help="caffe (original VGG19, offline), torchvision (IMAGENET1K_V1), or a state-dict path",
    )
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    out = Path(args.output)
    image_format(out)  # fail on a bad extension before spending minutes optimising
    if not (out.parent if str(out.parent) else Path(".")).is_dir():
        raise NSTError(f"{out}: output folder {out.parent} does not exist")
    if args.init not in ("content", "noise"):
        open_image(args.init)
    config = OptimizeConfig(
        size=args.size,
        steps=args.steps,
        optimizer=args.optimizer,
        lr=args.lr,
        init=args.init,
        content_weight=args.content_weight,
        style_weight=args.style_weight,
        tv_weight=args.tv_weight,
        content_layers=args.content_layers,
        style_layers=args.style_layers,
        style_layer_weights=args.style_layer_weights,
        style_blend=args.style_blend,
        style_scale=args.style_scale,
        preserve_color=args.preserve_color,
        scales=args.scales,
        coarse_steps=args.coarse_steps,
        save_every=args.save_every,
        save_prefix=str(out.with_suffix("")) if args.save_every else None,
        seed=args.seed,
        device=args.device,
        vgg_weights=args.vgg_weights,
        progress=not (args.quiet or (args.json and not sys.stderr.isatty())),
    )
    result = optimize(args.content, args.style, config)
    save_image(result.image, out)
    if args.json:
        print(
            json.dumps(
                {
                    "output": str(out),
                    "seconds": round(result.seconds, 3),
                    "steps": result.steps,
                    "size": list(result.size),
                    "loss": result.loss,
                    "initial_loss": result.initial_loss,
                }
            )
        )
    elif not args.quiet:
        print(
            f"saved {out} ({result.size[0]}x{result.size[1]}, {result.steps} steps, {result.seconds:.1f}s, "
            f"loss {result.initial_loss['total']:.4g} -> {result.loss['total']:.4g})",
            file=sys.stderr,
        )
    return 0
