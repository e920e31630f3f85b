"""Reduced-precision copies of an exported model: fp16, and int8 calibrated on photos.

* fp16: float16 weights and activations, float32 input and output (casts at the edges), half the size;
* int8: static QDQ quantization of the convolutions with onnxruntime's quantizer: int8 per-channel
  weights, uint8 activations whose ranges are calibrated (min/max) on photos. Instance norm, padding
  and resizing stay in float.

`infer.export.exporter` writes them beside the fp32 model and measures each one against it; nothing here
decides whether the error is acceptable (it is reported, not enforced).
"""

from __future__ import annotations

import contextlib
import copy
import io
import os
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process
from onnxruntime.transformers.float16 import convert_float_to_float16
from PIL import Image

from infer.export.format import INPUT_NAME, STYLE_INPUT
from nst_core.errors import NSTError
from nst_core.files import temporary_name
from nst_core.image_io import center_crop, open_image, pil_to_array, scan_images

PRECISIONS = ("fp16", "int8")
#: Built-in photos used to calibrate int8 activations when no calibration images are given.
DEFAULT_CALIBRATION = (
    "skimage:astronaut",
    "skimage:chelsea",
    "skimage:coffee",
    "skimage:rocket",
    "skimage:motorcycle_left",
    "skimage:hubble_deep_field",
    "skimage:retina",
    "skimage:ihc",
)
#: Calibration images are centre squares resized to this side.
CALIBRATION_SIZE = 256
#: Images taken from each calibration folder (sorted by path); min/max ranges settle long before.
CALIBRATION_LIMIT = 64


def variant_path(out: Path, precision: str) -> Path:
    """``candy.onnx`` -> ``candy.fp16.onnx``."""
    return out.with_name(f"{out.stem}.{precision}{out.suffix}")


# ---------------------------------------------------------------------------------------------- calibration


@dataclass
class Calibration:
    """The calibration batches, (1, 3, S, S) float32 in [0, 1], and the non-image files passed over."""

    arrays: list[np.ndarray]
    skipped: list[Path] = field(default_factory=list)


def _calibration_paths(sources: Iterable[str | os.PathLike]) -> tuple[list[str | os.PathLike], list[Path]]:
    """Files given, plus the first images of each folder given; and the folders' non-image files."""
    paths: list[str | os.PathLike] = []
    skipped: list[Path] = []
    for src in sources:
        if not Path(src).is_dir():
            paths.append(src)  # open_image names it if it is missing or not an image
            continue
        images, others = scan_images(src)
        if not images:
            raise NSTError(f"{src}: no images to calibrate with")
        paths += images[:CALIBRATION_LIMIT]
        skipped += others
    return paths, skipped


def _builtin_photos() -> list[Image.Image]:
    """The DEFAULT_CALIBRATION photos that this scikit-image ships."""
    images = []
    for name in DEFAULT_CALIBRATION:
        with contextlib.suppress(NSTError):
            images.append(open_image(name))
    return images


