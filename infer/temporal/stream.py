"""The temporal side of a stream of stylized frames: the consistency filter and the flicker measure together,
as `nst stylize` (videos) and `nst live` use them (`Stylizer.stylize_frames` calls one per frame)."""

from __future__ import annotations

from typing import Any

import numpy as np

from infer.temporal.consistency import TemporalFilter, check_strength
from infer.temporal.measure import WarpingError


class FrameTemporal:
    """``strength`` > 0: frames go through a `TemporalFilter`; ``measure``: the warping error of what is shown is
    kept (`WarpingError`, its own better flow: it costs more time than the filter). Neither: frames pass."""

    def __init__(self, strength: float = 0.0, measure: bool = False) -> None:
        self.filter = TemporalFilter(strength) if check_strength(strength) > 0 else None
        self.meter = WarpingError() if measure else None

    @property
    def active(self) -> bool:
        return self.filter is not None or self.meter is not None

    def restart(self) -> None:
        """The pictures change for another reason than motion (the live style switched): nothing of the previous
        output is carried over to the next frame."""
        if self.filter is not None:
            self.filter.reset()

    def follow(self, frame: np.ndarray) -> None:
        """Before the network: the flow from the previous input frame (`TemporalFilter.follow`). Done first, the
        flow does not share the CPU with the threads onnxruntime keeps spinning for a moment after each run."""
        if self.filter is not None:
            self.filter.follow(frame)

    def show(self, frame: np.ndarray, styled: np.ndarray) -> np.ndarray:
        """The (H, W, 3) frame to show for input ``frame`` (followed first) and the network's ``styled`` (both
        float in [0, 1]); measured when asked."""
        out = self.filter.blend(styled) if self.filter is not None else styled
        if self.meter is not None:
            self.meter.add(frame, out)
        return out

    def summary(self) -> dict[str, Any]:
        """For ``--json`` and the stderr line: the filter's cost and cuts, the warping error; only what ran."""
        info: dict[str, Any] = {}
        if self.filter is not None:
            info |= {"temporal": self.filter.strength, **self.filter.stats.summary()}
        if self.meter is not None:
            info |= self.meter.summary()
        return info
