"""`nst train --style STYLE --data DATA --out RUN_DIR`: train a feed-forward style network.

Every flag defaults to "not given" so that only what the user typed overrides the config file
(and, on --resume, the run folder's saved config).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from nst_core.cli_options import name_list, nonneg_float, positive_float, positive_int
from train.config import TrainConfig, build_config, check_keys, read_yaml

_D = TrainConfig()
_S = argparse.SUPPRESS


def _scale_pair(text: str) -> tuple[float, float]:
    parts = [positive_float(t) for t in name_list(text)]
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"expected MIN,MAX (two numbers), got {text!r}")
    return parts[0], parts[1]


def _opt(p: argparse.ArgumentParser, flag: str, help: str, **kw: Any) -> None:
    """A flag that overrides the config only when given; its help shows the built-in default."""
    dest = flag.lstrip("-").replace("-", "_")
    if hasattr(_D, dest):
        default = getattr(_D, dest)
        shown = ",".join(map(str, default)) if isinstance(default, list | tuple) else default
        help = f"{help} (default: {shown})"
    p.add_argument(flag, default=_S, help=help, **kw)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a feed-forward style network (Johnson et al.)",
        description="Train an image transformation network for one style on a folder of photos or a "
        "`datasets` hub dataset. Flags override --config, which overrides the defaults "
        "(configs/default.yaml). Works under `accelerate launch -m train` too.",
    )
    _opt(p, "--style", "style image (any format Pillow reads)")
    _opt(p, "--data", "image folder (searched recursively) or a `datasets` hub name")
    _opt(p, "--out", "run folder: checkpoints/, samples/, tensorboard logs, config.yaml, network.safetensors")
    p.add_argument(
        "--config",
        "-c",
        action="append",
        default=[],
        metavar="YAML",
        help="config file (configs/*.yaml); repeat to layer several",
    )
    p.add_argument(
        "--resume",
        nargs="?",
        const="latest",
        default=None,
        metavar="CHECKPOINT",
        help="continue from the run folder's latest checkpoint (or the checkpoint folder given)",
    )
    _opt(p, "--data-split", "split of a hub dataset")
    _opt(p, "--streaming", "stream a hub dataset", action=argparse.BooleanOptionalAction)
    _opt(p, "--variant", "network size", choices=("standard", "small"))
    _opt(p, "--image-size", "training crop size in pixels", type=positive_int)
    _opt(
        p, "--crop-scale", "random crop area range as a fraction of the shorter side squared: MIN,MAX", type=_scale_pair
    )
    _opt(p, "--batch-size", "images per batch (per process)", type=positive_int)
    _opt(p, "--num-workers", "DataLoader worker processes", type=int)
    _opt(p, "--vgg-weights", "caffe (offline), torchvision, or a VGG19 state-dict path")
    _opt(p, "--content-weight", "content loss weight", type=nonneg_float)
    _opt(p, "--style-weight", "style loss weight", type=nonneg_float)
    _opt(p, "--tv-weight", "total-variation weight", type=nonneg_float)
    _opt(p, "--content-layers", "comma-separated VGG layers", type=name_list)
    _opt(p, "--style-layers", "comma-separated VGG layers", type=name_list)
    _opt(p, "--style-size", "longer side of the style image (default: the image size)", type=positive_int)
    _opt(p, "--lr", "Adam learning rate", type=positive_float)
    _opt(p, "--epochs", "passes over the data (when --max-steps is not given)", type=positive_float)
    _opt(p, "--max-steps", "optimizer steps", type=positive_int)
    _opt(p, "--grad-accum", "gradient accumulation steps", type=positive_int)
    _opt(p, "--mixed-precision", "autocast dtype", choices=("no", "bf16", "fp16"))
    _opt(p, "--seed", "random seed (weights init, data order, crops)", type=int)
    _opt(p, "--channels-last", "run VGG channels-last", action=argparse.BooleanOptionalAction)
    _opt(p, "--net-channels-last", "run the transformer channels-last", action=argparse.BooleanOptionalAction)
    _opt(p, "--compile", "torch.compile the transformer", action=argparse.BooleanOptionalAction)
    _opt(p, "--fused-adam", "fused Adam kernel", action=argparse.BooleanOptionalAction)
    _opt(p, "--checkpoint-every", "steps between checkpoints", type=positive_int)
    _opt(p, "--keep-checkpoints", "checkpoints kept", type=positive_int)
    _opt(p, "--sample-every", "steps between sample grids", type=positive_int)
    _opt(p, "--num-samples", "photos in the sample grid", type=positive_int)
    _opt(p, "--log-every", "steps between logged losses", type=positive_int)
    _opt(p, "--report-to", "experiment tracker", choices=("tensorboard", "none"))
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout at the end")
    p.set_defaults(func=run)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """Defaults < saved run config (on --resume) < --config files < flags."""
    flags = {k: v for k, v in vars(args).items() if k in TrainConfig.__dataclass_fields__}
    layers: list[dict[str, Any]] = []
    out = flags.get("out")
    files = [read_yaml(c) for c in args.config]
    out = out or next((f["out"] for f in reversed(files) if f.get("out")), None)
    if args.resume and out and (Path(out) / "config.yaml").is_file():
        layers.append(read_yaml(Path(out) / "config.yaml"))
    layers += files
    layers.append(check_keys(flags, "command line"))
    return build_config(*layers)


def run(args: argparse.Namespace) -> int:
    from train.trainer import run_training

    cfg = config_from_args(args)
    result = run_training(cfg, resume=args.resume)
    print(f"trained {result.step} steps; network: {result.network}")
    if args.json:
        last = result.history[-1][1] if result.history else {}
        print(
            json.dumps(
                {
                    "run_dir": str(result.run_dir),
                    "step": result.step,
                    "network": str(result.network),
                    "losses": last,
                    "skipped": result.skipped,
                    "skipped_files": result.skipped_files,
                }
            )
        )
    return 0
