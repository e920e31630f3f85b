"""Training configuration: one dataclass, YAML presets in configs/, command-line overrides.

Precedence (lowest first): dataclass defaults < the run folder's saved config (on --resume)
< ``--config FILE`` < command-line flags. Each layer is checked as it is applied, so a bad value
fails naming its file before any run folder exists. The effective config is written to
RUN_DIR/config.yaml. No torch import: the CLI reads its defaults from here.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from nst_core.cli.options import seconds
from nst_core.errors import NSTError
from nst_core.files import atomic_path
from nst_core.losses.weights import FLAT_LOSS_KEYS, LossWeights

#: Keys whose relative paths are resolved against the folder of the YAML file that sets them (only when that file
#: exists: `style: starry_night` stays a built-in style's name unless a file of that name is beside the YAML).
PATH_KEYS = ("style", "data", "output", "sample_images", "init_from", "teacher")
#: TransformerNet variants (nst_core.transformer.VARIANTS, which imports torch; a test keeps them equal).
VARIANTS = ("standard", "small", "fast")
MIXED_PRECISION = ("no", "bf16", "fp16")
#: constant: Johnson et al.'s Adam at one rate; cosine / linear: from ``lr`` to 0 at the run's end (train.schedule).
LR_SCHEDULES = ("constant", "cosine", "linear")
#: fixed: loss.style as given; energy: loss.style times starry_night's Gram energy over the painting's
#: (nst_core.losses.calibrate), resolved when a run starts (config.yaml then holds the weight used, and `fixed`).
STYLE_WEIGHT_RULES = ("fixed", "energy")
#: accelerate's trackers (accelerate.utils.LoggerType; a test keeps them equal) and their pip packages;
#: `all`: every one installed, `none`: no tracker.
TRACKER_PACKAGES = {
    name: name.replace("_", "-")  # comet_ml's package is comet-ml; every other package is named as its tracker
    for name in ("tensorboard", "wandb", "trackio", "comet_ml", "mlflow", "clearml", "dvclive", "swanlab", "aim")
}
TRACKERS = (*TRACKER_PACKAGES, "all", "none")
#: Old flat keys, still accepted in YAML files and in run folders saved before the `loss:` section
#: (and `out`, the run folder's name before `-o/--output`): old key -> new key (``loss.<name>``: in `loss`).
LEGACY_KEYS = {"out": "output", **{key: f"loss.{name}" for key, name in FLAT_LOSS_KEYS.items()}}
POSITIVE_INTS = (
    "image_size",
    "batch_size",
    "checkpoint_every",
    "keep_checkpoints",
    "sample_every",
    "num_samples",
    "log_every",
)


def train_loss() -> LossWeights:
    """The trainer's loss: Johnson et al.'s layers, content 1 / style 2 (calibrated at 256 px: configs/default.yaml)."""
    return LossWeights(
        content=1.0,
        style=2.0,
        tv=0.0,
        content_layers=("relu2_2",),
        style_layers=("relu1_2", "relu2_2", "relu3_3", "relu4_3"),
    )


@dataclass
class TrainConfig:
    """Everything a training run depends on, validated on creation. Defaults follow Johnson et al. (2016)."""

    # inputs and outputs
    style: str | list[str] | None = None  # style image (any Pillow format); several: one network of several styles
    data: str | None = None  # image folder (recursive) or a `datasets` hub name
    output: str | None = None  # run folder
    data_split: str = "train"  # split of a hub dataset
    streaming: bool = False  # stream a hub dataset instead of downloading it
    # network
    variant: str = "standard"  # TransformerNet variant: standard (Johnson), small or fast
    init_from: str | None = None  # a trained network to start from (run, .safetensors, .onnx, shipped name)
    teacher: str | list[str] | None = None  # a trained network (any variant) to imitate: pixel L1 to its output, no
    # VGG loss; several (one per style): one network of several styles
    add_style: bool = False  # append the style(s) to init_from's network, training only their norm scales and shifts
    style_turns: list[int] | None = None  # several styles: turns of each per cycle, e.g. [1, 3] (None: one each)
    # data
    image_size: int = 256  # training crops are image_size x image_size
    first_crop_size: int | None = None  # smaller crops in a first stage (128 px cost a quarter); None: one stage
    first_crop_until: float = 0.3  # the first stage's end, as a fraction of the run (steps, or --max-time)
    crop_scale: tuple[float, float] = (0.6, 1.0)  # crop area, as a fraction of the shorter side squared
    batch_size: int = 4  # per process
    num_workers: int = 2  # DataLoader workers decoding images
    # loss (caffe VGG19; see configs/default.yaml for the calibration note)
    vgg_weights: str = "caffe"  # caffe | torchvision | path of a VGG19 state dict
    loss: LossWeights = field(default_factory=train_loss)
    style_size: int | None = None  # longer side of the style image; None: image_size
    style_weight_rule: str = "fixed"  # fixed, or energy: scaled so that no painting is learnt paler than another
    # optimisation
    lr: float = 1e-3  # Adam, betas (0.9, 0.999), as in Johnson et al.
    lr_schedule: str = "constant"  # constant (Johnson et al.), cosine or linear: down to 0 at the run's end
    epochs: float = 2.0  # used when max_steps is not set
    max_steps: int | None = None  # optimizer steps; overrides epochs
    max_time: float | None = None  # seconds of training in this session (90, "30m", "2h"), then checkpoint and stop;
    # with a decaying lr_schedule also where the decay ends
    grad_accum: int | None = None  # None: accelerate's (accelerate config / launch), else 1
    mixed_precision: str | None = None  # no | bf16 | fp16; None: accelerate's (config / launch / env), else no
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
    num_samples: int = 4  # photos in the sample grid (first readable images of sample_images, else of the data)
    sample_images: str | None = None  # folder of the sample-grid photos; None: the training data
    log_every: int = 10  # steps between TensorBoard scalars
    report_to: str = "tensorboard"  # any accelerate tracker (wandb, mlflow ...), all, or none

    def __post_init__(self) -> None:
        for f in fields(self):
            if f.name != "loss":
                setattr(self, f.name, coerce(f.name, getattr(self, f.name)))
        if not isinstance(self.loss, LossWeights):
            raise NSTError(f"loss must be a LossWeights, got {type(self.loss).__name__}")
        for name in POSITIVE_INTS:
            _check(name, getattr(self, name), getattr(self, name) > 0, "a positive integer")
        _check("max_time", self.max_time, self.max_time is None or self.max_time > 0, "> 0 or null")
        for name in ("max_steps", "style_size", "grad_accum", "first_crop_size"):
            value = getattr(self, name)
            _check(name, value, value is None or value > 0, "a positive integer or null")
        _check("num_workers", self.num_workers, self.num_workers >= 0, ">= 0")
        _check("lr", self.lr, self.lr > 0, "> 0")
        _check("epochs", self.epochs, self.epochs > 0, "> 0")
        _check(
            "mixed_precision",
            self.mixed_precision,
            self.mixed_precision in (*MIXED_PRECISION, None),
            "no, bf16, fp16 or null",
        )
        _check("first_crop_until", self.first_crop_until, 0 < self.first_crop_until < 1, "between 0 and 1")
        first = self.first_crop_size
        _check("first_crop_size", first, first is None or first < self.image_size, "smaller than image_size")
        choices_of = {"variant": VARIANTS, "report_to": TRACKERS, "lr_schedule": LR_SCHEDULES}
        for name, choices in (choices_of | {"style_weight_rule": STYLE_WEIGHT_RULES}).items():
            _check(name, getattr(self, name), getattr(self, name) in choices, "one of " + ", ".join(choices))
        teachers, styles = self.teachers, self.styles
        matched = len(teachers) <= 1 or len(styles) in (0, len(teachers))
        _check("teacher", self.teacher, matched, f"one per style ({len(styles)} style images given)")
        _check("add_style", self.add_style, not self.add_style or self.init_from, "used with init_from (the network)")
        turns, count = self.style_turns, len(styles or teachers)
        if turns is not None:
            _check("style_turns", turns, all(t > 0 for t in turns), "positive integers, one per style")
            _check("style_turns", turns, count in (0, len(turns)), f"one per style of the run ({count})")
        scale = self.crop_scale
        _check("crop_scale", list(scale), 0 < scale[0] <= scale[1] <= 1, "MIN,MAX with 0 < MIN <= MAX <= 1")
        known_vgg = self.vgg_weights in ("caffe", "torchvision") or Path(self.vgg_weights).is_file()
        _check("vgg_weights", self.vgg_weights, known_vgg, "caffe, torchvision or an existing state-dict file")
        smallest = self.loss.min_side()
        for name in ("image_size", "style_size", "first_crop_size"):
            value = getattr(self, name)
            why = f"at least {smallest} (the loss layers halve the image {smallest.bit_length() - 1} times)"
            _check(name, value, value is None or value >= smallest, why)

    @property
    def styles(self) -> list[str]:
        """The style images, one per style of the network (a list even for one)."""
        return _names(self.style)

    @property
    def teachers(self) -> list[str]:
        """The teachers of a distillation, one per style of the network."""
        return _names(self.teacher)

    def to_dict(self) -> dict[str, Any]:
        """Plain values for YAML, JSON and metadata (the loss as a `loss:` section)."""
        d = asdict(self)
        d["crop_scale"] = list(self.crop_scale)
        d["loss"] = self.loss.to_dict()
        return d

    def updated(self, values: Mapping[str, Any], source: str) -> TrainConfig:
        """A copy with ``values`` (checked keys) applied; a `loss` mapping merges onto the current loss."""
        values = dict(values)
        loss = values.get("loss")
        try:
            if loss is not None and not isinstance(loss, LossWeights):
                values["loss"] = LossWeights.from_dict(loss, source="loss", base=self.loss)
            return dataclasses.replace(self, **values)
        except NSTError as e:
            raise NSTError(f"{source}: {e}") from None


def _check(name: str, value: Any, ok: bool, expected: str) -> None:
    if not ok:
        raise NSTError(f"{name} must be {expected}, got {value!r}")


KNOWN_KEYS = tuple(f.name for f in fields(TrainConfig))


class Settings(dict):
    """Checked config values from one place (a YAML file, the command line); ``source`` names it in errors."""

    def __init__(self, values: Mapping[str, Any] = (), source: str = "config") -> None:  # type: ignore[assignment]
        super().__init__(values)
        self.source = source


def _as_int(value: Any) -> int:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, int | str) and not isinstance(value, bool):
        return int(value)  # "4" (a quoted YAML value) is 4; "four" is a ValueError
    raise TypeError


def _as_float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError
    number = float(value)  # "1e-3": YAML 1.1 reads an exponent without a dot as a string
    if not math.isfinite(number):
        raise ValueError
    return number


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    words = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False, "0": False}
    if isinstance(value, str | int) and str(value).strip().lower() in words:
        return words[str(value).strip().lower()]
    raise ValueError


def _as_seconds(value: Any) -> float:
    """90, 90.5, "90s", "30m", "2h" -> seconds (a job's wall-clock limit is written either way)."""
    return _as_float(seconds(value) if isinstance(value, str) else value)


def _as_str(value: Any) -> str:
    if isinstance(value, str | os.PathLike):
        return os.fspath(value)
    raise TypeError


def _as_names(value: Any) -> str | list[str]:
    """One name or path, or several (a YAML list, repeated flags): a list of one is that one."""
    if isinstance(value, list | tuple):
        names = [_as_str(v) for v in value]
        if not names:
            raise ValueError
        return names[0] if len(names) == 1 else names
    return _as_str(value)


def _names(value: str | list[str] | None) -> list[str]:
    return [] if value is None else [value] if isinstance(value, str) else list(value)


def _as_ints(value: Any) -> list[int]:
    """``1,3,1`` (a flag) or a YAML list -> a list of integers."""
    items = _split(value)
    if not isinstance(items, list | tuple) or not items:
        raise TypeError
    return [_as_int(v) for v in items]


def _as_pair(value: Any) -> tuple[float, float]:
    items = _split(value)
    if not isinstance(items, list | tuple) or len(items) != 2:
        raise TypeError
    return (_as_float(items[0]), _as_float(items[1]))


#: A field's annotation -> (converter, what the message says it must be).
_KINDS = {
    "int": (_as_int, "an integer"),
    "float": (_as_float, "a finite number"),
    "bool": (_as_bool, "true or false"),
    "str": (_as_str, "a string"),
    "tuple[float, float]": (_as_pair, "a list of 2 numbers [MIN, MAX]"),
    "list[int]": (_as_ints, "a list of integers"),
}


#: Fields whose values are not read as their annotation says: field -> (converter, what it must be).
_FIELD_KINDS = {
    "max_time": (_as_seconds, "seconds (a number, or with s, m or h: 90s, 30m, 2h)"),
    "style": (_as_names, "a path or name, or a list of them"),
    "teacher": (_as_names, "a path or name, or a list of them"),
}


def coerce(name: str, value: Any) -> Any:
    """``value`` as field ``name``'s type, or NSTError naming the key and the type it must have.

    Lenient only where YAML 1.1 or hand-edited files call for it ("4", "1e-3", yes/no, 4.0).
    """
    annotation = str(TrainConfig.__dataclass_fields__[name].type)
    nullable = annotation.endswith(" | None")
    convert, expected = _FIELD_KINDS.get(name) or _KINDS[annotation.removesuffix(" | None")]
    if value is None and nullable:
        return None
    if name == "mixed_precision" and value is False:  # `mixed_precision: no` unquoted is YAML 1.1's false
        return "no"
    try:
        return convert(value)
    except (TypeError, ValueError, OverflowError):
        raise NSTError(f"{name} must be {expected}{' or null' if nullable else ''}, got {value!r}") from None


def _split(value: Any) -> Any:
    """``relu1_2,relu2_2`` (a list written as one string, as on the command line) -> a list."""
    return [t.strip() for t in value.split(",") if t.strip()] if isinstance(value, str) else value


def check_keys(values: Mapping[str, Any], source: str) -> Settings:
    """Normalise keys (`image-size` == `image_size`), map the old flat keys, reject unknown ones."""
    out, loss = Settings(source=source), {}
    for key, value in values.items():
        name = str(key).replace("-", "_")
        name = LEGACY_KEYS.get(name, name)
        if name.startswith("loss."):
            loss[name[5:]] = _split(value)
        elif name == "loss":
            if not isinstance(value, Mapping):
                raise NSTError(f"{source}: `loss` must be a mapping of key: value, got {value!r}")
            loss.update({k: _split(v) for k, v in value.items()})
        elif name in KNOWN_KEYS:
            try:
                out[name] = coerce(name, value)
            except NSTError as e:
                written = f" (written as {key!r})" if name != key else ""
                raise NSTError(f"{source}: {e}{written}") from None
        else:
            raise NSTError(f"{source}: unknown config key {key!r} (known keys: {', '.join(KNOWN_KEYS)})")
    if loss:
        out["loss"] = loss
    return out


def read_yaml(path: str | os.PathLike) -> Settings:
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
        if key in values:
            values[key] = _map_names(values[key], lambda v: _beside(p, v))
    return values


def _beside(yaml_file: Path, value: str) -> str:
    """A relative path in a YAML file, read from the file's folder when it exists there."""
    if not os.path.isabs(value) and (yaml_file.parent / value).exists():
        return str((yaml_file.parent / value).resolve())
    return value


def _map_names(value: Any, convert: Any) -> Any:
    """``convert`` applied to a path value, or to each path of a list of them."""
    if isinstance(value, str):
        return convert(value)
    if isinstance(value, list):
        return [convert(v) if isinstance(v, str) else v for v in value]
    return value


def shipped_configs() -> dict[str, Path]:
    """The configs that ship in the package (`train.configs`, the repository's configs/ folder), by name."""
    spec = importlib.util.find_spec("train.configs")
    folders = (spec.submodule_search_locations or []) if spec else []
    return {p.stem: p for folder in folders for p in sorted(Path(folder).glob("*.yaml"))}


def config_file(name: str | os.PathLike) -> Path:
    """A ``-c`` value as a YAML file: an existing path wins; else a shipped config by name (``starry_night`` or
    ``starry_night.yaml``); a bare name that is neither is one NSTError listing the shipped names."""
    path = Path(name)
    if path.exists() or path.parent != Path():
        return path  # a path with folders that does not exist: read_yaml says so
    shipped = shipped_configs()
    stem = path.name.removesuffix(".yaml")
    if stem not in shipped:
        raise NSTError(f"{name}: no such config file or shipped config (shipped: {', '.join(shipped)})")
    return shipped[stem]


def build_config(*layers: Mapping[str, Any]) -> TrainConfig:
    """Apply mappings of overrides in order on top of the defaults, each checked as it is applied."""
    cfg = TrainConfig()
    for layer in layers:
        source = getattr(layer, "source", "config")
        cfg = cfg.updated(layer if isinstance(layer, Settings) else check_keys(layer, source), source)
    return cfg


def save_yaml(cfg: TrainConfig, path: str | os.PathLike) -> None:
    """Write the effective config atomically (a kill never leaves a half-written file).

    Paths that exist are written absolute: `--resume` reads them from whatever folder it runs in, and the run
    folder may have moved (hub dataset and built-in style names stay as they are).
    """
    values = cfg.to_dict()
    for key in PATH_KEYS:
        values[key] = _map_names(values.get(key), lambda v: str(Path(v).resolve()) if v and os.path.exists(v) else v)
    with atomic_path(path) as tmp:
        tmp.write_text(yaml.safe_dump(values, sort_keys=False), encoding="utf-8")


def missing_path_hint(value: str, flag: str) -> str:
    """How to put a path that does not exist right: where a relative one was looked for, and the flag to give."""
    where = "" if os.path.isabs(value) else f"; a relative path is read from the folder nst runs in, {Path.cwd()}"
    return f" (give {flag} PATH{where})"
