"""Perceptual losses: content (feature MSE), style (Gram MSE), total variation.

`PerceptualLoss` is shared by the iterative optimizer, the trainer and the comparison metric:
style targets are computed once, and every call returns each term apart for logging.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from nst_core.errors import NSTError
from nst_core.losses.vgg import VGGFeatures
from nst_core.losses.weights import LossWeights


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, C) Gram matrices normalised by the layer size C*H*W."""
    n, c, h, w = features.shape
    if features.dtype in (torch.float16, torch.bfloat16) or torch.is_autocast_enabled(features.device.type):
        # Under mixed precision the sums over H*W overflow fp16 and lose bits in bf16: use fp32.
        with torch.autocast(features.device.type, enabled=False):
            f = features.float().reshape(n, c, h * w)
            return torch.bmm(f, f.transpose(1, 2)).div_(c * h * w)
    f = features.reshape(n, c, h * w)
    return torch.bmm(f, f.transpose(1, 2)).div_(c * h * w)


def content_loss(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error between feature maps."""
    return F.mse_loss(features, target.expand_as(features))


def style_loss(gram: torch.Tensor, target_gram: torch.Tensor) -> torch.Tensor:
    """Mean squared error between Gram matrices (target broadcast over the batch)."""
    return F.mse_loss(gram, target_gram.expand_as(gram))


def total_variation(image: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between neighbouring pixels (smooth, so L-BFGS-friendly)."""
    dx = image[..., :, 1:] - image[..., :, :-1]
    dy = image[..., 1:, :] - image[..., :-1, :]
    return dx.pow(2).mean() + dy.pow(2).mean()


def blend_weights(n_styles: int, blend: Sequence[float] | None) -> list[float]:
    """Normalised per-style weights; NSTError when their count does not match the styles."""
    if n_styles == 0:
        raise NSTError("need at least one style image")
    if blend is None:
        return [1.0 / n_styles] * n_styles
    if len(blend) != n_styles:
        raise NSTError(f"{len(blend)} style blend weights given for {n_styles} style image(s)")
    if any(b < 0 for b in blend) or sum(blend) <= 0:
        raise NSTError(f"style blend weights must be >= 0 with a positive sum, got {list(blend)}")
    total = float(sum(blend))
    return [b / total for b in blend]


class PerceptualLoss(nn.Module):
    """Content + style + TV loss against fixed style targets.

    ``set_style`` stores the (blended) Gram targets once. ``forward(image, content_targets)``
    returns ``{"content", "style", "tv", "total"}`` as weighted scalar tensors; content targets
    come from ``content_targets(content)``, which only runs VGG as deep as the content layers.
    """

    def __init__(self, encoder: VGGFeatures, weights: LossWeights | None = None) -> None:
        super().__init__()
        self.weights = weights or LossWeights()
        needed = set(self.weights.content_layers) | set(self.weights.style_layers)
        missing = needed - set(encoder.layers)
        if missing:
            raise NSTError(f"encoder does not compute layer(s) {sorted(missing)}")
        self.encoder = encoder
        self.style_grams: dict[str, torch.Tensor] = {}

    @classmethod
    def build(
        cls, weights: LossWeights | None = None, vgg_weights: str = "caffe", arch: str = "vgg19", pooling: str = "max"
    ) -> PerceptualLoss:
        """A loss with its own encoder computing exactly the layers it needs."""
        weights = weights or LossWeights()
        layers = list(dict.fromkeys([*weights.content_layers, *weights.style_layers]))
        return cls(VGGFeatures(layers, arch=arch, weights=vgg_weights, pooling=pooling), weights)

    @torch.no_grad()
    def set_style(self, styles: Sequence[torch.Tensor], blend: Sequence[float] | None = None) -> None:
        """Precompute the style targets: a blend-weighted average of each style's Gram matrices.

        Minimising the MSE to the averaged Gram has the same gradient as the weighted sum of
        per-style losses, at the cost of one target.
        """
        ws = blend_weights(len(styles), blend)
        grams: dict[str, torch.Tensor] = {}
        layers = self.weights.style_layers
        if not layers:
            self.style_grams = {}
            return
        for w, style in zip(ws, styles):
            feats = self.encoder(style.unsqueeze(0) if style.dim() == 3 else style, layers)
            for name in layers:
                g = gram_matrix(feats[name]).mean(0, keepdim=True) * w
                grams[name] = grams[name] + g if name in grams else g
        self.style_grams = grams

    @torch.no_grad()
    def content_targets(self, content: torch.Tensor) -> dict[str, torch.Tensor]:
        """Content-layer activations of ``content`` (VGG run only to the deepest content layer)."""
        if not self.weights.content_layers:
            return {}
        return self.encoder(content.unsqueeze(0) if content.dim() == 3 else content, self.weights.content_layers)

    def forward(
        self,
        image: torch.Tensor,
        content_targets: Mapping[str, torch.Tensor] | None = None,
    ) -> dict[str, torch.Tensor]:
        w = self.weights
        if w.style_layers and not self.style_grams:
            raise RuntimeError("PerceptualLoss.set_style() must be called before computing the loss")
        use_content = bool(content_targets) and w.content > 0
        layers = [*(w.content_layers if use_content else ()), *w.style_layers]
        feats = self.encoder(image, layers) if layers else {}
        zero = image.new_zeros(())
        c = sum((content_loss(feats[n], content_targets[n]) for n in w.content_layers), zero) if use_content else zero
        s = sum(
            (w.layer_weights[n] * style_loss(gram_matrix(feats[n]), self.style_grams[n]) for n in w.style_layers), zero
        )
        t = total_variation(image) if w.tv > 0 else zero
        terms = {"content": w.content * c, "style": w.style * s, "tv": w.tv * t}
        terms["total"] = terms["content"] + terms["style"] + terms["tv"]
        return terms
