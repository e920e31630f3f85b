"""Training configuration: one dataclass, YAML presets in configs/, command-line overrides.

Precedence (lowest first): dataclass defaults < the run folder's saved config (on --resume)
< ``--config FILE`` < command-line flags. The effective config is written to RUN_DIR/config.yaml.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from nst_core.errors import NSTError
from nst_core.image_io import atomic_path

#: Keys whose relative paths are resolved against the folder of the YAML file that sets them.
PATH_KEYS = ("style", "data", "out")


@dataclass
class TrainConfig:
    """Everything a training run depends on. Defaults follow Johnson et al. (2016) / pytorch examples."""

    # inputs and outputs
    style: str | None = None  # style image (any Pillow format)
    data: str | None = None  # image folder (recursive) or a `datasets` hub name
    out: str | None = None  # run folder
    data_split: str = "train"  # split of a hub dataset
    streaming: bool = False  # stream a hub dataset instead of downloading it
    # network
    variant: str = "standard"  # TransformerNet variant: standard (Johnson) or small
    # data
    image_size: int = 256  # training crops are image_size x image_size
    crop_scale: tuple[float, float] = (0.6, 1.0)  # crop area, as a fraction of the shorter side squared
    batch_size: int = 4  # per process
    num_workers: int = 2  # DataLoader workers decoding images
    # loss (caffe VGG19; see configs/default.yaml for the calibration note)
    vgg_weights: str = "caffe"
    content_weight: float = 1.0
    style_weight: float = 0.2
    tv_weight: float = 0.0
    content_layers: list[str] = field(default_factory=lambda: ["relu2_2"])
    style_layers: list[str] = field(default_factory=lambda: ["relu1_2", "relu2_2", "relu3_3", "relu4_3"])
    style_size: int | None = None  # longer side of the style image; None: image_size
    # optimisation
    lr: float = 1e-3  # Adam, betas (0.9, 0.999), as in Johnson et al.
    epochs: float = 2.0  # used when max_steps is not set
    max_steps: int | None = None  # optimizer steps; overrides epochs
    grad_accum: int = 1
    mixed_precision: str = "no"  # no | bf16 | fp16
    seed: int = 42
    # speed
    channels_last: bool = True  # VGG loss network in channels-last (big win with oneDNN / cuDNN)
    net_channels_last: bool = False  # the transformer too (pays off with compile / on GPU)
    compile: bool = False  # torch.compile the transformer (slow to start on CPU)
    fused_adam: bool = True  # fused Adam kernel when the device supports it
    # bookkeeping
    checkpoint_every: int = 1000  # steps between checkpoints
    keep_checkpoints: int = 3  # keep the last K checkpoints
    sample_every: int = 500  # steps between sample grids
    num_samples: int = 4  # photos in the sample grid (first readable images of the data)
    log_every: int = 10  # steps between TensorBoard scalars
    report_to: str = "tensorboard"  # tensorboard | none

    def validate(self) -> TrainConfig:
        """NSTError for values no run can use; returns self for chaining."""
        for name in (
            "image_size",
            "batch_size",
            "grad_accum",
            "checkpoint_every",
            "keep_checkpoints",
            "sample_every",
            "num_samples",
            "log_every",
        ):
            if int(getattr(self, name)) <= 0:
                raise NSTError(f"{name} must be a positive integer, got {getattr(self, name)}")
        if self.max_steps is not None and self.max_steps <= 0:
            raise NSTError(f"max_steps must be a positive integer, got {self.max_steps}")
        if self.max_steps is None and not self.epochs > 0:
            raise NSTError(f"epochs must be > 0, got {self.epochs}")
        if self.mixed_precision not in ("no", "bf16", "fp16"):
            raise NSTError(f"mixed_precision must be no, bf16 or fp16, got {self.mixed_precision!r}")
        if self.report_to not in ("tensorboard", "none"):
            raise NSTError(f"report_to must be tensorboard or none, got {self.report_to!r}")
        lo, hi = self.crop_scale
        if not 0 < lo <= hi <= 1:
            raise NSTError(f"crop_scale must satisfy 0 < min <= max <= 1, got {list(self.crop_scale)}")
        if self.num_workers < 0:
            raise NSTError(f"num_workers must be >= 0, got {self.num_workers}")
        for name in ("lr", "content_weight", "style_weight", "tv_weight"):
            if getattr(self, name) < 0 or (name == "lr" and self.lr == 0):
                raise NSTError(f"{name} must be {'> 0' if name == 'lr' else '>= 0'}, got {getattr(self, name)}")
        return self

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["crop_scale"] = list(self.crop_scale)
        return d


KNOWN_KEYS = tuple(f.name for f in fields(TrainConfig))


def _coerce(name: str, value: Any) -> Any:
    """Light type coercion of YAML values (e.g. `1e-3` read as a string by YAML 1.1)."""
    default = TrainConfig.__dataclass_fields__[name]
    kind = str(default.type)
    if value is None:
        return None
    try:
        if kind.startswith("int"):
            return int(value)
        if kind.startswith("float"):
            return float(value)
        if kind.startswith("bool"):
            if isinstance(value, str):
                return value.strip().lower() in ("1", "true", "yes", "on")
            return bool(value)
        if kind.startswith("tuple"):
            return tuple(float(v) for v in value)
        if kind.startswith("list"):
            return [s.strip() for s in value.split(",")] if isinstance(value, str) else [str(v) for v in value]
    except (TypeError, ValueError):
        raise NSTError(f"config key {name!r}: cannot use {value!r} as {kind}") from None
    return value


def check_keys(values: Mapping[str, Any], source: str) -> dict[str, Any]:
    """Normalise keys (`image-size` == `image_size`) and reject unknown ones with one line."""
    out = {}
    for key, value in values.items():
        name = str(key).replace("-", "_")
        if name not in KNOWN_KEYS:
            raise NSTError(f"{source}: unknown config key {key!r} (known keys: {', '.join(KNOWN_KEYS)})")
        out[name] = _coerce(name, value)
    return out


def read_yaml(path: str | os.PathLike) -> dict[str, Any]:
    """A YAML config file as checked key/values, relative paths resolved against its folder."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NSTError(f"{p}: config file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise NSTError(f"{p}: cannot read config ({e})") from None
    try:
        values = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        raise NSTError(f"{p}: invalid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(values, dict):
        raise NSTError(f"{p}: a config must be a mapping of key: value, got {type(values).__name__}")
    values = check_keys(values, str(p))
    for key in PATH_KEYS:
        v = values.get(key)
        if isinstance(v, str) and not os.path.isabs(v) and (p.parent / v).exists():
            values[key] = str((p.parent / v).resolve())
    return values


def build_config(*layers: Mapping[str, Any]) -> TrainConfig:
    """Apply mappings of overrides in order on top of the defaults, then validate."""
    cfg = TrainConfig()
    for layer in layers:
        cfg = dataclasses.replace(cfg, **{k: v for k, v in layer.items()})
    return cfg.validate()


def save_yaml(cfg: TrainConfig, path: str | os.PathLike) -> None:
    """Write the effective config atomically (a kill never leaves a half-written file)."""
    with atomic_path(path) as tmp:
        tmp.write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False), encoding="utf-8")
