"""Every knob of the iterative method, validated where it is made (no torch import: the CLI reads its defaults)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from nst_core.errors import NSTError
from nst_core.loss_weights import LossWeights

OPTIMIZERS = ("lbfgs", "adam")


@dataclass
class OptimizeConfig:
    """Settings of `nst optimize`; the defaults give a good 512 px result with the caffe VGG19."""

    size: int = 512  # longer side of the output in pixels
    steps: int = 300  # optimizer steps at the final scale
    optimizer: str = "lbfgs"
    lr: float = 0.02  # Adam only: step size in [0, 1] pixel units
    init: str = "content"  # content | noise | path of an image
    loss: LossWeights = field(default_factory=LossWeights)
    style_blend: Sequence[float] | None = None  # one weight per style image; None: equal
    style_scale: float = 1.0  # style image size relative to the output
    preserve_color: bool = False
    scales: int = 1  # coarse-to-fine levels, each half the size of the next
    coarse_steps: int | None = None  # steps at each coarser scale; None: same as `steps`
    save_every: int = 0
    save_prefix: str | None = None  # intermediate images go to <save_prefix>.step00100.png
    seed: int = 0
    device: str = "auto"
    vgg_weights: str = "caffe"
    progress: bool = True
    channels_last: bool = True
    stop_loss: float | None = None  # stop early once the total loss at the final scale is at or below this

    def __post_init__(self) -> None:
        for name in ("size", "steps", "scales"):
            if getattr(self, name) <= 0:
                raise NSTError(f"{name} must be positive, got {getattr(self, name)}")
        if self.coarse_steps is not None and self.coarse_steps <= 0:
            raise NSTError(f"coarse_steps must be positive, got {self.coarse_steps}")
        if self.optimizer not in OPTIMIZERS:
            raise NSTError(f"optimizer must be 'lbfgs' or 'adam', got {self.optimizer!r}")
        if not 0 < self.lr <= 1:  # a step over the whole pixel range overflows Adam's float32 state
            raise NSTError(f"lr must be in (0, 1] (pixels in [0, 1]), got {self.lr}")
        if not (math.isfinite(self.style_scale) and self.style_scale > 0):
            raise NSTError(f"style_scale must be a finite number > 0, got {self.style_scale}")
        if self.save_every < 0:
            raise NSTError(f"save_every must be >= 0, got {self.save_every}")
        if not isinstance(self.loss, LossWeights):
            raise NSTError(f"loss must be a LossWeights, got {type(self.loss).__name__}")
