"""The loss configuration, one object: term weights, VGG layers and per-layer style weights.

Carried whole by the optimizer's and the trainer's configs, the comparison metric and the
benchmarks; it also knows the VGG layer names so that a typo fails where the value enters.
No torch import here: command-line parsers build their defaults from it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from nst_core.errors import NSTError

# Conv channel plans; "M" is a 2x2 max-pool. Same layout as torchvision's vgg16/vgg19 `features`.
VGG_PLANS = {
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}
DEFAULT_CONTENT_LAYERS = ("relu4_2",)
DEFAULT_STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


def check_arch(arch: str) -> str:
    if arch not in VGG_PLANS:
        raise NSTError(f"unknown VGG architecture {arch!r}; choose one of {', '.join(VGG_PLANS)}")
    return arch


def layer_names(arch: str = "vgg19") -> list[str]:
    """Names of the modules of ``features`` in order: conv1_1, relu1_1, ..., pool5."""
    names, block, idx = [], 1, 1
    for item in VGG_PLANS[check_arch(arch)]:
        if item == "M":
            names.append(f"pool{block}")
            block, idx = block + 1, 1
        else:
            names += [f"conv{block}_{idx}", f"relu{block}_{idx}"]
            idx += 1
    return names


def min_side(layers: Iterable[str], arch: str = "vgg19") -> int:
    """Smallest image side VGG accepts up to the deepest of ``layers``: each pooling before it halves the image.

    From the tables, without building VGG: config checks use it before any weights load.
    """
    names = layer_names(arch)
    depth = max(names.index(n) for n in check_layers(layers, arch)) + 1
    return 2 ** sum(n.startswith("pool") for n in names[:depth])


def check_layers(layers: Iterable[str], arch: str = "vgg19") -> list[str]:
    """Return the layers as a list, or NSTError naming the first unknown one."""
    known = layer_names(arch)
    layers = list(layers)
    for name in layers:
        if name not in known:
            raise NSTError(
                f"unknown layer {name!r} for {arch}; known layers: relu1_1 ... {known[-2]}, "
                "conv<b>_<i>, pool<b> (e.g. relu4_2)"
            )
    return layers


@dataclass
class LossWeights:
    """Weights of the three terms and of each style layer, validated on creation.

    Defaults are jcjohnson/neural-style's (content 5, style 100): same caffe VGG19, Gram / (C*H*W), mean
    squared errors, so the same balance; checked by eye at 512 px on several styles (benchmarks/README.md).
    """

    content: float = 5.0
    style: float = 100.0
    tv: float = 0.0
    content_layers: Sequence[str] = DEFAULT_CONTENT_LAYERS
    style_layers: Sequence[str] = DEFAULT_STYLE_LAYERS
    style_layer_weights: Sequence[float] | None = None  # None: 1 for every layer
    layer_weights: Mapping[str, float] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.content_layers = tuple(check_layers(self.content_layers))
        self.style_layers = tuple(check_layers(self.style_layers))
        if not self.content_layers and not self.style_layers:
            raise NSTError("need at least one content or style layer")
        sw = self.style_layer_weights
        if sw is not None:
            sw = self.style_layer_weights = tuple(float(w) for w in sw)
            if len(sw) != len(self.style_layers):
                raise NSTError(f"{len(sw)} style layer weights for {len(self.style_layers)} style layers")
        self.layer_weights = dict(zip(self.style_layers, sw if sw is not None else [1.0] * len(self.style_layers)))
        for name, value in (
            ("content", self.content),
            ("style", self.style),
            ("tv", self.tv),
            *self.layer_weights.items(),
        ):
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise NSTError(f"{name} weight must be a finite number >= 0, got {value!r}")

    def min_side(self, arch: str = "vgg19") -> int:
        """Smallest image side the loss network accepts (`min_side` of the content and style layers)."""
        return min_side((*self.content_layers, *self.style_layers), arch)

    def to_dict(self) -> dict[str, Any]:
        """The fields a config file holds (lists, no derived values)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            if f.init:
                value = getattr(self, f.name)
                out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], source: str = "loss", base: LossWeights | None = None) -> LossWeights:
        """``base`` (default: the defaults) with the keys of ``values``; unknown keys fail naming ``source``."""
        known = [f.name for f in fields(cls) if f.init]
        merged = (base or cls()).to_dict()
        for key, value in values.items():
            name = str(key).replace("-", "_")
            if name not in known:
                raise NSTError(f"{source}: unknown loss key {key!r} (known: {', '.join(known)})")
            merged[name] = _config_value(name, value, source)
        try:
            return cls(**merged)
        except (TypeError, ValueError) as e:
            raise NSTError(f"{source}: {e}") from None


#: Flat keys of training configs written before the ``loss:`` section, and their LossWeights field.
FLAT_LOSS_KEYS = {
    "content_weight": "content",
    "style_weight": "style",
    "tv_weight": "tv",
    "content_layers": "content_layers",
    "style_layers": "style_layers",
    "style_layer_weights": "style_layer_weights",
}


def loss_section(config: Mapping[str, Any]) -> dict[str, Any]:
    """A training config's ``loss:`` section as stored, or one gathered from the old flat keys.

    For readers of saved configs (export metadata, compare, benchmarks): nothing is filled in or
    validated, so a model trained before the section existed reads back what it was trained with.
    """
    section = config.get("loss")
    if isinstance(section, Mapping):
        return dict(section)
    return {name: config[key] for key, name in FLAT_LOSS_KEYS.items() if config.get(key) is not None}


def _config_value(name: str, value: Any, source: str) -> Any:
    """A config file's value in the type the field wants (YAML 1.1 reads ``1e-3`` as a string), or an NSTError."""
    if value is None and name == "style_layer_weights":
        return None
    try:
        if name in ("content", "style", "tv"):
            if isinstance(value, bool) or not isinstance(value, int | float | str):
                raise TypeError
            return float(value)
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            raise TypeError
        if name == "style_layer_weights":
            return [float(v) for v in items if not isinstance(v, bool)]
        if not all(isinstance(v, str) for v in items):
            raise TypeError
        return [v.strip() for v in items if v.strip()]
    except (TypeError, ValueError):
        kind = (
            "a number"
            if name in ("content", "style", "tv")
            else "a list of " + ("numbers" if name == "style_layer_weights" else "layer names")
        )
        raise NSTError(f"{source}: loss key {name!r} must be {kind}, got {value!r}") from None
