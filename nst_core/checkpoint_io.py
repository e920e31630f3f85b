"""Saving and loading trained transformation networks (safetensors + metadata).

One format shared by the trainer (writer) and the exporter / stylizer (readers), so nst_core
owns it. A network file is ``network.safetensors``: the TransformerNet state dict (float32)
with string metadata ``{"variant", "width", "res_blocks", "bottleneck", "layout", "style", "config", ...}``; a network
of several styles also has ``styles``, the JSON list of its style names in the order of its norm rows.

``load_network`` accepts:

* a ``.safetensors`` file;
* a checkpoint folder holding ``network.safetensors`` (``RUN/checkpoints/step-000001000/``);
* a run folder: its final ``network.safetensors``, else its latest ``checkpoints/step-*``.

``load_onnx_network`` reads a network back out of an ``.onnx`` file that `nst export` wrote (a shipped model):
its weights are the ONNX initializers, named as in the state dict.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import asdict, fields, replace
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from nst_core.errors import NSTError, first_line
from nst_core.files import atomic_path
from nst_core.transformer import LAYOUTS, NetworkSpec, TransformerNet, variant_spec

NETWORK_FILE = "network.safetensors"
CHECKPOINTS_DIR = "checkpoints"
_STEP_DIR = re.compile(r"^step-(\d+)$")


def unwrap(net: nn.Module) -> nn.Module:
    """The plain module under DDP / torch.compile / accelerate wrappers."""
    while True:
        if hasattr(net, "_orig_mod"):  # torch.compile
            net = net._orig_mod
        elif hasattr(net, "module") and isinstance(net.module, nn.Module):  # DDP / DataParallel
            net = net.module
        else:
            return net


def metadata_strings(metadata: Mapping[str, Any]) -> dict[str, str]:
    """safetensors and ONNX metadata must be str -> str; dicts/lists become JSON, the rest str()."""
    out = {}
    for key, value in metadata.items():
        out[str(key)] = (
            value
            if isinstance(value, str)
            else json.dumps(value)
            if isinstance(value, dict | list | tuple)
            else str(value)
        )
    return out


def save_network(net: nn.Module, path: str | os.PathLike, metadata: Mapping[str, Any] | None = None) -> Path:
    """Write ``net``'s weights to ``path`` atomically (temporary file in the same folder, then os.replace).

    ``variant`` and the spec (``width``, ``res_blocks``, ``bottleneck``, ``layout``) are filled in from the
    network; other metadata values (``style``, ``config`` ...) are stored as given (dicts as JSON).
    """
    plain = unwrap(net)
    if not isinstance(plain, TransformerNet):
        raise TypeError(f"expected a TransformerNet, got {type(plain).__name__}")
    meta = {
        "format": "nst-transformer-v1",
        "variant": plain.variant,
        **asdict(plain.spec),
        **(metadata or {}),
    }
    names = meta.get("styles")
    if plain.styles > 1 and (not isinstance(names, list | tuple) or len(names) != plain.styles):
        raise ValueError(f"a network of {plain.styles} styles needs metadata 'styles': a list of {plain.styles} names")
    state = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in plain.state_dict().items()}
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise NSTError(f"{path}: cannot create {path.parent} ({e.strerror or e})") from None
    with atomic_path(path) as tmp:
        try:
            save_file(state, str(tmp), metadata=metadata_strings(meta))
        except SafetensorError as e:  # a full disk surfaces as this, not as an OSError
            raise NSTError(f"{path}: cannot write ({first_line(e)})") from None
    return path


def checkpoint_dirs(run_dir: str | os.PathLike) -> list[Path]:
    """Complete checkpoint folders of a run (``checkpoints/step-N``), oldest first."""
    root = Path(run_dir) / CHECKPOINTS_DIR
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if p.is_dir() and (m := _STEP_DIR.match(p.name))]
    return [p for _, p in sorted(found)]


def find_network_file(path: str | os.PathLike) -> Path:
    """Resolve a file / checkpoint folder / run folder to its ``.safetensors`` network file."""
    p = Path(path)
    if p.is_file():
        if p.suffix != ".safetensors":
            raise NSTError(f"{p}: not a .safetensors network file")
        return p
    if not p.exists():
        raise NSTError(f"{p}: no such file or folder")
    if (p / NETWORK_FILE).is_file():
        return p / NETWORK_FILE
    for ckpt in reversed(checkpoint_dirs(p)):
        if (ckpt / NETWORK_FILE).is_file():
            return ckpt / NETWORK_FILE
    raise NSTError(f"{p}: no {NETWORK_FILE} here nor in {CHECKPOINTS_DIR}/step-*/ (not a training run folder?)")


def style_count(state: Mapping[str, torch.Tensor]) -> int:
    """How many styles a state dict's network holds: the rows of its first instance norm's scale."""
    shuffle = "encoder.0.1.weight" not in state
    scale = state["encoder.1.2.weight" if shuffle else "encoder.0.2.weight"]
    return int(scale.shape[0]) if scale.dim() == 2 else 1


def style_names(metadata: Mapping[str, str], count: int, prefix: str = "") -> list[str]:
    """A network's style names, in the order of its norm rows: ``styles`` (JSON list) in its metadata, else its one
    ``style``; ``prefix`` is ``nst.`` for an ONNX model's metadata. Names that are missing read style1, style2 ..."""
    raw = metadata.get(f"{prefix}styles")
    try:
        names = json.loads(raw) if raw else None
    except json.JSONDecodeError:
        names = None
    if isinstance(names, list) and len(names) == count and all(isinstance(n, str) and n for n in names):
        return list(names)
    single = metadata.get(f"{prefix}style")
    return [single] if count == 1 and single else [f"style{i + 1}" for i in range(count)]


