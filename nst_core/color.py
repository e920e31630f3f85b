"""Colour-space helpers: keep the content's colours while taking the style's texture.

Luminance-only transfer (Gatys et al., "Preserving Color in Neural Artistic Style Transfer"):
the result keeps the stylized image's luma (Y) and the content image's chroma (Cb, Cr).

One implementation for PyTorch tensors (the optimizer) and NumPy arrays (the ONNX path, which runs
without torch): the three operations used (einsum, concatenate, clip) have the same name in both.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import TYPE_CHECKING, TypeVar

import numpy as np

if TYPE_CHECKING:
    import torch

    Pixels = TypeVar("Pixels", np.ndarray, torch.Tensor)
else:
    Pixels = TypeVar("Pixels")

# ITU-R BT.601 full-range, as used by JPEG.
_RGB_TO_YCBCR = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])
_YCBCR_TO_RGB = np.linalg.inv(_RGB_TO_YCBCR)
_OFFSET = np.array([0.0, 0.5, 0.5]).reshape(3, 1, 1)


def _lib(x: Pixels) -> ModuleType:
    """numpy for an array, torch for a tensor (torch is imported already: the tensor exists)."""
    return np if isinstance(x, np.ndarray) else sys.modules["torch"]


def _like(values: np.ndarray, x: Pixels) -> Pixels:
    """A constant in ``x``'s kind: an array of its dtype, or a tensor of its dtype on its device."""
    if isinstance(x, np.ndarray):
        return values.astype(x.dtype)
    return _lib(x).as_tensor(values, dtype=x.dtype, device=x.device)


def rgb_to_ycbcr(rgb: Pixels) -> Pixels:
    """(..., 3, H, W) RGB in [0, 1] -> YCbCr in [0, 1]."""
    return _lib(rgb).einsum("ij,...jhw->...ihw", _like(_RGB_TO_YCBCR, rgb), rgb) + _like(_OFFSET, rgb)


def ycbcr_to_rgb(ycc: Pixels) -> Pixels:
    """Inverse of ``rgb_to_ycbcr`` (not clamped)."""
    return _lib(ycc).einsum("ij,...jhw->...ihw", _like(_YCBCR_TO_RGB, ycc), ycc - _like(_OFFSET, ycc))


def preserve_color(stylized: Pixels, content: Pixels) -> Pixels:
    """Stylized luma + content chroma, clamped to [0, 1]; both of the same kind and size."""
    lib = _lib(stylized)
    content = content.astype(stylized.dtype) if lib is np else content.to(stylized)
    y = rgb_to_ycbcr(stylized)[..., :1, :, :]
    cbcr = rgb_to_ycbcr(content)[..., 1:, :, :]
    return lib.clip(ycbcr_to_rgb(lib.concatenate([y, cbcr], axis=-3)), 0, 1)
