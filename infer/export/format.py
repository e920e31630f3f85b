"""What an exported model is: its input and output, the opsets and exporters it can be made with, and
the ``nst.*`` metadata stored in its ``metadata_props``.

No torch or onnx import: `nst export --help` builds its choices and defaults from here, and
`infer.stylize.stylizer.Stylizer.metadata` / ``nst stylize --info`` read back what `build_metadata` wrote.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nst_core.losses.weights import loss_section

if TYPE_CHECKING:
    from nst_core.transformer import TransformerNet

FORMAT = "nst-onnx-v1"
FORMAT_KEY = "nst.format"  # in every model `nst export` writes
INPUT_NAME = "image"
OUTPUT_NAME = "stylized"
#: The second input of a network of several styles: float32 (styles,), the weight of each style (``nst.styles``).
STYLE_INPUT = "style"
#: Names of the input/output dimensions in the graph (channels stay fixed at 3).
DIM_NAMES = ("batch", None, "height", "width")
LAYOUT = "float32 (batch, 3, height, width), RGB in [0, 1]"
#: torch.onnx exporters; ``auto`` tries the one native to the opset first, then the other.
EXPORTERS = ("auto", "dynamo", "torchscript")
#: Opset of the exported graph: the dynamo exporter's native opset range starts at 18, and onnxruntime
#: >= 1.14, TensorRT >= 8.6 and onnxruntime's quantizer all run it.
DEFAULT_OPSET = 18
DYNAMO_MIN_OPSET = 18
#: Opsets `nst export --opset` accepts: 13 (the oldest both exporters and the quantizer handle) to 23.
MIN_OPSET, MAX_OPSET = 13, 23
#: Largest max-abs difference (RGB in [0, 1]) between the fp32 ONNX model and PyTorch that passes the
#: export check: a quarter of one 8-bit level. Typical values are ~1e-6.
DEFAULT_TOLERANCE = 1e-3
#: Training-config keys kept in the ``nst.config`` summary, besides the ``loss`` section.
CONFIG_SUMMARY_KEYS = (
    "style",
    "data",
    "variant",
    "teacher",
    "image_size",
    "batch_size",
    "max_steps",
    "epochs",
    "lr",
    "style_size",
    "vgg_weights",
    "mixed_precision",
    "seed",
)


def package_version() -> str:
    from nst_core import __version__

    return __version__


def _parse_config(config: str | Mapping[str, Any]) -> Mapping[str, Any] | str:
    """A config given as JSON text (as stored in safetensors metadata) as a mapping, or the text if it is none."""
    if not isinstance(config, str):
        return config
    try:
        parsed = json.loads(config)
    except json.JSONDecodeError:
        return config
    return parsed if isinstance(parsed, Mapping) else config


def config_summary(config: str | Mapping[str, Any] | None) -> dict[str, Any]:
    """The training-config keys worth keeping inside the model (paths reduced to file/folder names).

    The loss weights and layers come as one ``loss`` section, read from the config's own section or,
    for models trained before it existed, from the old flat keys (content_weight, style_layers ...).
    """
    if config is None:
        return {}
    config = _parse_config(config)
    if not isinstance(config, Mapping):
        return {"raw": str(config)[:500]}
    out: dict[str, Any] = {}
    for key in CONFIG_SUMMARY_KEYS:
        value = config.get(key)
        if value is None:
            continue
        if key in ("style", "data") and isinstance(value, str) and (os.sep in value or "/" in value):
            value = Path(value).name
        out[key] = value
    loss = loss_section(config)
    if loss:
        out["loss"] = loss
    return out


def build_metadata(
    net: TransformerNet, source_meta: Mapping[str, str], extra: Mapping[str, Any] | None, source: str | None
) -> dict[str, str]:
    """``nst.*`` metadata for the exported model (before the export-time fields are added).

    ``extra`` adds or overrides keys; a key without a dot gets the ``nst.`` prefix.
    """
    from nst_core.checkpoint_io import (
        metadata_strings,
        style_names,
    )  # imports torch, which the export has loaded anyway

    meta: dict[str, str] = {
        FORMAT_KEY: FORMAT,
        "nst.version": package_version(),
        "nst.variant": net.variant,
        **{f"nst.{key}": str(value) for key, value in asdict(net.spec).items()},
        "nst.input": f"{INPUT_NAME}: {LAYOUT}",
        "nst.output": f"{OUTPUT_NAME}: {LAYOUT}",
    }
    if source_meta.get("style"):
        meta["nst.style"] = source_meta["style"]
    if net.styles > 1:
        meta["nst.styles"] = source_meta.get("styles", "")
        meta["nst.input"] += f"; {STYLE_INPUT}: float32 ({net.styles},), the weight of each of nst.styles, summing to 1"
    if source_meta.get("step"):
        meta["nst.step"] = str(source_meta["step"])
    if source_meta.get("work_size"):  # where its strokes have the painting's size (nst_core.scales)
        meta["nst.work_size"] = str(source_meta["work_size"])
    summary = config_summary(source_meta.get("config"))
    if summary:
        meta["nst.config"] = json.dumps(summary, sort_keys=True)
    if source:
        meta["nst.source"] = source
    for key, value in metadata_strings(extra or {}).items():
        meta[key if "." in key else f"nst.{key}"] = value
    if net.styles > 1:  # the names in the order of the style input, whichever of the above gave them
        names = style_names(meta, net.styles, prefix="nst.")
        meta["nst.styles"], meta["nst.style"] = json.dumps(names), "+".join(names)
    return meta


def set_metadata(model: Any, metadata: Mapping[str, str]) -> None:
    """Replace an onnx ModelProto's metadata_props with ``metadata`` (and set producer / doc string)."""
    del model.metadata_props[:]
    for key, value in metadata.items():
        prop = model.metadata_props.add()
        prop.key, prop.value = key, value
    model.producer_name = "nst-toolkit"
    model.producer_version = package_version()
    model.doc_string = (
        f"Feed-forward style transfer network ({metadata.get('nst.variant', '?')}, style "
        f"{metadata.get('nst.style', '?')}): {metadata.get('nst.input')} -> "
        f"{metadata.get('nst.output')}"
    )