def _smooth_noise(count: int = 4) -> list[np.ndarray]:
    """Smooth random images: a stand-in for photos when scikit-image ships none."""
    import torch
    import torch.nn.functional as F

    gen = torch.Generator().manual_seed(0)
    low = [torch.rand(1, 3, CALIBRATION_SIZE // 16, CALIBRATION_SIZE // 16, generator=gen) for _ in range(count)]
    return [F.interpolate(x, size=(CALIBRATION_SIZE,) * 2, mode="bicubic").clamp(0, 1).numpy() for x in low]


def calibration_images(sources: Iterable[str | os.PathLike] | None) -> Calibration:
    """Centre crops of the given images and folders (default: built-in photos)."""
    paths, skipped = _calibration_paths(sources or ())
    images = [open_image(p) for p in paths] if paths else _builtin_photos()
    arrays = [pil_to_array(center_crop(img, CALIBRATION_SIZE))[None] for img in images]
    return Calibration(arrays or _smooth_noise(), skipped)


class _Reader(CalibrationDataReader):
    """Feeds the calibration arrays to onnxruntime's quantizer, one batch per call; a network of ``styles`` styles
    gets every array in every style, so the activation ranges cover them all."""

    def __init__(self, arrays: list[np.ndarray], styles: int = 1) -> None:
        if styles == 1:
            self._it = iter([{INPUT_NAME: x} for x in arrays])
            return
        one_hot = np.eye(styles, dtype=np.float32)
        self._it = iter([{INPUT_NAME: x, STYLE_INPUT: w} for x in arrays for w in one_hot])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._it, None)


# ---------------------------------------------------------------------------------------------- conversions


def fp16_model(model: Any) -> Any:
    """A float16 copy of ``model`` with float32 input and output."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return convert_float_to_float16(copy.deepcopy(model), keep_io_types=True)


def has_fp16(model: Any) -> bool:
    """Whether ``model`` computes in float16 anywhere (a weight, or a cast to it)."""
    fp16 = onnx.TensorProto.FLOAT16
    casts = any(n.op_type == "Cast" and _cast_to(n) == fp16 for n in model.graph.node)
    return casts or any(t.data_type == fp16 for t in model.graph.initializer)


def _cast_to(node: Any) -> int | None:
    return next((a.i for a in node.attribute if a.name == "to"), None)


def fp32_model(model: Any) -> Any:
    """A float32 copy of an `fp16_model` (or any graph with float16 weights): every float16 weight, constant, cast
    and intermediate type made float32. For runtimes without float16 arithmetic (WebGPU on a device without
    ``shader-f16``), where the fp16 graph does not load; the results are the fp16 graph's within its rounding."""
    fp16, fp32 = onnx.TensorProto.FLOAT16, onnx.TensorProto.FLOAT
    out = copy.deepcopy(model)
    graph = out.graph

    def widen(tensor: Any) -> None:
        if tensor.data_type == fp16:
            wide = onnx.numpy_helper.to_array(tensor).astype(np.float32)
            tensor.CopyFrom(onnx.numpy_helper.from_array(wide, tensor.name))

    for tensor in graph.initializer:
        widen(tensor)
    for node in graph.node:
        for attr in node.attribute:
            if node.op_type == "Cast" and attr.name == "to" and attr.i == fp16:
                attr.i = fp32
            elif attr.type == onnx.AttributeProto.TENSOR:
                widen(attr.t)
    for value in [*graph.value_info, *graph.input, *graph.output]:
        if value.type.tensor_type.elem_type == fp16:
            value.type.tensor_type.elem_type = fp32
    return out


def style_count(model: Any) -> int:
    """How many styles an exported network paints: the length of its ``style`` input (1 without one)."""
    for value in model.graph.input:
        if value.name == STYLE_INPUT:
            return int(value.type.tensor_type.shape.dim[0].dim_value)
    return 1


def int8_model(fp32: Any, calibration: Calibration, dest: Path) -> Any:
    """The int8 (QDQ) model of the fp32 ModelProto ``fp32``, to be written to ``dest``.

    The quantizer works on files: two temporaries beside ``dest``, named like `atomic_path`'s, so a kill
    leaves nothing the next write of ``dest`` does not remove. A disk error is one line naming ``dest``.
    """
    src, pre, raw = temporary_name(dest), temporary_name(dest), temporary_name(dest)
    try:
        # From a file: given a ModelProto, quant_pre_process re-saves it with external data that its
        # own onnxruntime session cannot read (the dynamo exporter's constants), and fails.
        onnx.save(fp32, str(src))
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
            quantize_static(
                str(pre),
                str(raw),
                _Reader(calibration.arrays, style_count(fp32)),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                op_types_to_quantize=["Conv"],
            )
            return onnx.load(str(raw))
    except OSError as e:
        raise NSTError(f"{dest}: cannot write ({e.strerror or e})") from None
    finally:
        for work in (src, pre, raw):
            work.unlink(missing_ok=True)
