"""Test clips from still photos: a virtual camera that pans, zooms and turns over a photo, a second photo sliding
over the first (occlusions), and a cut between two photos. Used to measure flicker (`benchmarks/flicker.py`)
and by the tests; made at 24 fps by default.

Each frame is resampled once from the photo (bicubic, after the photo is brought near the frame's scale with
Lanczos), so the clip's own frame-to-frame change is the motion and nothing else.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from PIL import Image

from infer.temporal.flow import load_cv2

#: A camera path: frame fraction t in [0, 1] -> (centre x, centre y as fractions of the photo, zoom, degrees).
Path = Callable[[float], tuple[float, float, float, float]]

MOVES: dict[str, Path] = {
    "pan": lambda t: (0.3 + 0.4 * t, 0.5 + 0.04 * math.sin(math.pi * t), 1.0, 0.0),
    "zoom": lambda t: (0.5, 0.5, 1.0 + 0.4 * t, 6.0 * t),
    "handheld": lambda t: (0.5 + 0.05 * math.sin(5 * t), 0.5 + 0.04 * math.sin(7 * t + 1), 1.1, 2 * math.sin(4 * t)),
}


def _fit(photo: Image.Image, size: tuple[int, int], margin: float) -> np.ndarray:
    """``photo`` resized (Lanczos) so that a frame of ``size`` covers 1/``margin`` of its shorter extent."""
    w, h = size
    scale = max(margin * w / photo.width, margin * h / photo.height)
    fitted = photo.convert("RGB").resize((round(photo.width * scale), round(photo.height * scale)), Image.LANCZOS)
    return np.asarray(fitted)


def camera_clip(
    photo: Image.Image, move: str = "pan", frames: int = 48, size: tuple[int, int] = (320, 240)
) -> list[np.ndarray]:
    """``frames`` (H, W, 3) uint8 frames of ``size`` (width, height): the camera of ``MOVES[move]`` over ``photo``."""
    cv2 = load_cv2()
    source = _fit(photo, size, margin=1.6)
    sh, sw = source.shape[:2]
    out = []
    for i in range(frames):
        cx, cy, zoom, degrees = MOVES[move](i / max(1, frames - 1))
        matrix = cv2.getRotationMatrix2D((cx * sw, cy * sh), degrees, zoom)
        matrix[:, 2] += (size[0] / 2 - cx * sw, size[1] / 2 - cy * sh)  # the centre onto the frame's centre
        out.append(cv2.warpAffine(source, matrix, size, flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT))
    return out


def object_clip(
    background: Image.Image, thing: Image.Image, frames: int = 48, size: tuple[int, int] = (320, 240)
) -> list[np.ndarray]:
    """A round piece of ``thing`` (a third of the frame's height) crossing a slowly panning ``background``:
    what it covers and uncovers is occlusion, which no flow can follow."""
    base = camera_clip(background, "pan", frames, size)
    w, h = size
    d = h // 3
    piece = np.asarray(thing.convert("RGB").resize((d, d), Image.LANCZOS)).astype(np.float32)
    yy, xx = np.mgrid[0:d, 0:d]
    alpha = np.clip((d / 2 - np.hypot(xx - d / 2 + 0.5, yy - d / 2 + 0.5)), 0, 1)[..., None]  # anti-aliased disc
    for i, frame in enumerate(base):
        t = i / max(1, frames - 1)
        x, y = round((w - d) * (1 - t)), round((h - d) * (0.3 + 0.4 * t))
        region = frame[y : y + d, x : x + d].astype(np.float32)
        frame[y : y + d, x : x + d] = (alpha * piece + (1 - alpha) * region + 0.5).astype(np.uint8)
    return base


def cut_clip(first: Image.Image, second: Image.Image, frames: int = 48, size: tuple[int, int] = (320, 240)) -> list:
    """Half the frames panning over ``first``, then a cut to ``second`` panning on: no blend may cross the cut."""
    half = frames // 2
    return camera_clip(first, "pan", half, size) + camera_clip(second, "pan", frames - half, size)
