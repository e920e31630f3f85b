"""Strokes at the size the picture calls for: the network at its working size, the full size's detail on top.

A feed-forward network paints strokes of a fixed size in pixels: the size they had in the painting it was
trained with (its longer side, the model's *work size*, 256 px for the shipped models). On a 1024 px photo
those strokes are a quarter of the size the painting's would be at 1024 px, so big pictures look busy and
fine-grained rather than painted. Here the network runs on the picture at the work size and at each
doubling up to the full size, and the results are blended as a Laplacian pyramid: the coarsest run gives
the composition, colours and large strokes; every finer run adds only its own band of detail (its output
minus its own blurred output), so the photo's edges and the fine strokes of the full-size run are kept.
Costs 1/3 more than one full-size run at most (each level has a quarter of the pixels of the next).

numpy only (the ONNX runtime path imports no torch).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Mapping

import numpy as np

from nst_core.image_io import resize_array


def pyramid_sizes(height: int, width: int, work_size: int) -> list[tuple[int, int]]:
    """The (height, width) of each level, full size first, halving down to about ``work_size`` (longer side)."""
    longer = max(height, width)
    levels = max(0, round(math.log2(longer / work_size))) if work_size > 0 else 0
    sizes = [(height, width)]
    for k in range(1, levels + 1):
        sizes.append((max(1, round(height / 2**k)), max(1, round(width / 2**k))))
    return sizes


def upscale_factor(longer: int, work_size: int) -> int:
    """The power of two that brings a picture's longer side to about ``work_size`` when it is well under it."""
    return 2 ** max(0, round(math.log2(work_size / longer))) if work_size > 0 else 1


def stylize_multiscale(run: Callable[[np.ndarray], np.ndarray], x: np.ndarray, work_size: int) -> np.ndarray:
    """``run`` (an (N, 3, H, W) -> same-shape network call) applied at each pyramid level of ``x``, blended.

    A picture whose longer side is within about 1.4x of ``work_size`` (or ``work_size`` 0) is run once; one
    well under it is run enlarged to about the work size and brought back (a network trained on the painting
    at 512 px paints a 256 px photo's strokes at their size).
    """
    up = upscale_factor(max(x.shape[2:]), work_size)
    if up > 1:
        h, w = x.shape[2], x.shape[3]
        y = run(np.clip(resize_array(x, (h * up, w * up)), 0.0, 1.0))
        return resize_array(y, (h, w))
    sizes = pyramid_sizes(x.shape[2], x.shape[3], work_size)
    if len(sizes) == 1:
        return run(x)
    inputs = [x] + [np.clip(resize_array(x, s), 0.0, 1.0) for s in sizes[1:]]
    out = run(inputs[-1])  # the coarsest level: the network at its working size
    for level in range(len(sizes) - 2, -1, -1):
        finer = run(inputs[level])
        blurred = resize_array(resize_array(finer, sizes[level + 1]), sizes[level])
        out = resize_array(out, sizes[level]) + (finer - blurred)
    return out


#: The ONNX metadata key of a model's work size (the longer side of the painting it was trained with, px).
WORK_SIZE_KEY = "nst.work_size"


def model_work_size(metadata: Mapping[str, str]) -> int | None:
    """The size a model paints its strokes for, from its metadata: ``nst.work_size`` (an ONNX model's) or
    ``work_size`` (a trained network's, chosen by `train.work_size` when its run ended); 0 or None: one pass at
    the picture's size (0: the network paints larger pictures better that way; None: not known)."""
    for key in (WORK_SIZE_KEY, "work_size"):
        if key in metadata:
            with contextlib.suppress(ValueError):
                return max(0, int(metadata[key]))
            return None
    return None
