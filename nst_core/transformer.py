"""The feed-forward transformation network of Johnson et al. (2016), with named size variants.

Reflection-padded convolutions, instance norm, residual blocks, and an upsample-then-convolve
decoder (no transposed convolutions, so no checkerboard artefacts). RGB in [0, 1] in, RGB in
[0, 1] out, any input size: the input is reflection-padded to a multiple of 4 and cropped back.

The ``shuffle`` layout (the ``fast`` variant) keeps the same 1/4-size residual trunk but does no
convolution at full size: a space-to-depth stem (pixel unshuffle) and a pixel-shuffle decoder move the
work of Johnson et al.'s 9x9 full-size convolutions to half size. Measured choices: benchmarks/RESULTS_fast.md.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from nst_core.errors import NSTError

#: Layouts: Johnson et al.'s, and the space-to-depth / pixel-shuffle one of the fast variant.
LAYOUTS = ("johnson", "shuffle")


@dataclass(frozen=True)
class NetworkSpec:
    """Width at full size (``johnson``) or half size (``shuffle``), the number of residual blocks, the
    channels of the 1/4-size trunk (0: four times the width, as in Johnson et al.) and the layout."""

    width: int = 32
    res_blocks: int = 5
    bottleneck: int = 0
    layout: str = "johnson"

    def __post_init__(self) -> None:  # one spelling per network: a trunk of 4 * width is the default, 0
        if self.bottleneck == 4 * self.width:
            object.__setattr__(self, "bottleneck", 0)

    @property
    def trunk(self) -> int:
        return self.bottleneck or 4 * self.width


#: Named variants: `standard` is the network of the paper; `small` trades some quality for speed (3.4x faster with
#: onnxruntime at 512 px on a 2-core CPU, benchmarks/RESULTS_infer.md);
#: `fast` has no full-size convolution (about half the time of `small`, see benchmarks/RESULTS_fast.md).
VARIANTS: dict[str, NetworkSpec] = {
    "standard": NetworkSpec(32, 5),
    "small": NetworkSpec(16, 3),
    "fast": NetworkSpec(16, 4, 48, "shuffle"),
}


def variant_spec(name: str) -> NetworkSpec:
    """The spec of a named variant, or NSTError listing the known names."""
    if name not in VARIANTS:
        raise NSTError(f"unknown network variant {name!r}; choose one of {', '.join(VARIANTS)}")
    return VARIANTS[name]


def _norm_act(channels: int, norm: bool, act: bool) -> list[nn.Module]:
    """The layers after a convolution: instance norm (learned scale and shift), then ReLU, each optional."""
    layers: list[nn.Module] = [nn.InstanceNorm2d(channels, affine=True)] if norm else []
    return layers + ([nn.ReLU(inplace=True)] if act else [])


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
        super().__init__(*layers, *_norm_act(cout, norm, act))


class ResidualBlock(nn.Module):
    """Two 3x3 conv/IN layers with an identity shortcut (He et al.), as in Johnson et al."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(ConvNormAct(channels, channels, 3), ConvNormAct(channels, channels, 3, act=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ShuffleUp(nn.Sequential):
    """2x upsample whose convolution runs at the lower size: 3x3 conv to 4x the channels, pixel shuffle.

    Initialised so the four sub-pixel phases start equal (ICNR, Aitken et al. 2017): at step 0 it is
    nearest upsampling of one convolution, hence no checkerboard to unlearn.
    """

    def __init__(self, cin: int, cout: int, norm: bool = True, act: bool = True) -> None:
        conv = nn.Conv2d(cin, 4 * cout, 3)
        with torch.no_grad():  # pixel_shuffle reads channel c * 4 + phase
            phases = conv.weight.view(cout, 4, cin, 3, 3)
            phases[:, 1:] = phases[:, :1]
            conv.bias.view(cout, 4)[:, 1:] = conv.bias.view(cout, 4)[:, :1]
        layers: list[nn.Module] = [nn.ReflectionPad2d(1), conv, nn.PixelShuffle(2)]
        super().__init__(*layers, *_norm_act(cout, norm, act))


class TransformerNet(nn.Module):
    """Image transformation network; ``TransformerNet.from_variant("small")`` builds a named size."""

    def __init__(self, width: int = 32, res_blocks: int = 5, bottleneck: int = 0, layout: str = "johnson") -> None:
        super().__init__()
        if layout not in LAYOUTS:
            raise NSTError(f"unknown network layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
        self.spec = NetworkSpec(width, res_blocks, bottleneck, layout)
        w, c = width, self.spec.trunk
        if layout == "shuffle":
            self.encoder = nn.Sequential(nn.PixelUnshuffle(2), ConvNormAct(12, w, 3), ConvNormAct(w, c, 3, 2))
            self.residuals = nn.Sequential(*[ResidualBlock(c) for _ in range(res_blocks)])
            self.decoder = nn.Sequential(ShuffleUp(c, w), ShuffleUp(w, 3, norm=False, act=False))
            return
        self.encoder = nn.Sequential(ConvNormAct(3, w, 9), ConvNormAct(w, 2 * w, 3, 2), ConvNormAct(2 * w, c, 3, 2))
        self.residuals = nn.Sequential(*[ResidualBlock(c) for _ in range(res_blocks)])
        self.decoder = nn.Sequential(
            ConvNormAct(c, 2 * w, 3, upsample=True),
            ConvNormAct(2 * w, w, 3, upsample=True),
            ConvNormAct(w, 3, 9, norm=False, act=False),
        )

    @classmethod
    def from_variant(cls, name: str) -> TransformerNet:
        return cls(**asdict(variant_spec(name)))

    @property
    def variant(self) -> str:
        """The variant name when the spec matches one, else ``custom-w<width>-r<blocks>[-b<trunk>][-shuffle]``."""
        for name, spec in VARIANTS.items():
            if spec == self.spec:
                return name
        s = self.spec
        return (
            f"custom-w{s.width}-r{s.res_blocks}"
            + (f"-b{s.bottleneck}" if s.bottleneck else "")
            + ("-shuffle" if s.layout == "shuffle" else "")
        )

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
