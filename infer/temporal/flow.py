"""Optical flow between video frames and what it says: warping, reliability, scene cuts (OpenCV's DIS flow).

Conventions: frames are (H, W, 3) arrays, uint8 or float32 in [0, 1]; a flow is (H, W, 2) float32 in pixels,
``(dx, dy)``. The *backward* flow of frame t points from each pixel of frame t to where that point was in
frame t-1, so `sample(previous, backward)` brings frame t-1 onto frame t's pixel grid.

A flow vector is *reliable* where the forward and backward flows agree (Sundaram et al. 2010, as used by
Ruder et al. 2016 and by the warping error of Lai et al. 2018) and it lands inside the previous frame:
occluded and disoccluded pixels, and the strip a moving camera uncovers, fail the test.

DIS (Kroeger et al. 2016, `cv2.DISOpticalFlow`) was chosen for its speed on a CPU: at 320x240 its
ULTRAFAST preset takes a few milliseconds (benchmarks/README.md, "Video flicker" has the measured options).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from nst_core.errors import NSTError

INSTALL_HINT = "pip install 'nst-toolkit[video]' (PyAV and opencv-python-headless)"
#: DIS presets by name: ultrafast for the per-frame filter, medium for the measure (a different, better flow
#: than the filter's own, so the filter is not graded by the flow it used).
PRESETS = {"ultrafast": 0, "fast": 1, "medium": 2}


def load_cv2(hint: str = INSTALL_HINT) -> Any:
    """OpenCV with its own and FFmpeg's console messages off (a failure is our one line), or one line naming the
    install. The environment variables win if set."""
    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET
    try:
        import cv2
    except ImportError:
        raise NSTError(f"OpenCV is not installed: {hint}") from None
    return cv2


def gray(frame: np.ndarray) -> np.ndarray:
    """(H, W) uint8 luma (BT.601) of an (H, W, 3) RGB frame, uint8 or float in [0, 1]: what DIS reads."""
    cv2 = load_cv2()
    if frame.dtype == np.uint8:
        return cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)
    luma = cv2.cvtColor(np.ascontiguousarray(frame, dtype=np.float32), cv2.COLOR_RGB2GRAY)
    return cv2.convertScaleAbs(luma, alpha=255.0)  # rounded, saturated to 0..255


def to_unit(frame: np.ndarray) -> np.ndarray:
    """(H, W, 3) float32 in [0, 1], contiguous (OpenCV's remap wants it so), from uint8 or float."""
    if frame.dtype == np.uint8:
        return frame.astype(np.float32) / 255.0
    return np.ascontiguousarray(frame, dtype=np.float32)


class FlowEstimator:
    """DIS optical flow with one preset, its OpenCV object made once (it keeps its buffers between frames)."""

    def __init__(self, preset: str = "ultrafast") -> None:
        if preset not in PRESETS:
            raise NSTError(f"unknown flow preset {preset!r}; one of {', '.join(PRESETS)}")
        self.cv2 = load_cv2()
        self.dis = self.cv2.DISOpticalFlow_create(PRESETS[preset])

    def __call__(self, source: np.ndarray, target: np.ndarray) -> np.ndarray:
        """The flow from each pixel of ``source`` to its place in ``target`` (both (H, W) uint8); identical frames
        have none (exactly: a still picture stays exactly still)."""
        if np.array_equal(source, target):
            return np.zeros((*source.shape, 2), np.float32)
        return self.dis.calc(source, target, None)


def sample(image: np.ndarray, flow: np.ndarray, cv2: Any | None = None, *, cubic: bool = False) -> np.ndarray:
    """``image`` read at each pixel's position plus ``flow`` (bilinear, or bicubic: sharper when a picture is
    moved again and again; outside the image: the border pixel). With a backward flow this is the previous
    frame moved onto the current one."""
    cv2 = cv2 or load_cv2()
    h, w = flow.shape[:2]
    grid_x, grid_y = _grid(h, w)
    map_x = grid_x + flow[..., 0]
    map_y = grid_y + flow[..., 1]
    mode = cv2.INTER_CUBIC if cubic else cv2.INTER_LINEAR
    return cv2.remap(image, map_x, map_y, mode, borderMode=cv2.BORDER_REPLICATE)


_GRIDS: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}


def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates of an (h, w) image as float32 (x, y) maps, cached per size (a video keeps one size)."""
    key = (h, w)
    if key not in _GRIDS:
        if len(_GRIDS) > 8:
            _GRIDS.clear()
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        _GRIDS[key] = (xs, ys)
    return _GRIDS[key]


@dataclass(frozen=True)
class Consistency:
    """The forward-backward test: a backward vector ``b`` and the forward vector ``f`` found where it lands are
    consistent when ``|b + f|^2 <= alpha (|b|^2 + |f|^2) + beta`` (Sundaram et al.: alpha 0.01, beta 0.5 px^2)."""

    alpha: float = 0.01
    beta: float = 0.5

    def mask(self, backward: np.ndarray, forward: np.ndarray, cv2: Any | None = None) -> np.ndarray:
        """(H, W) bool: where ``backward`` (current -> previous) is reliable, given ``forward`` (previous ->
        current), and lands inside the previous frame."""
        f = sample(forward, backward, cv2)
        rhs = self.alpha * (_square(backward) + _square(f)) + self.beta
        return (_square(backward + f) <= rhs) & inside(backward)


def _square(flow: np.ndarray) -> np.ndarray:
    """|v|^2 per pixel of an (H, W, 2) flow (written out: numpy's sum over a last axis of 2 is several times slower)."""
    x, y = flow[..., 0], flow[..., 1]
    return x * x + y * y


def inside(flow: np.ndarray) -> np.ndarray:
    """(H, W) bool: where pixel + ``flow`` falls within the frame (the strip a camera move uncovers does not)."""
    h, w = flow.shape[:2]
    xs, ys = _grid(h, w)
    x, y = xs + flow[..., 0], ys + flow[..., 1]
    return (x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)
