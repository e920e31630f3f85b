"""`nst train --style STYLE --data DATA -o RUN_DIR`: train a feed-forward style network.

Every flag defaults to "not given" so that only what the user typed overrides the config file
(and, on --resume, the run folder's saved config). No torch import until `run`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from nst_core.builtin_styles import style_help
from nst_core.cli.options import (
    add_command,
    add_loss_options,
    add_output_option,
    add_report_options,
    add_vgg_option,
    list_of,
    loss_from_args,
    nonneg_int,
    number,
    positive_float,
    positive_int,
    show_default,
    show_progress,
)
from nst_core.log import LOG
from train.config import (
    LR_SCHEDULES,
    MIXED_PRECISION,
    STYLE_WEIGHT_RULES,
    TRACKERS,
    VARIANTS,
    Settings,
    TrainConfig,
    build_config,
    config_file,
    read_yaml,
    shipped_configs,
)

_D = TrainConfig()
_S = argparse.SUPPRESS
HELP = "train a feed-forward style network (Johnson et al.)"
DESCRIPTION = (
    "Train an image transformation network for one style on a folder of photos or a "
    "`datasets` hub dataset.\nFlags override --config files, which override the run folder's saved config "
    "(on --resume), which overrides the defaults (configs/default.yaml).\n"
    "Works under `accelerate launch -m train` and `torchrun -m train` too (multi-GPU, multi-node, multi-CPU);\n"
    "precision and gradient accumulation not given here are accelerate's (`accelerate config`)."
)
EXAMPLES = (
    "nst train --style starry_night --data photos/ -o runs/starry  # a built-in style, any image folder",
    "nst train -c cpu --style my_painting.jpg --data photos/ -o runs/mine  # your own style on a laptop: 30 minutes",
    "nst train -c cpu -c size512 --style my_painting.jpg --data photos/ -o runs/mine512  # for pictures of 512 px+",
    "nst train -c great_wave --data coco_2014_train_folder/ -o runs/wave --mixed-precision bf16  # a shipped config",
    "nst train --style s.jpg --data detection-datasets/coco --streaming -o runs/s  # a datasets hub name",
    "accelerate launch -m train -c configs/udnie.yaml --data /data/coco -o runs/udnie  # multi-GPU",
    "ACCELERATE_USE_CPU=true torchrun --nproc_per_node 2 -m train -c configs/udnie.yaml --data photos/ -o runs/u2",
    "nst train -o runs/candy --resume  # continue exactly",
    "nst train -c fast --teacher starry_night --teacher udnie --data photos/ -o runs/two  # one network, two styles",
    "nst train --variant fast --init-from runs/two --add-style --style my.jpg --data photos/ -o runs/three  # a 3rd",
    "nst train -c candy --style candy.jpg --data photos/ -o runs/c2 --style-weight 0.5 --json  # not shipped: a path",
)


def _opt(p: argparse._ActionsContainer, flag: str, help: str, **kw: Any) -> None:
    """A flag that overrides the config only when given; its help shows the built-in default."""
    default = getattr(_D, flag.lstrip("-").replace("-", "_"))
    if default is not None:
        help = f"{help} (default: {show_default(default)})"
    p.add_argument(flag, default=_S, help=help, **kw)


def _add_io(p: argparse.ArgumentParser) -> None:
    _opt(
        p,
        "--style",
        style_help("style image (any format Pillow reads); repeat it for one network of several styles"),
        metavar="IMAGE",
        action="append",
    )
    _opt(p, "--data", "image folder (every image file, searched recursively) or a `datasets` hub name")
    add_output_option(
        p, "run folder: checkpoints/, samples/, tensorboard logs, config.yaml, network.safetensors", "RUN_DIR", False
    )
    p.add_argument("--out", dest="deprecated_out", default=_S, help=_S)  # old name of -o/--output; still accepted
    p.add_argument(
        "--config",
        "-c",
        action="append",
        metavar="YAML",
        help=f"config file, or a shipped config by name: {', '.join(shipped_configs())}; repeatable",
    )
    p.add_argument(
        "--resume",
        nargs="?",
        const="latest",
        metavar="CHECKPOINT",
        help="continue from the run folder's latest checkpoint (or the checkpoint folder given)",
    )
    _opt(p, "--data-split", "split of a hub dataset")
    _opt(p, "--streaming", "stream a hub dataset", action=argparse.BooleanOptionalAction)


_ONOFF = {"action": argparse.BooleanOptionalAction}
#: The config's other knobs as flags, by help group: (flag, help, argparse keywords).
TRAINING_OPTIONS: dict[str, tuple[tuple[str, str, dict[str, Any]], ...]] = {
    "network and data": (
        ("--variant", "network size", {"choices": VARIANTS}),
        (
            "--init-from",
            "start from a trained network of the same variant (run folder, checkpoint, .safetensors, an exported "
            ".onnx or a shipped model's name) instead of random weights: a new style fine-tuned from a trained one "
            "learns faster",
            {"metavar": "NETWORK"},
        ),
        (
            "--teacher",
            "distil: learn to reproduce a trained network's output (any variant; pixel L1, no VGG loss), e.g. a "
            "standard network into the fast variant; repeat it for one network of several styles",
            {"metavar": "NETWORK", "action": "append"},
        ),
        (
            "--style-turns",
            "a network of several styles: each style's turns per cycle of steps, in the order of --style/--teacher "
            "(e.g. 1,3,1 gives the second style three turns in five); default: one each",
            {"metavar": "N,N,..."},
        ),
        (
            "--add-style",
            "add the --style image(s) to the --init-from network as new styles, training only their instance-norm "
            "scales and shifts: its convolutions and other styles stay as they are",
            {"action": "store_true"},
        ),
        ("--image-size", "training crop size in pixels", {"type": positive_int}),
        (
            "--first-crop-size",
            "smaller crops (scaled down from --image-size ones) for a cheaper first stage, in pixels",
            {"type": positive_int},
        ),
        (
            "--first-crop-until",
            "the first stage's end, a fraction of the run (of its steps, or of --max-time)",
            {"type": number(float, 0, 1, low_open=True, high_open=True)},
        ),
        (
            "--crop-scale",
            "random crop area range MIN,MAX, fractions of the shorter side squared, each in (0, 1]",
            {"type": list_of(number(float, 0, 1, low_open=True), 2)},
        ),
        ("--batch-size", "images per batch (per process)", {"type": positive_int}),
        ("--num-workers", "DataLoader worker processes", {"type": nonneg_int}),
        ("--style-size", "longer side of the style image (default: the image size)", {"type": positive_int}),
        (
            "--style-weight-rule",
            "fixed: the style weight as given; energy: scaled by starry_night's Gram energy over the painting's, so "
            "that a painting of soft contrast is not learnt paler than one of bold texture",
            {"choices": STYLE_WEIGHT_RULES},
        ),
    ),
    "optimisation": (
        ("--lr", "Adam learning rate", {"type": positive_float}),
        (
            "--lr-schedule",
            "constant, or down to 0 at the run's end (its last step, or the --max-time deadline)",
            {"choices": LR_SCHEDULES},
        ),
        ("--epochs", "passes over the data (when --max-steps is not given)", {"type": positive_float}),
        ("--max-steps", "optimizer steps (overrides --epochs)", {"type": positive_int}),
        (
            "--max-time",
            "stop after this much training in this session (90, 90s, 30m, 2h), with a checkpoint: --resume goes on; "
            "with a decaying --lr-schedule, its decay ends at this deadline",
            {"metavar": "SECONDS"},
        ),
        ("--grad-accum", "gradient accumulation steps (default: accelerate's, else 1)", {"type": positive_int}),
        ("--mixed-precision", "autocast dtype (default: accelerate's, else no)", {"choices": MIXED_PRECISION}),
        ("--seed", "random seed (weights init, data order, crops)", {"type": int}),
        ("--channels-last", "run VGG channels-last", _ONOFF),
        ("--net-channels-last", "run the transformer channels-last", _ONOFF),
        ("--compile", "torch.compile the transformer", _ONOFF),
        ("--fused-adam", "fused Adam kernel (where the device has one)", _ONOFF),
    ),
    "bookkeeping": (
        ("--checkpoint-every", "steps between checkpoints", {"type": positive_int}),
        ("--keep-checkpoints", "checkpoints kept", {"type": positive_int}),
        ("--sample-every", "steps between sample grids", {"type": positive_int}),
        ("--num-samples", "photos in the sample grid", {"type": positive_int}),
        ("--sample-images", "folder of the sample-grid photos (default: the first of the data)", {"metavar": "DIR"}),
        ("--log-every", "steps between logged losses", {"type": positive_int}),
        ("--report-to", "experiment tracker (accelerate's; all: every one installed)", {"choices": TRACKERS}),
    ),
}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(subparsers, "train", HELP, DESCRIPTION, EXAMPLES)
    _add_io(p)
    for title, options in TRAINING_OPTIONS.items():
        group = p.add_argument_group(title)
        for flag, text, kw in options:
            _opt(group, flag, text, **kw)
    add_vgg_option(p, _S)  # not given: the config's
    vgg = next(a for a in p._actions if a.dest == "vgg_weights")
    vgg.help = f"{vgg.help} (default: {_D.vgg_weights})"
    add_loss_options(p, _D.loss, only_given=True)
    add_report_options(
        p,
        "print only a JSON summary on stdout at the end: run_dir, step, network, losses, mixed_precision, "
        "seconds, out_of_time, skipped",
    )
    p.set_defaults(func=run)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """Defaults < saved run config (on --resume) < --config files < flags."""
    if hasattr(args, "deprecated_out"):
        LOG.warning("--out is deprecated; use -o/--output")
        args.output = args.output or args.deprecated_out
    flags = {k: v for k, v in vars(args).items() if k in TrainConfig.__dataclass_fields__ and v is not None}
    files = [read_yaml(config_file(c)) for c in args.config or []]
    output = flags.get("output") or next((f["output"] for f in reversed(files) if f.get("output")), None)
    saved = Path(output) / "config.yaml" if output else None
    layers = [read_yaml(saved)] if args.resume and saved and saved.is_file() else []
    cfg = build_config(*layers, *files)
    flags["loss"] = loss_from_args(args, cfg.loss)
    return cfg.updated(Settings(flags, "command line"), "command line")


def run(args: argparse.Namespace) -> int:
    from train.trainer import run_training

    cfg = config_from_args(args)
    result = run_training(cfg, resume=args.resume, progress=show_progress(args), messages=not args.quiet)
    if result.network is None:  # not the main process: it reports nothing
        return 0
    LOG.info(f"trained {result.step} steps; network: {result.network}")
    if args.json:
        summary = {"run_dir": str(result.run_dir), "step": result.step, "network": str(result.network)}
        summary |= {
            "losses": result.history[-1][1] if result.history else {},
            "mixed_precision": result.mixed_precision,
            "seconds": round(result.seconds, 1),
            "out_of_time": result.out_of_time,
        }
        summary |= {"data_files": result.data_files, "skipped": result.skipped, "skipped_files": result.skipped_files}
        print(json.dumps(summary))
    return 0
