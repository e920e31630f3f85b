"""The exported graph: TransformerNet rewritten for inference, traced to ONNX with dynamic axes.

The graph takes ``image``: float32 ``(batch, 3, height, width)`` RGB in [0, 1], every dimension
dynamic, and returns ``stylized`` of the same shape. It is `nst_core.transformer.TransformerNet`
with two inference-only changes, both exact up to float rounding (`infer.export.exporter` compares the ONNX
model with the unmodified PyTorch network):

* the reflection padding to a multiple of 4 is always in the graph, with sizes computed from the input
  shape (PyTorch skips it when the size is already a multiple of 4, which tracing would freeze);
* the output convolution (9x9, 3 output channels, at full resolution) becomes a stride-2 10x10
  convolution with 12 output channels followed by a pixel shuffle: onnxruntime's blocked (NCHWc) CPU
  kernels pad output channels to 8 or 16, so a 3-channel convolution wastes most of its work. On the
  benchmark CPU (benchmarks/RESULTS_infer.md) that layer drops from ~98 ms to ~30 ms at 512 px and the small
  network from 313 to 257 ms (``rewrite=False`` / ``nst export --no-rewrite`` turns it off).
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from infer.export.format import DIM_NAMES, DYNAMO_MIN_OPSET, EXPORTERS, INPUT_NAME, OUTPUT_NAME, STYLE_INPUT
from nst_core.errors import NSTError, first_line
from nst_core.transformer import TransformerNet

#: The TorchScript exporter's highest opset.
TORCHSCRIPT_MAX_OPSET = 20


# ---------------------------------------------------------------------------------------------- rewrite


class PhaseConv(nn.Module):
    """``reflect pad k//2 -> conv kxk`` computed as ``reflect pad -> conv (k+1)x(k+1) stride 2 -> pixel shuffle``.

    Output pixel ``(2u+a, 2v+b)`` of the original convolution is phase ``(a, b)`` of the strided one, whose
    kernel for that phase is the original kernel shifted by ``(a, b)`` inside a (k+1)x(k+1) window. Needs an
    even padded size (true inside TransformerNet, whose decoder works on multiples of 4).
    """

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        if conv.stride != (1, 1) or conv.groups != 1 or conv.dilation != (1, 1) or conv.kernel_size[0] % 2 == 0:
            raise ValueError("PhaseConv needs a stride-1, odd-kernel, ungrouped convolution")
        w = conv.weight.detach().float().cpu()
        cout, cin, kh, kw = w.shape
        kernel = torch.zeros(cout, 2, 2, cin, kh + 1, kw + 1)
        for a in range(2):
            for b in range(2):
                kernel[:, a, b, :, a : a + kh, b : b + kw] = w
        self.pad = kh // 2
        self.conv = nn.Conv2d(cin, 4 * cout, (kh + 1, kw + 1), stride=2, bias=True)
        bias = conv.bias.detach().float().cpu() if conv.bias is not None else torch.zeros(cout)
        with torch.no_grad():
            self.conv.weight.copy_(kernel.reshape(4 * cout, cin, kh + 1, kw + 1))
            self.conv.bias.copy_(bias.repeat_interleave(4))  # pixel_shuffle channel order: out * 4 + a * 2 + b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pixel_shuffle(self.conv(F.pad(x, (self.pad,) * 4, mode="reflect")), 2)


def _is_narrow_output_conv(mods: list[nn.Module]) -> bool:
    """``ReflectionPad2d(k//2), Conv2d(k, stride 1, < 8 channels), ...``: the layer PhaseConv speeds up."""
    return (
        len(mods) >= 2
        and isinstance(mods[0], nn.ReflectionPad2d)
        and isinstance(mods[1], nn.Conv2d)
        and mods[1].out_channels < 8
        and mods[1].stride == (1, 1)
        and mods[0].padding == (mods[1].kernel_size[0] // 2,) * 4
    )


def output_layer(layer: nn.Module, rewrite: bool) -> nn.Module:
    """The decoder's last layer, with its 3-channel convolution as a PhaseConv when ``rewrite``."""
    mods = list(layer.children()) if isinstance(layer, nn.Sequential) else []
    if rewrite and _is_narrow_output_conv(mods):
        return nn.Sequential(PhaseConv(mods[1]), *mods[2:])
    return layer


class InferenceNet(nn.Module):
    """TransformerNet for export: the same function, traced-size-independent (see the module docstring). A network
    of several styles takes a second input, ``style``: float32 (styles,), the weights of its styles (a convex
    blend; the runtime normalises what a person gives)."""

    def __init__(self, net: TransformerNet, rewrite: bool = True) -> None:
        super().__init__()
        self.styles = net.styles
        self.__dict__["style_norms"] = net.style_norms
        self.encoder = net.encoder
        self.residuals = net.residuals
        layers = list(net.decoder.children())
        self.decoder = nn.Sequential(*layers[:-1], output_layer(layers[-1], rewrite))
        self.rewritten = self.decoder[-1] is not layers[-1]

    @property
    def input_names(self) -> list[str]:
        return [INPUT_NAME, STYLE_INPUT] if self.styles > 1 else [INPUT_NAME]

    def example(self) -> tuple[torch.Tensor, ...]:
        """batch > 1 and H != W, so nothing specializes to 1 or to H == W; a private generator leaves the
        caller's random state alone. A blend of every style, so that no style's row is traced away."""
        image = torch.rand(2, 3, 72, 104, generator=torch.Generator().manual_seed(0))
        return (image, torch.full((self.styles,), 1.0 / self.styles)) if self.styles > 1 else (image,)

    def forward(self, image: torch.Tensor, style: torch.Tensor | None = None) -> torch.Tensor:
        if self.styles > 1:
            for norm in self.style_norms:
                norm.mix = style.reshape(1, self.styles)
        h, w = image.shape[-2], image.shape[-1]
        x = F.pad(image, (0, (4 - w % 4) % 4, 0, (4 - h % 4) % 4), mode="reflect")
        y = self.decoder(self.residuals(self.encoder(x)))
        return torch.sigmoid(y[..., :h, :w])


# ---------------------------------------------------------------------------------------------- tracing


def _dynamo(module: InferenceNet, opset: int) -> Any:
    dyn = torch.export.Dim.DYNAMIC
    shapes: dict[str, Any] = {INPUT_NAME: {0: dyn, 2: dyn, 3: dyn}}
    if module.styles > 1:
        shapes[STYLE_INPUT] = {}
    program = torch.onnx.export(
        module,
        module.example(),
        None,
        input_names=module.input_names,
        output_names=[OUTPUT_NAME],
        opset_version=opset,
        dynamo=True,
        external_data=False,
        optimize=True,
        dynamic_shapes=shapes,
    )
    return program.model_proto


def _torchscript(module: InferenceNet, opset: int) -> Any:
    import onnx

    buf = io.BytesIO()
    axes = {0: "batch", 2: "height", 3: "width"}
    torch.onnx.export(
        module,
        module.example(),
        buf,
        input_names=module.input_names,
        output_names=[OUTPUT_NAME],
        opset_version=min(opset, TORCHSCRIPT_MAX_OPSET),
        dynamo=False,
        dynamic_axes={INPUT_NAME: axes, OUTPUT_NAME: axes},
    )
    return onnx.load_from_string(buf.getvalue())


_TRACERS: dict[str, Callable[[InferenceNet, int], Any]] = {"dynamo": _dynamo, "torchscript": _torchscript}


def _exporter_order(exporter: str, opset: int) -> tuple[str, ...]:
    """``auto``: dynamo's own opsets start at 18; below that the TorchScript exporter is native."""
    if exporter == "auto":
        return ("dynamo", "torchscript") if opset >= DYNAMO_MIN_OPSET else ("torchscript", "dynamo")
    if exporter not in _TRACERS:
        raise NSTError(f"unknown exporter {exporter!r}; choose one of {', '.join(EXPORTERS)}")
    return (exporter,)


def to_onnx(module: InferenceNet, opset: int, exporter: str = "auto") -> tuple[Any, str]:
    """(onnx ModelProto with named dynamic dims, exporter used); NSTError listing every exporter's failure."""
    errors = []
    for name in _exporter_order(exporter, opset):
        try:
            with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), torch.no_grad():
                warnings.simplefilter("ignore")
                model = _TRACERS[name](module, opset)
        except Exception as e:  # the exporters raise many types; report them all if every one fails
            errors.append(f"{name}: {type(e).__name__}: {first_line(e)}")
            continue
        name_dims(model)
        return model, name
    raise NSTError("ONNX export failed (" + "; ".join(errors) + ")")


def name_dims(model: Any) -> None:
    """Rename the exporter's symbolic dims (s0, s53 ...) of the input/output to batch/height/width."""
    renames: dict[str, str] = {}
    for value in (*model.graph.input, *model.graph.output):
        for dim, name in zip(value.type.tensor_type.shape.dim, DIM_NAMES):
            if name and not dim.HasField("dim_value"):
                if dim.dim_param:
                    renames.setdefault(dim.dim_param, name)
                dim.dim_param = name
    for value in model.graph.value_info:
        for dim in value.type.tensor_type.shape.dim:
            if dim.dim_param in renames:
                dim.dim_param = renames[dim.dim_param]


def graph_opset(model: Any, asked: int) -> int:
    """The default-domain opset the exporter actually wrote (the TorchScript one caps at 20)."""
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), asked)
