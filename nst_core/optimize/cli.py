"""`nst optimize CONTENT --style STYLE [--style STYLE2 ...] -o OUT`: the iterative method from the shell."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING

from nst_core.builtin_styles import style_help
from nst_core.cli.options import (
    add_command,
    add_device_option,
    add_loss_options,
    add_max_pixels_option,
    add_output_option,
    add_report_options,
    add_vgg_option,
    duration,
    list_of,
    loss_from_args,
    nonneg_float,
    nonneg_int,
    number,
    positive_float,
    positive_int,
    show_progress,
)
from nst_core.files import clean_stale_temporaries
from nst_core.log import LOG
from nst_core.optimize.config import OPTIMIZERS, OptimizeConfig

if TYPE_CHECKING:
    from nst_core.optimize.scales import OptimizeResult

_D = OptimizeConfig()
LEARNING_RATE = number(float, 0, 1, low_open=True)
HELP = "stylize one image by optimising its pixels (Gatys et al.)"
DESCRIPTION = "Iterative neural style transfer: minimise content + style (+ TV) loss over the pixels."
EXAMPLES = (
    "nst optimize astronaut --style starry_night -o astronaut_starry_night_optimized.png --size 256",
    "nst optimize tubingen.jpg --style starry_night.jpg -o out.png --size 512 --scales 2 --steps 150",
    "nst optimize photo.jpg -s a.jpg -s b.jpg --style-blend 0.7,0.3 --preserve-color -o out.png",
    "nst optimize photo.jpg --style the_scream -o poster.png --size 4096 --preview --max-time 2h",
    "nst optimize photo.jpg --style the_scream -o poster.png --size 4096 --preview --resume",
)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(subparsers, "optimize", HELP, DESCRIPTION, EXAMPLES)
    p.add_argument(
        "content", help="content image (any format Pillow reads; a demo photo: astronaut, chelsea, coffee, rocket)"
    )
    p.add_argument(
        "--style",
        "-s",
        action="append",
        required=True,
        metavar="STYLE",
        help=style_help("style image (repeat for several styles)"),
    )
    add_output_option(p, "output image (.png, .jpg, .webp, .bmp, .tif)")
    p.add_argument("--size", type=positive_int, default=_D.size, help="longer side of the output in pixels")
    p.add_argument(
        "--steps",
        type=positive_int,
        help="exactly this many optimizer steps at the final scale (default: each scale runs until converged)",
    )
    p.add_argument(
        "--max-steps", type=positive_int, default=_D.max_steps, help="most steps of a scale that runs until converged"
    )
    p.add_argument(
        "--tol",
        type=nonneg_float,
        default=_D.tol,
        help=f"converged: the loss fell by less than this fraction over {_D.window} steps (after {_D.min_steps})",
    )
    p.add_argument("--optimizer", choices=OPTIMIZERS, default=_D.optimizer, help="L-BFGS or Adam")
    p.add_argument("--lr", type=LEARNING_RATE, default=_D.lr, help="Adam step size, pixels in [0, 1]")
    p.add_argument("--init", default=_D.init, help="starting image: content, noise, or an image path")
    p.add_argument(
        "--style-blend", type=list_of(nonneg_float), help="comma-separated weights, one per --style (default: equal)"
    )
    p.add_argument(
        "--style-scale", type=positive_float, default=_D.style_scale, help="style image size relative to the output"
    )
    p.add_argument("--preserve-color", action="store_true", help="keep the content image's colours")
    p.add_argument(
        "--scales",
        type=positive_int,
        help="coarse-to-fine levels, each half the size of the next (default: halve down to about 128 px)",
    )
    p.add_argument("--coarse-steps", type=positive_int, help="steps at each coarser scale (default: --steps)")
    p.add_argument(
        "--save-every", type=positive_int, metavar="N", help="also save the image every N steps as OUT.stepNNNNN.png"
    )
    p.add_argument(
        "--max-memory",
        type=positive_float,
        default=_D.max_memory_gb,
        dest="max_memory_gb",
        metavar="GB",
        help="peak memory to plan for: larger images are computed in VGG tiles to stay under it (GiB)",
    )
    p.add_argument(
        "--tile", type=nonneg_int, metavar="PX", help="VGG tile side, a multiple of 16 (default: planned; 0: never)"
    )
    p.add_argument(
        "--preview", action="store_true", help="rewrite OUT.preview.png with the current image after every scale"
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="go on from OUT.resume.pt (out.png.resume.pt), the checkpoint a run keeps beside OUT until OUT is written",
    )
    p.add_argument(
        "--max-time",
        type=duration,
        metavar="SECONDS",
        help="optimise at most this long (90, 30m, 2h), then write the checkpoint and stop: --resume goes on",
    )
    p.add_argument("--seed", type=int, default=_D.seed, help="random seed (noise init)")
    add_device_option(p)
    add_vgg_option(p, _D.vgg_weights)
    add_max_pixels_option(p)
    add_loss_options(p, _D.loss)
    add_report_options(p, "print a JSON summary on stdout: output, seconds, steps, scales, size, loss, initial_loss")
    p.set_defaults(func=run)


def config_from_args(args: argparse.Namespace) -> OptimizeConfig:
    """The flags as an OptimizeConfig: same-named fields copied, the loss flags as one LossWeights."""
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(OptimizeConfig) if hasattr(args, f.name)}
    given |= {
        "loss": loss_from_args(args, _D.loss),
        "save_every": args.save_every or 0,
        "save_prefix": str(args.output.with_suffix("")) if args.save_every else None,
        "preview": str(preview_path(args.output)) if args.preview else None,
        "checkpoint": str(checkpoint_path(args.output)),
        "progress": show_progress(args),
    }
    return OptimizeConfig(**given)


def preview_path(output: Path) -> Path:
    """OUT.preview.png beside the output (PNG whatever the output's format: it is rewritten, never kept)."""
    return output.with_suffix(".preview.png")


def checkpoint_path(output: Path) -> Path:
    """OUT.resume.pt beside the output (``out.png.resume.pt``: the whole name, so ``out.png`` and ``out.jpg`` never
    share one), written at every scale's end and every 10 minutes, removed once the output is in place."""
    return output.with_name(f"{output.name}.resume.pt")


def legacy_checkpoint_path(output: Path) -> Path:
    """Where runs before the whole-name checkpoints kept theirs (``out.resume.pt``); --resume still reads it."""
    return output.with_suffix(".resume.pt")


def _prepare_checkpoint(output: Path, checkpoint: Path, resume: bool) -> None:
    """Remove what killed runs left of this output's files; on --resume, take over a checkpoint of the old name."""
    legacy = legacy_checkpoint_path(output)
    for name in (output.name, checkpoint.name, legacy.name):
        clean_stale_temporaries(output.parent, name)
    if resume and not checkpoint.exists() and legacy.is_file():
        LOG.info(f"resuming from {legacy} (the old name of {checkpoint.name})")
        legacy.replace(checkpoint)
    elif not resume and checkpoint.exists():
        LOG.warning(f"{checkpoint}: an unfinished run's checkpoint; this run starts afresh (--resume goes on)")


def run(args: argparse.Namespace) -> int:
    from nst_core.image_io import check_output_image, open_image, save_image
    from nst_core.optimize.scales import optimize

    args.output = check_output_image(args.output)  # before spending minutes optimising
    if args.init not in ("content", "noise"):
        open_image(args.init)
    config = config_from_args(args)
    _prepare_checkpoint(args.output, Path(config.checkpoint), args.resume)
    saved: list[Path] = []
    result = optimize(args.content, args.style, config, store=lambda r: saved.append(save_image(r.image, args.output)))
    if result.out_of_time:
        return _stopped(args, config, result)
    out = saved[0]
    if args.preview:
        preview_path(args.output).unlink(missing_ok=True)  # the output is the final picture
    if args.json:
        summary = {"output": str(out), "seconds": round(result.seconds, 3), "steps": result.steps}
        summary["scales"] = result.scales
        summary |= {"size": list(result.size), "loss": result.loss, "initial_loss": result.initial_loss}
        print(json.dumps(summary))
    else:
        LOG.info(
            f"saved {out} ({result.size[0]}x{result.size[1]}, {result.steps} steps, {result.seconds:.1f}s, "
            f"loss {result.initial_loss['total']:.4g} -> {result.loss['total']:.4g})"
        )
    return 0


def _stopped(args: argparse.Namespace, config: OptimizeConfig, result: OptimizeResult) -> int:
    """--max-time spent: no output image (it would pass for the finished one), the checkpoint named."""
    scale = f"{result.size[0]}x{result.size[1]}"
    if args.json:
        summary = {"output": None, "out_of_time": True, "checkpoint": config.checkpoint, "steps": result.steps}
        print(json.dumps(summary | {"seconds": round(result.seconds, 3), "scales": result.scales}))
    LOG.info(
        f"stopped at --max-time after {result.steps} steps ({scale} scale, {result.seconds:.0f}s); "
        f"run the same command with --resume to go on from {config.checkpoint}"
    )
    return 0
