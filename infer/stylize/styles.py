"""Which style a network of several styles paints: a name, a blend written ``NAME=W,NAME=W``, weights by name, or
one weight per style, turned into the ``style`` input of the graph (`infer.export.format.STYLE_INPUT`).

Checked here, where it enters (`nst stylize --style`, `nst live --style`, the web app, `Stylizer`): an unknown
name is one line listing the model's styles; a negative, non-finite or all-zero set of weights is one line too.
Weights are normalised to sum to 1: ``a=7,b=3`` is ``a=0.7,b=0.3``. No torch here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from nst_core.errors import NSTError

#: What a caller may give as the style: None (the model's first style), a name or ``NAME=W,...``, weights by name,
#: or one weight per style in the model's order.
StyleChoice = str | Mapping[str, float] | Sequence[float] | None


def parse_style(text: str) -> dict[str, float]:
    """``starry_night`` -> {starry_night: 1}; ``starry_night=0.7,udnie=0.3`` -> both weights (not yet normalised)."""
    weights: dict[str, float] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, sep, value = part.partition("=")
        name = name.strip()
        try:
            weight = float(value) if sep else 1.0
        except ValueError:
            raise NSTError(
                f"style {text!r}: {value.strip()!r} is not a number (write NAME=WEIGHT,NAME=WEIGHT)"
            ) from None
        if not name:
            raise NSTError(f"style {text!r}: a weight without a style name (write NAME=WEIGHT,NAME=WEIGHT)")
        weights[name] = weights.get(name, 0.0) + weight
    if not weights:
        raise NSTError("style: empty; give a style name or NAME=WEIGHT,NAME=WEIGHT")
    return weights


def check_weights(weights: Sequence[float], what: str) -> np.ndarray:
    """Non-negative finite weights with a positive sum, normalised to sum to 1 (NSTError naming ``what``)."""
    w = np.asarray([float(v) for v in weights], dtype=np.float64)
    if not all(math.isfinite(v) for v in w):
        raise NSTError(f"{what}: style weights must be finite numbers, got {list(map(float, w))}")
    if (w < 0).any():
        raise NSTError(f"{what}: style weights must be >= 0, got {list(map(float, w))}")
    if w.sum() <= 0:
        raise NSTError(f"{what}: the style weights sum to 0; give at least one positive weight")
    return (w / w.sum()).astype(np.float32)


def style_vector(choice: StyleChoice, names: Sequence[str], model: str = "the model") -> np.ndarray:
    """The (styles,) float32 weights ``choice`` stands for over ``names`` (the model's styles, in its order)."""
    if choice is None:
        return check_weights([1.0] + [0.0] * (len(names) - 1), model)
    if isinstance(choice, str):
        choice = parse_style(choice)
    if isinstance(choice, Mapping):
        unknown = [n for n in choice if n not in names]
        if unknown:
            raise NSTError(f"{model} has no style {unknown[0]!r}; its styles: {', '.join(names)}")
        return check_weights([choice.get(n, 0.0) for n in names], model)
    values = list(choice)
    if len(values) != len(names):
        raise NSTError(f"{model}: {len(values)} style weights given for its {len(names)} styles ({', '.join(names)})")
    return check_weights(values, model)


def describe(weights: np.ndarray, names: Sequence[str]) -> str:
    """``starry_night`` for a single style, ``starry_night=0.7,udnie=0.3`` for a blend (what reports show)."""
    used = [(n, float(w)) for n, w in zip(names, weights) if w > 0]
    if len(used) == 1:
        return used[0][0]
    return ",".join(f"{n}={w:.3g}" for n, w in used)
