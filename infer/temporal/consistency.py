"""Motion-compensated temporal consistency for per-frame stylization: `TemporalFilter`.

A feed-forward style network answers a small change of its input with different brush strokes, so a
stylized video flickers wherever something moves. The filter follows the picture's motion instead of
fighting it: the previous *output* is warped onto the current frame by the optical flow of the *input*
frames (`infer.temporal.flow`) and blended with the new output, ``strength`` of the warped one, wherever the
flow can be trusted: the point was inside the previous frame and has the same colour there (within
`PHOTO_TOLERANCE`). Where it cannot (what a moving thing uncovers, the strip a moving camera brings in, a
light switched on) the new output is kept as it is, so nothing leaves a ghost. Along a trajectory the output
is an exponential moving average of the network's answers: strength 0.7 leaves about a sixth of the
frame-to-frame difference of uncorrelated strokes ((1 - s)^2 / (1 + s) of its square).

A scene cut is a frame where too little of the picture can be followed (`CUT_BELOW`): the filter starts again
from the new frame, so nothing is blended across the cut.

The forward-backward test of Sundaram et al. 2010 (as in Ruder et al. 2016) can be added
(``forward_backward=True``): on the test clips it cost a second flow, +35% of the time a `fast` network takes
per 320 px frame instead of +23%, and followed less without catching anything the colour test missed
(benchmarks/README.md, "Video flicker"). This is the post-process family of Bonneel et al. 2015 and Lai et
al. 2018 (blind temporal consistency of any per-frame method), without a learned network.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field

import numpy as np

from infer.temporal.flow import Consistency, FlowEstimator, gray, inside, load_cv2, sample, to_unit
from nst_core.errors import NSTError

#: Luma difference (of 255) between a frame and the previous frame moved onto it above which a pixel is not
#: followed (an occlusion, a change of light, a reflection, a flow that slid). The test reads the luma the flow
#: already needs: on RGB (a mean difference of 0.08) it cost 0.8 ms more per 320 px frame and followed alike.
PHOTO_TOLERANCE = 20
#: A frame with less than this fraction of reliable pixels starts a new scene (nothing blended across it).
CUT_BELOW = 0.3
#: The flow is found on frames this many pixels on their longer side at most (larger frames are shrunk for it,
#: the output still moved at full size): at 160 px for a 320 px frame it cost half and smeared the strokes
#: (benchmarks/README.md, "Video flicker").
FLOW_SIDE = 640


@dataclass
class FilterStats:
    """What the filter did over a stream, for stderr and ``--json``: its cost and how much it could follow."""

    frames: int = 0
    cuts: int = 0  # frames where a new scene started (the first frame not counted)
    ms: list[float] = field(default_factory=list)  # flow, test and blend, per frame after the first
    reliable: list[float] = field(default_factory=list)  # fraction of pixels followed, per frame after the first

    def summary(self) -> dict[str, float | int]:
        return {
            "temporal_ms_per_frame": round(statistics.median(self.ms), 2) if self.ms else 0.0,
            "temporal_followed": round(statistics.fmean(self.reliable), 3) if self.reliable else 0.0,
            "scene_cuts": self.cuts,
        }


def check_strength(strength: float) -> float:
    if not 0.0 <= strength < 1.0:  # NaN fails it too
        raise NSTError(f"temporal strength must be in [0, 1), got {strength}")
    return strength


class TemporalFilter:
    """Blend each stylized frame with the previous output moved along the input's motion (module docstring).

    Per frame, in order: `follow` the input frame (the optical flow from the previous one: it needs only the
    inputs, so a caller can run it before the network), then `blend` the network's output for it. Calling the
    filter does both. Frames are (H, W, 3), float in [0, 1] or uint8; the result is float32 (H, W, 3). A frame
    of another size starts a new scene. The flow is computed with the frames scaled to ``flow_side`` pixels on
    their longer side at most (the output is still warped at full size); ``stats`` collects the cost and cuts.
    """

    def __init__(
        self,
        strength: float,
        *,
        preset: str = "ultrafast",
        forward_backward: bool = False,
        flow_side: int = FLOW_SIDE,
        cut_below: float = CUT_BELOW,
    ) -> None:
        self.strength = check_strength(strength)
        self.cv2 = load_cv2()
        self.flow = FlowEstimator(preset)
        self.forward_backward = forward_backward
        self.flow_side = flow_side
        self.cut_below = cut_below
        self.test = Consistency()
        self.stats = FilterStats()
        self.reset()

    def reset(self) -> None:
        """Forget the past: the next frame is shown as the network made it."""
        self._small: np.ndarray | None = None  # previous frame's luma (uint8, at the flow's size)
        self._out: np.ndarray | None = None  # previous output (full size)
        self._followed: tuple[np.ndarray, np.ndarray] | None = None  # this frame's (mask, backward flow), full size
        self._ms: float | None = None  # the time `follow` took for this frame, until `blend` adds its own

    def __call__(self, frame: np.ndarray, styled: np.ndarray) -> np.ndarray:
        self.follow(frame)
        return self.blend(styled)

    def follow(self, frame: np.ndarray) -> None:
        """Find where this frame's pixels were in the previous frame, and which of them can be trusted."""
        t0 = time.perf_counter()
        small = self._shrink(gray(frame))
        prev, self._small = self._small, small
        self._followed = None
        self.stats.frames += 1
        if prev is None or prev.shape != small.shape or self.strength == 0:
            self._ms = None
            return
        mask, backward = self._reliable(prev, small)
        self.stats.reliable.append(float(mask.mean()))
        if self.stats.reliable[-1] < self.cut_below:
            self.stats.cuts += 1
        else:
            self._followed = self._full_size(mask, backward, frame.shape[:2])
        self._ms = (time.perf_counter() - t0) * 1000

    def blend(self, styled: np.ndarray) -> np.ndarray:
        """The frame to show: ``styled`` (the network's output for the frame last followed) with the previous
        output moved onto it, ``strength`` of it where the motion was followed."""
        t0 = time.perf_counter()
        out = to_unit(styled)
        if self._followed is not None and self._out is not None and self._out.shape == out.shape:
            mask, backward = self._followed
            weight = (self.strength * mask)[..., None]
            moved = sample(self._out, backward, self.cv2, cubic=True)  # bicubic: the strokes stay sharper
            moved -= out
            moved *= weight
            out = np.clip(moved + out, 0.0, 1.0, out=moved)  # (and its overshoot is not carried on)
        if self._ms is not None:  # a frame that had a previous one to follow: its whole cost
            self.stats.ms.append(self._ms + (time.perf_counter() - t0) * 1000)
            self._ms = None
        self._out = out
        return out

    def _shrink(self, frame: np.ndarray) -> np.ndarray:
        """``frame`` with its longer side at most ``flow_side`` (area averaging)."""
        h, w = frame.shape[:2]
        scale = self.flow_side / max(h, w)
        if scale >= 1:
            return frame
        size = (max(8, round(w * scale)), max(8, round(h * scale)))
        return self.cv2.resize(frame, size, interpolation=self.cv2.INTER_AREA)

    def _reliable(self, prev: np.ndarray, cur: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(H, W) bool where the backward flow can be trusted (inside the frame, the same brightness; and the
        forward-backward test if asked), and the backward flow, both at the flow's size. ``prev`` and ``cur``
        are the frames' luma (uint8)."""
        backward = self.flow(cur, prev)
        same = self.cv2.absdiff(sample(prev, backward, self.cv2), cur) <= PHOTO_TOLERANCE
        if not self.forward_backward:
            return same & inside(backward), backward
        return same & self.test.mask(backward, self.flow(prev, cur), self.cv2), backward

    def _full_size(
        self, mask: np.ndarray, backward: np.ndarray, shape: tuple[int, int]
    ) -> tuple[np.ndarray, np.ndarray]:
        """The mask (as float weights) and the flow at the frame's own size (the flow's vectors scaled with it)."""
        h, w = shape
        weights = mask.astype(np.float32)
        if backward.shape[:2] == (h, w):
            return weights, backward
        scale = np.array([w / backward.shape[1], h / backward.shape[0]], np.float32)
        flow = self.cv2.resize(backward, (w, h), interpolation=self.cv2.INTER_LINEAR) * scale
        return self.cv2.resize(weights, (w, h), interpolation=self.cv2.INTER_LINEAR), flow
