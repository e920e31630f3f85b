"""The feed-forward transformation network of Johnson et al. (2016), with named size variants.

Reflection-padded convolutions, instance norm, residual blocks, and an upsample-then-convolve
decoder (no transposed convolutions, so no checkerboard artefacts). RGB in [0, 1] in, RGB in
[0, 1] out, any input size: the input is reflection-padded to a multiple of 4 and cropped back.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from nst_core.errors import NSTError


@dataclass(frozen=True)
class NetworkSpec:
    """Width of the first layer (doubled twice by the encoder) and the number of residual blocks."""

    width: int = 32
    res_blocks: int = 5


#: Named variants: `standard` is the network of the paper; `small` trades some quality for ~4x speed.
VARIANTS: dict[str, NetworkSpec] = {
    "standard": NetworkSpec(32, 5),
    "small": NetworkSpec(16, 3),
}


def variant_spec(name: str) -> NetworkSpec:
    """The spec of a named variant, or NSTError listing the known names."""
    if name not in VARIANTS:
        raise NSTError(f"unknown network variant {name!r}; choose one of {', '.join(VARIANTS)}")
    return VARIANTS[name]


class ConvNormAct(nn.Sequential):
    """Reflection pad -> conv -> instance norm -> optional ReLU; optional nearest 2x upsample first."""

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel: int,
        stride: int = 1,
        upsample: bool = False,
        norm: bool = True,
        act: bool = True,
    ) -> None:
        layers: list[nn.Module] = [nn.Upsample(scale_factor=2, mode="nearest")] if upsample else []
        layers += [nn.ReflectionPad2d(kernel // 2), nn.Conv2d(cin, cout, kernel, stride)]
        if norm:
            layers.append(nn.InstanceNorm2d(cout, affine=True))
        if act:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class ResidualBlock(nn.Module):
    """Two 3x3 conv/IN layers with an identity shortcut (He et al.), as in Johnson et al."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(ConvNormAct(channels, channels, 3), ConvNormAct(channels, channels, 3, act=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class TransformerNet(nn.Module):
    """Image transformation network; ``TransformerNet.from_variant("small")`` builds a named size."""

    def __init__(self, width: int = 32, res_blocks: int = 5) -> None:
        super().__init__()
        self.spec = NetworkSpec(width, res_blocks)
        w = width
        self.encoder = nn.Sequential(ConvNormAct(3, w, 9), ConvNormAct(w, 2 * w, 3, 2), ConvNormAct(2 * w, 4 * w, 3, 2))
        self.residuals = nn.Sequential(*[ResidualBlock(4 * w) for _ in range(res_blocks)])
        self.decoder = nn.Sequential(
            ConvNormAct(4 * w, 2 * w, 3, upsample=True),
            ConvNormAct(2 * w, w, 3, upsample=True),
            ConvNormAct(w, 3, 9, norm=False, act=False),
        )

    @classmethod
    def from_variant(cls, name: str) -> TransformerNet:
        return cls(**asdict(variant_spec(name)))

    @property
    def variant(self) -> str:
        """The variant name when the spec matches one, else ``custom-w<width>-r<blocks>``."""
        for name, spec in VARIANTS.items():
            if spec == self.spec:
                return name
        return f"custom-w{self.spec.width}-r{self.spec.res_blocks}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        y = self.decoder(self.residuals(self.encoder(pad_for_network(x))))
        return torch.sigmoid(y[..., :h, :w])


#: Smallest padded side: the 9x9 input conv reflects 4 pixels, so it needs 5; the bottleneck (1/4
#: size) reflects 1 pixel, so it needs 2, i.e. 8 at full size.
MIN_PADDED_SIDE = 8


def pad_for_network(x: torch.Tensor) -> torch.Tensor:
    """Pad the bottom/right of (N, 3, H, W) to a multiple of 4 and at least 8 per side, so any size >= 1 works.

    Reflection where the image is larger than the padding (no edge seam), else edge replication.
    """
    h, w = x.shape[-2:]
    pad_h = max(MIN_PADDED_SIDE, -(-h // 4) * 4) - h
    pad_w = max(MIN_PADDED_SIDE, -(-w // 4) * 4) - w
    if not (pad_h or pad_w):
        return x
    mode = "reflect" if pad_h < h and pad_w < w else "replicate"
    return F.pad(x, (0, pad_w, 0, pad_h), mode=mode)
