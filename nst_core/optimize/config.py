"""Every knob of the iterative method, validated where it is made (no torch import: the CLI reads its defaults)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from nst_core.errors import NSTError
from nst_core.losses.weights import LossWeights

OPTIMIZERS = ("lbfgs", "adam")
# Auto coarse-to-fine starts at this longer side (see auto_scales). At 256 px, a 128 px scale first with the
# same tol everywhere saved nothing (202 + 184 steps vs 185 single-scale); with optimize.FINE_TOL it does.
AUTO_COARSEST = 128


@dataclass
class OptimizeConfig:
    """Settings of `nst optimize`; the defaults give a good 512 px result with the caffe VGG19."""

    size: int = 512  # longer side of the output in pixels
    steps: int | None = None  # None: each scale runs until converged (see `tol`); N: exactly N at the final scale
    max_steps: int = 1000  # the ceiling of a converging scale
    tol: float = 0.01  # converged: the loss fell by less than this fraction over the last `window` steps (see README)
    window: int = 20
    min_steps: int = 50  # a converging scale runs at least this many steps
    optimizer: str = "lbfgs"
    lr: float = 0.02  # Adam only: step size in [0, 1] pixel units
    init: str = "content"  # content | noise | path of an image
    loss: LossWeights = field(default_factory=LossWeights)
    style_blend: Sequence[float] | None = None  # one weight per style image; None: equal
    style_scale: float = 1.0  # style image size relative to the output
    preserve_color: bool = False
    scales: int | None = None  # coarse-to-fine levels, each half the size of the next; None: auto (see auto_scales)
    coarse_steps: int | None = None  # steps at each coarser scale; None: same as `steps`
    preview: str | None = None  # path rewritten with the current image at the end of every scale
    save_every: int = 0
    save_prefix: str | None = None  # intermediate images go to <save_prefix>.step00100.png
    seed: int = 0
    device: str = "auto"
    vgg_weights: str = "caffe"
    progress: bool = True
    channels_last: bool = True
    max_memory_gb: float = 6.0  # peak memory planned for (VGG tiles + L-BFGS history), GiB; see optimize._plan
    tile: int | None = None  # VGG tile side in px (a multiple of 16); None: planned from max_memory_gb; 0: never tile
    stop_loss: float | None = None  # stop early once the total loss at the final scale is at or below this
    checkpoint: str | None = None  # path of the run's checkpoint (see nst_core.optimize.checkpoint); None: none
    checkpoint_every: float = 600.0  # seconds between checkpoints within a scale (one is also written per scale)
    resume: bool = False  # go on from `checkpoint` instead of starting afresh
    max_time: float | None = None  # seconds of optimising in this session, then checkpoint and return unfinished

    def __post_init__(self) -> None:
        for name in ("size", "steps", "scales", "coarse_steps", "max_steps", "window"):  # None: not given
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise NSTError(f"{name} must be positive, got {value}")
        if not (math.isfinite(self.max_memory_gb) and self.max_memory_gb > 0):
            raise NSTError(f"max_memory_gb must be a finite number > 0, got {self.max_memory_gb}")
        if self.tile is not None and (self.tile < 0 or self.tile % 16):
            raise NSTError(f"tile must be 0 (never tile) or a positive multiple of 16 px, got {self.tile}")
        if self.min_steps < 0:
            raise NSTError(f"min_steps must be >= 0, got {self.min_steps}")
        if not (math.isfinite(self.tol) and self.tol >= 0):
            raise NSTError(f"tol must be a finite number >= 0, got {self.tol}")
        if self.optimizer not in OPTIMIZERS:
            raise NSTError(f"optimizer must be 'lbfgs' or 'adam', got {self.optimizer!r}")
        if not 0 < self.lr <= 1:  # a step over the whole pixel range overflows Adam's float32 state
            raise NSTError(f"lr must be in (0, 1] (pixels in [0, 1]), got {self.lr}")
        if not (math.isfinite(self.style_scale) and self.style_scale > 0):
            raise NSTError(f"style_scale must be a finite number > 0, got {self.style_scale}")
        for name in ("checkpoint_every", "max_time"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise NSTError(f"{name} must be a finite number of seconds > 0, got {value}")
        if (self.resume or self.max_time is not None) and not self.checkpoint:
            raise NSTError("resume and max_time need a checkpoint path")
        if self.save_every < 0:
            raise NSTError(f"save_every must be >= 0, got {self.save_every}")
        if not isinstance(self.loss, LossWeights):
            raise NSTError(f"loss must be a LossWeights, got {type(self.loss).__name__}")


def converged(losses: Sequence[float], cfg: OptimizeConfig) -> bool:
    """Whether a scale's best-so-far losses fell by less than ``cfg.tol`` (relative) over the last ``cfg.window`` steps.

    The losses are the best point so far, so they never rise; a scale never stops before ``cfg.min_steps``.
    """
    n = len(losses)
    if n < max(cfg.min_steps, cfg.window + 1):
        return False
    old = losses[-1 - cfg.window]
    return old - losses[-1] <= cfg.tol * abs(old)


def auto_scales(size: int) -> int:
    """Coarse-to-fine levels for an output of longer side ``size``: halve down to about AUTO_COARSEST px."""
    levels = 1
    while size / 2**levels >= AUTO_COARSEST:
        levels += 1
    return levels
