"""Colour-space helpers: keep the content's colours while taking the style's texture.

Luminance-only transfer (Gatys et al., "Preserving Color in Neural Artistic Style Transfer"):
the result keeps the stylized image's luma (Y) and the content image's chroma (Cb, Cr).
"""

from __future__ import annotations

import torch

# ITU-R BT.601 full-range, as used by JPEG.
_RGB_TO_YCBCR = torch.tensor([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])
_OFFSET = torch.tensor([0.0, 0.5, 0.5])


def rgb_to_ycbcr(rgb: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) RGB in [0, 1] -> YCbCr in [0, 1]."""
    m = _RGB_TO_YCBCR.to(rgb)
    return torch.einsum("ij,...jhw->...ihw", m, rgb) + _OFFSET.to(rgb).view(3, 1, 1)


def ycbcr_to_rgb(ycc: torch.Tensor) -> torch.Tensor:
    """Inverse of ``rgb_to_ycbcr`` (not clamped)."""
    m = torch.linalg.inv(_RGB_TO_YCBCR).to(ycc)
    return torch.einsum("ij,...jhw->...ihw", m, ycc - _OFFSET.to(ycc).view(3, 1, 1))


def preserve_color(stylized: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """Stylized luma + content chroma, clamped to [0, 1]; both tensors must have the same size."""
    y = rgb_to_ycbcr(stylized)[..., :1, :, :]
    cbcr = rgb_to_ycbcr(content.to(stylized))[..., 1:, :, :]
    return ycbcr_to_rgb(torch.cat([y, cbcr], dim=-3)).clamp(0, 1)
