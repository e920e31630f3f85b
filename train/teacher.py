"""The networks a run takes from elsewhere: the one a distillation run imitates (``--teacher``: a trained PyTorch
network, or any ONNX model), and the one a run starts from (``--init-from``: a trained network, an `nst export`
ONNX file, or a shipped model's name).

A run folder, checkpoint or ``.safetensors`` file becomes a frozen `TransformerNet` on the training device; an
``.onnx`` file or a shipped model's name (``--teacher starry_night``) runs through onnxruntime, so the networks
that ship can be distilled without their PyTorch weights (on a CPU, onnxruntime is also the faster teacher).

The one place training uses inference (tests/test_layering.py states it): an ONNX teacher runs on the
torch-free runtime (`infer.stylize.Stylizer`), and a shipped name resolves through its registry
(`infer.models`). Both stay the runtime's: moving them into nst_core would put onnxruntime and the shipped
models into the core every command imports.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from infer.models import resolve_model
from infer.stylize import Stylizer, is_network_source
from nst_core.checkpoint_io import load_network, load_onnx_network, style_names
from nst_core.errors import NSTError
from nst_core.scales import model_work_size
from nst_core.transformer import TransformerNet


class OnnxTeacher(nn.Module):
    """An onnxruntime session as a frozen module: float32 (N, 3, H, W) in [0, 1] in and out, on the input's device."""

    def __init__(self, model: str) -> None:
        super().__init__()
        self.stylizer = Stylizer(model, precision="fp32")
        self.work_size = self.stylizer.work_size
        self.style_name = self.stylizer.metadata.get("nst.style")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.stylizer.run_array(x.detach().float().cpu().numpy())
        return torch.from_numpy(y).to(x.device)


def load_teacher(source: str) -> nn.Module:
    """``source``'s network, frozen and in eval mode, with its ``style_name``; NSTError (one line) when it cannot be
    opened or paints several styles (each style of a distillation has its own teacher)."""
    path = resolve_model(source)  # a path wins, else a shipped model's name
    if is_network_source(path):
        net, metadata = load_network(path)
        if net.styles > 1:
            raise NSTError(f"{source}: a network of {net.styles} styles; a teacher paints one (give one per style)")
        net.work_size = model_work_size(metadata)  # the student paints for the teacher's (nst_core.scales)
        net.style_name = metadata.get("style") or Path(path).stem
        return net.requires_grad_(False)
    teacher = OnnxTeacher(path).eval()
    if teacher.stylizer.styles:
        raise NSTError(f"{source}: a network of several styles; a teacher paints one (give one per style)")
    teacher.style_name = teacher.style_name or Path(path).stem
    return teacher


def load_start(source: str) -> tuple[TransformerNet, list[str]]:
    """``--init-from``'s network and its style names: a run folder, checkpoint or ``.safetensors`` file, or the
    weights inside an `nst export` ONNX file (``--init-from the_scream``: a shipped network, PyTorch weights not
    needed)."""
    path = resolve_model(source)  # a path wins, else a shipped model's name
    if is_network_source(path):
        net, metadata = load_network(path)
        return net, style_names(metadata, net.styles)
    net, metadata = load_onnx_network(path)
    return net, style_names(metadata, net.styles, prefix="nst.")
