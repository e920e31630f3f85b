"""How much a stylized video flickers: the warping error of Lai et al. 2018 ("Learning Blind Video Temporal
Consistency", section 5.1).

For each pair of consecutive frames, the previous *output* is warped onto the current one by the optical
flow of the *input* frames, and the squared RGB difference (summed over the three channels, values in
[0, 1]) is averaged over the pixels where that flow is reliable (forward-backward consistent, inside the
frame, `infer.temporal.flow`). The clip's error is the mean over its pairs. A still clip scores 0; the
input clip itself scores its own small residue (interpolation, noise), which is the floor.

The flow here is DIS at its ``medium`` preset, a better and different flow than the ``ultrafast`` one
`TemporalFilter` follows, so the filter is not graded by the flow it used. Pairs with under `MIN_RELIABLE`
of the picture reliable (a scene cut) are left out and counted.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from infer.temporal.flow import Consistency, FlowEstimator, gray, load_cv2, sample, to_unit

MIN_RELIABLE = 0.3


@dataclass
class WarpingError:
    """Feed it (input, output) frame pairs in order (`add`); ``value`` is the clip's warping error so far."""

    preset: str = "medium"
    errors: list[float] = field(default_factory=list)  # one per pair of consecutive frames that was measured
    skipped: int = 0  # pairs left out: too little reliable (scene cuts), or the size changed

    def __post_init__(self) -> None:
        self.cv2 = load_cv2()
        self.flow = FlowEstimator(self.preset)
        self.test = Consistency()
        self._prev: tuple[np.ndarray, np.ndarray] | None = None

    def add(self, frame: np.ndarray, output: np.ndarray) -> None:
        """One input frame and its output (H, W, 3 each, uint8 or float in [0, 1]; the output may not be
        another size than the frame: resize the frame first)."""
        g, out = gray(frame), to_unit(output)
        if out.shape[:2] != g.shape:
            raise ValueError(f"output {out.shape[:2]} and input {g.shape} frames differ in size")
        if self._prev is not None:
            prev_g, prev_out = self._prev
            if prev_g.shape != g.shape:
                self.skipped += 1
            else:
                self._pair(prev_g, prev_out, g, out)
        self._prev = (g, out)

    def _pair(self, prev_g: np.ndarray, prev_out: np.ndarray, g: np.ndarray, out: np.ndarray) -> None:
        backward = self.flow(g, prev_g)
        mask = self.test.mask(backward, self.flow(prev_g, g), self.cv2)
        if mask.mean() < MIN_RELIABLE:
            self.skipped += 1
            return
        diff = ((out - sample(prev_out, backward, self.cv2)) ** 2).sum(-1)
        self.errors.append(float(diff[mask].mean()))

    @property
    def value(self) -> float:
        return statistics.fmean(self.errors) if self.errors else 0.0

    def summary(self) -> dict[str, float | int]:
        return {
            "warping_error": round(self.value, 6),
            "pairs_measured": len(self.errors),
            "pairs_skipped": self.skipped,
        }


def warping_error(inputs: Iterable[np.ndarray], outputs: Iterable[np.ndarray], preset: str = "medium") -> WarpingError:
    """The warping error of ``outputs`` (a stylized clip) given the ``inputs`` it was made from, frame for frame."""
    meter = WarpingError(preset)
    for frame, out in zip(inputs, outputs, strict=True):
        meter.add(frame, out)
    return meter
