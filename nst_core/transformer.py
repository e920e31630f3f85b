"""The feed-forward transformation network of Johnson et al. (2016), with named size variants.

Reflection-padded convolutions, instance norm, residual blocks, and an upsample-then-convolve
decoder (no transposed convolutions, so no checkerboard artefacts). RGB in [0, 1] in, RGB in
[0, 1] out, any input size: the input is reflection-padded to a multiple of 4 and cropped back.

The ``shuffle`` layout (the ``fast`` variant) keeps the same 1/4-size residual trunk but does no
convolution at full size: a space-to-depth stem (pixel unshuffle) and a pixel-shuffle decoder move the
work of Johnson et al.'s 9x9 full-size convolutions to half size. Measured choices: benchmarks/RESULTS_fast.md.

A network of several styles (``TransformerNet(styles=N)``) shares every convolution and gives each instance norm
one scale and shift per style (conditional instance normalization, Dumoulin, Shlens and Kudlur 2017): a style
is a vector of weights over the network's styles, and any convex blend of them is one forward pass.
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


class StyleNorm(nn.Module):
    """Instance norm with one learned scale and shift per style, blended by the style weights (Dumoulin et al.).

    ``weight`` and ``bias`` are (styles, channels): the rows of a single-style network's InstanceNorm2d stacked,
    so a network of one style becomes one of several without a new layout. ``mix``, (batch, styles) or (styles,),
    is set by `TransformerNet.forward` before each pass (a Sequential hands its layers one argument).
    """

    def __init__(self, channels: int, styles: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(styles, channels))
        self.bias = nn.Parameter(torch.zeros(styles, channels))
        self.eps = eps
        self.mix: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mix is None:
            raise RuntimeError("StyleNorm runs inside TransformerNet, which sets the style weights")
        mix = self.mix.to(x.dtype).reshape(-1, self.weight.shape[0])
        scale, shift = mix @ self.weight.to(x.dtype), mix @ self.bias.to(x.dtype)
        if mix.shape[0] == 1:  # one blend for the batch: the norm's own affine (one ONNX InstanceNormalization)
            return F.instance_norm(x, weight=scale[0], bias=shift[0], eps=self.eps)
        return F.instance_norm(x, eps=self.eps) * scale[:, :, None, None] + shift[:, :, None, None]


def _norm_act(channels: int, norm: bool, act: bool, styles: int = 1) -> list[nn.Module]:
    """The layers after a convolution: instance norm (learned scale and shift, one per style), then ReLU, each
    optional. One style keeps Johnson et al.'s InstanceNorm2d: the files of single-style networks stay as they are."""
    layers: list[nn.Module] = []
    if norm:
        layers.append(nn.InstanceNorm2d(channels, affine=True) if styles == 1 else StyleNorm(channels, styles))
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
        styles: int = 1,
    ) -> None:
        layers: list[nn.Module] = [nn.Upsample(scale_factor=2, mode="nearest")] if upsample else []
        layers += [nn.ReflectionPad2d(kernel // 2), nn.Conv2d(cin, cout, kernel, stride)]
        super().__init__(*layers, *_norm_act(cout, norm, act, styles))


class ResidualBlock(nn.Module):
    """Two 3x3 conv/IN layers with an identity shortcut (He et al.), as in Johnson et al."""

    def __init__(self, channels: int, styles: int = 1) -> None:
        super().__init__()
        self.body = nn.Sequential(
            ConvNormAct(channels, channels, 3, styles=styles),
            ConvNormAct(channels, channels, 3, act=False, styles=styles),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ShuffleUp(nn.Sequential):
    """2x upsample whose convolution runs at the lower size: 3x3 conv to 4x the channels, pixel shuffle.

    Initialised so the four sub-pixel phases start equal (ICNR, Aitken et al. 2017): at step 0 it is
    nearest upsampling of one convolution, hence no checkerboard to unlearn.
    """

    def __init__(self, cin: int, cout: int, norm: bool = True, act: bool = True, styles: int = 1) -> None:
        conv = nn.Conv2d(cin, 4 * cout, 3)
        with torch.no_grad():  # pixel_shuffle reads channel c * 4 + phase
            phases = conv.weight.view(cout, 4, cin, 3, 3)
            phases[:, 1:] = phases[:, :1]
            conv.bias.view(cout, 4)[:, 1:] = conv.bias.view(cout, 4)[:, :1]
        layers: list[nn.Module] = [nn.ReflectionPad2d(1), conv, nn.PixelShuffle(2)]
        super().__init__(*layers, *_norm_act(cout, norm, act, styles))


class TransformerNet(nn.Module):
    """Image transformation network; ``TransformerNet.from_variant("small")`` builds a named size."""

    def __init__(
        self, width: int = 32, res_blocks: int = 5, bottleneck: int = 0, layout: str = "johnson", styles: int = 1
    ) -> None:
        super().__init__()
        if layout not in LAYOUTS:
            raise NSTError(f"unknown network layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
        if styles < 1:
            raise NSTError(f"a network has at least one style, got {styles}")
        self.spec = NetworkSpec(width, res_blocks, bottleneck, layout)
        self.styles = styles
        w, c, n = width, self.spec.trunk, styles
        if layout == "shuffle":
            self.encoder = nn.Sequential(
                nn.PixelUnshuffle(2), ConvNormAct(12, w, 3, styles=n), ConvNormAct(w, c, 3, 2, styles=n)
            )
            self.residuals = nn.Sequential(*[ResidualBlock(c, n) for _ in range(res_blocks)])
            self.decoder = nn.Sequential(ShuffleUp(c, w, styles=n), ShuffleUp(w, 3, norm=False, act=False))
        else:
            self.encoder = nn.Sequential(
                ConvNormAct(3, w, 9, styles=n),
                ConvNormAct(w, 2 * w, 3, 2, styles=n),
                ConvNormAct(2 * w, c, 3, 2, styles=n),
            )
            self.residuals = nn.Sequential(*[ResidualBlock(c, n) for _ in range(res_blocks)])
            self.decoder = nn.Sequential(
                ConvNormAct(c, 2 * w, 3, upsample=True, styles=n),
                ConvNormAct(2 * w, w, 3, upsample=True, styles=n),
                ConvNormAct(w, 3, 9, norm=False, act=False),
            )
        self.__dict__["style_norms"] = [m for m in self.modules() if isinstance(m, StyleNorm)]  # not registered twice

    @classmethod
    def from_variant(cls, name: str, styles: int = 1) -> TransformerNet:
        return cls(**asdict(variant_spec(name)), styles=styles)

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

    def set_style(self, style: torch.Tensor | int | None, batch: int) -> None:
        """Hand the style weights to every StyleNorm: ``style`` is a style's index, a (styles,) weight vector for
        the whole batch, a (batch, styles) one per image, or None (the first style)."""
        if self.styles == 1:
            return
        mix = style_mix(style, self.styles, batch, self.style_norms[0].weight.device)
        for norm in self.style_norms:
            norm.mix = mix

    def forward(self, x: torch.Tensor, style: torch.Tensor | int | None = None) -> torch.Tensor:
        h, w = x.shape[-2:]
        self.set_style(style, x.shape[0])
        y = self.decoder(self.residuals(self.encoder(pad_for_network(x))))
        return torch.sigmoid(y[..., :h, :w])


def with_styles(net: TransformerNet, extra: int) -> TransformerNet:
    """A copy of ``net`` with ``extra`` more styles: its convolutions and styles as they were, each new style's
    norm scale and shift starting at the mean of the existing ones (a start that already paints)."""
    grown = TransformerNet(**asdict(net.spec), styles=net.styles + extra)
    state = {}
    for key, value in net.state_dict().items():
        target = grown.state_dict()[key]
        if target.shape != value.shape:  # a norm: (channels,) or (styles, channels) -> (styles + extra, channels)
            rows = value.reshape(-1, value.shape[-1])
            value = torch.cat([rows, rows.mean(0, keepdim=True).expand(extra, -1)])
        state[key] = value
    grown.load_state_dict(state)
    return grown


def style_mix(style: torch.Tensor | int | None, styles: int, batch: int, device: torch.device) -> torch.Tensor:
    """Style weights as a (batch, styles) or (1, styles) tensor: an index or None becomes that style's one-hot row."""
    if style is None or isinstance(style, int):
        index = style or 0
        if not 0 <= index < styles:
            raise NSTError(f"style index {index} out of range for a network of {styles} styles")
        return F.one_hot(torch.tensor([index], device=device), styles).float()
    mix = style.to(device).float().reshape(-1, styles)
    if mix.shape[0] not in (1, batch):
        raise NSTError(f"style weights for {mix.shape[0]} images given for a batch of {batch}")
    return mix


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
