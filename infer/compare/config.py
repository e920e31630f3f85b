"""Every knob of `nst compare`, validated where it is made (no torch import: the CLI reads its defaults)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from nst_core.errors import NSTError
from nst_core.losses.weights import LossWeights

DEFAULT_STEPS = (50, 100, 300, 500)
DEFAULT_THUMB_SIZE = 256  # longer side of the grid's thumbnails
MODEL_METRIC = "model"  # score with the loss the model was trained with, read from its metadata
#: Where the optimizer starts, as reports say it. The photo is the stricter baseline (its content term is 0 at the
#: first step); Johnson et al. (2016, Fig. 5) started L-BFGS from noise (Gaussian; ours: `nst optimize --init noise`).
STARTS = {
    "content": "the content photo",
    "noise": "uniform noise in [0, 1) (nst optimize --init noise, seed 0)",
}


def parse_steps(text: str | Sequence[int]) -> list[int]:
    """'50,100,300' (or a sequence) -> sorted distinct positive step counts; NSTError otherwise."""
    items = [t.strip() for t in text.split(",")] if isinstance(text, str) else list(text)
    if not items or any(t == "" for t in items):
        raise NSTError(f"step list {text!r}: expected comma-separated positive integers, e.g. 50,100,300")
    steps = []
    for item in items:
        try:
            value = int(item)
        except (TypeError, ValueError):
            raise NSTError(f"step list {text!r}: {item!r} is not an integer") from None
        if value <= 0:
            raise NSTError(f"step list {text!r}: step counts must be positive, got {value}")
        steps.append(value)
    return sorted(set(steps))


@dataclass
class CompareConfig:
    """Settings of one comparison; ``steps`` ends up a sorted list whatever form it was given in.

    ``metric``: the loss every output is scored with and the optimizer minimises (its TV weight is
    dropped: the score is content + style), or ``"model"`` for the loss the model was trained with.
    """

    steps: Sequence[int] | str = DEFAULT_STEPS  # iterative step counts: one run to the largest, snapshots at each
    size: int = 512  # longer side of every output in pixels
    repeats: int = 3  # timed fast inferences per image (median)
    metric: LossWeights | Literal["model"] = field(default_factory=LossWeights)
    init: Literal["content", "noise"] = "content"  # the optimizer's starting image (STARTS)
    device: str = "auto"
    vgg_weights: str = "caffe"
    progress: bool = True

    def __post_init__(self) -> None:
        self.steps = parse_steps(self.steps)
        for name in ("size", "repeats"):
            if getattr(self, name) <= 0:
                raise NSTError(f"{name} must be positive, got {getattr(self, name)}")
        if self.init not in STARTS:
            raise NSTError(f"init must be one of {', '.join(STARTS)}, got {self.init!r}")
        if self.metric != MODEL_METRIC and not isinstance(self.metric, LossWeights):
            raise NSTError(f"metric must be a LossWeights or {MODEL_METRIC!r}, got {self.metric!r}")

    @property
    def max_steps(self) -> int:
        return self.steps[-1]