def _spec_from_state(state: Mapping[str, torch.Tensor], metadata: Mapping[str, str]) -> NetworkSpec:
    """The network's spec: the metadata's fields where present, else read off the tensor shapes."""
    shuffle = "encoder.0.1.weight" not in state  # the shuffle layout's first layer has no weights
    width = state["encoder.1.1.weight" if shuffle else "encoder.0.1.weight"].shape[0]
    trunk = state["encoder.2.1.weight"].shape[0]
    blocks = {k.split(".")[1] for k in state if k.startswith("residuals.")}
    found = NetworkSpec(int(width), len(blocks), int(trunk), LAYOUTS[shuffle])  # the spec spells 4 * width as 0
    given = {f.name: type(f.default)(metadata[f.name]) for f in fields(NetworkSpec) if f.name in metadata}
    return replace(found, **given)


def _unphase(weight: torch.Tensor, bias: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The kxk convolution an exported output layer holds as a strided (k+1)x(k+1) one with 4x the outputs
    (`infer.export.graph.PhaseConv`, which builds phase (a, b) as the kernel shifted by (a, b)): phase (0, 0)."""
    cout4, cin, k1, _ = weight.shape
    return weight.reshape(cout4 // 4, 2, 2, cin, k1, k1)[:, 0, 0, :, : k1 - 1, : k1 - 1], bias[::4]


def load_onnx_network(path: str | os.PathLike) -> tuple[TransformerNet, dict[str, str]]:
    """The TransformerNet inside an `nst export` ONNX file (eval mode, float32), and its ``nst.*`` metadata; NSTError
    when the file holds no such network (a model from elsewhere)."""
    import onnx
    from onnx import numpy_helper

    try:
        model = onnx.load(str(path))
    except Exception as e:  # onnx raises DecodeError and friends for a file that is not ONNX
        raise NSTError(f"{path}: cannot read it as ONNX ({type(e).__name__})") from None
    metadata = {p.key: p.value for p in model.metadata_props}
    weights = {i.name: torch.from_numpy(numpy_helper.to_array(i).astype("float32")) for i in model.graph.initializer}
    try:
        given = {
            f.name: type(f.default)(metadata[f"nst.{f.name}"])
            for f in fields(NetworkSpec)
            if f"nst.{f.name}" in metadata
        }
        spec = replace(variant_spec(metadata["nst.variant"]), **given)  # older files name the variant's fields only
        net = TransformerNet(**asdict(spec), styles=len(json.loads(metadata.get("nst.styles") or "[0]")))
        state = {}
        for key in net.state_dict():
            if key in weights:
                state[key] = weights[key]
                continue
            layer = key.rpartition(".")[0]  # decoder.L.1.weight, exported as decoder.L.0.conv.weight (phased)
            phased = f"{layer.rpartition('.')[0]}.0.conv"
            state[f"{layer}.weight"], state[f"{layer}.bias"] = _unphase(
                weights[f"{phased}.weight"], weights[f"{phased}.bias"]
            )
        net.load_state_dict(state)
    except (KeyError, ValueError, RuntimeError) as e:
        raise NSTError(
            f"{path}: not a network exported by `nst export` ({type(e).__name__}: {first_line(e)})"
        ) from None
    return net.eval(), metadata


def load_network(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[TransformerNet, dict[str, str]]:
    """Load a trained network (eval mode) and its metadata (all values strings, as stored).

    Metadata keys: ``variant``, the spec's fields, ``style`` (style file stem) and
    ``config`` (JSON of the training config summary) when the trainer wrote the file.
    """
    file = find_network_file(path)
    try:
        with safe_open(str(file), framework="pt") as f:
            metadata = dict(f.metadata() or {})
        state = load_file(str(file))
    except Exception as e:
        raise NSTError(f"{file}: cannot read network weights ({type(e).__name__}: {e})") from None
    try:
        spec = _spec_from_state(state, metadata)
        net = TransformerNet(**asdict(spec), styles=style_count(state))
        net.load_state_dict(state)
    except (KeyError, ValueError, RuntimeError) as e:
        raise NSTError(f"{file}: not a TransformerNet state dict ({type(e).__name__}: {str(e)[:200]})") from None
    metadata.setdefault("variant", net.variant)
    for key, value in asdict(spec).items():
        metadata.setdefault(key, str(value))
    return net.to(device).eval(), metadata
