"""Overlapping tiles for large images: where tiles start, how their seams are blended, when to tile.

Memory stays bounded by the tile size. Each tile passes through the network on its own, so its
instance norms see only that tile: a tiled result is close to, not identical with, one pass over
the whole image. Overlaps are blended with linear ramps so that no seam is visible.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from nst_core.errors import NSTError

#: Images with more pixels than this are tiled automatically (tile=None) ...
AUTO_TILE_PIXELS = 2048 * 2048
#: ... in tiles of this side.
DEFAULT_TILE = 1024
#: Smallest tile side accepted (smaller tiles are mostly overlap).
MIN_TILE = 32


def check_tile(tile: int | None) -> int | None:
    """``tile`` as given where it enters: None (automatic), 0 (never tile) or a side >= MIN_TILE."""
    if tile is not None and tile != 0 and tile < MIN_TILE:
        raise NSTError(f"tile size must be 0 (off) or at least {MIN_TILE} pixels, got {tile}")
    return tile


def tile_side(
    height: int, width: int, tile: int | None, max_pixels: int = AUTO_TILE_PIXELS, auto_tile: int = DEFAULT_TILE
) -> int | None:
    """The tile side to cut an image into, or None for one pass (``tile`` already checked).

    ``tile`` None: ``auto_tile`` above ``max_pixels`` pixels; 0: never; N: whenever a side is longer than N.
    """
    if tile == 0:
        return None
    if tile is None:
        return auto_tile if height * width > max_pixels else None
    return tile if max(height, width) > tile else None


def overlap_for(tile: int) -> int:
    """Overlap of neighbouring tiles: an eighth of the tile, at least 16 pixels."""
    return max(16, tile // 8)


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of size ``tile`` covering ``length``, evenly spread, overlapping by >= ``overlap``."""
    if length <= tile:
        return [0]
    n = math.ceil((length - overlap) / (tile - overlap))
    return [round(i * (length - tile) / (n - 1)) for i in range(n)]


def blend_weights(starts: list[int], size: int, length: int) -> list[np.ndarray]:
    """Per-tile 1-D weights: linear ramps across each overlap, normalised to sum to 1 at every position."""
    weights = []
    for i, s in enumerate(starts):
        w = np.ones(size, dtype=np.float64)
        pos = np.arange(size) + 0.5
        if i > 0 and (ramp := starts[i - 1] + size - s) > 0:
            w = np.minimum(w, pos / ramp)
        if i < len(starts) - 1 and (ramp := s + size - starts[i + 1]) > 0:
            w = np.minimum(w, (size - pos) / ramp)
        weights.append(w)
    total = np.zeros(length, dtype=np.float64)
    for s, w in zip(starts, weights):
        total[s : s + size] += w
    return [(w / total[s : s + size]).astype(np.float32) for s, w in zip(starts, weights)]


def count_tiles(height: int, width: int, tile: int) -> int:
    """How many ``tile`` x ``tile`` pieces an image of this size is cut into."""
    overlap = overlap_for(tile)
    return len(tile_starts(height, min(tile, height), overlap)) * len(tile_starts(width, min(tile, width), overlap))


def run_tiled(run: Callable[[np.ndarray], np.ndarray], x: np.ndarray, tile: int, overlap: int) -> np.ndarray:
    """``run`` over one image (1, 3, H, W) in overlapping ``tile`` x ``tile`` pieces, blended with linear ramps."""
    _, _, h, w = x.shape
    if not 0 <= overlap < tile / 2 + 1:
        raise NSTError(f"tile overlap must be less than half the tile size ({tile}), got {overlap}")
    th, tw = min(tile, h), min(tile, w)
    ys, xs = tile_starts(h, th, overlap), tile_starts(w, tw, overlap)
    wy, wx = blend_weights(ys, th, h), blend_weights(xs, tw, w)
    out = np.zeros((1, 3, h, w), dtype=np.float32)
    for y0, ky in zip(ys, wy):
        for x0, kx in zip(xs, wx):
            piece = run(x[:, :, y0 : y0 + th, x0 : x0 + tw])
            out[:, :, y0 : y0 + th, x0 : x0 + tw] += piece * (ky[:, None] * kx[None, :])
    return out
