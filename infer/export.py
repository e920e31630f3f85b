"""Export a trained TransformerNet to ONNX, checked against PyTorch; optional fp16 and int8 variants.

The exported graph takes ``image``: float32 ``(batch, 3, height, width)`` RGB in [0, 1], every
dimension dynamic, and returns ``stylized`` of the same shape. It is the network of
`nst_core.transformer.TransformerNet` with two inference-only changes, both exact up to float rounding
(the export check below compares the ONNX model with the unmodified PyTorch network):

* the reflection padding to a multiple of 4 is always in the graph, with sizes computed from the input
  shape (PyTorch skips it when the size is already a multiple of 4, which tracing would freeze);
* the output convolution (9x9, 3 output channels, at full resolution) becomes a stride-2 10x10
  convolution with 12 output channels followed by a pixel shuffle: onnxruntime's blocked (NCHWc) CPU
  kernels pad output channels to 8 or 16, so a 3-channel convolution wastes most of its work. On the
  benchmark CPU (benchmarks/RESULTS_infer.md) that layer drops from ~98 ms to ~30 ms at 512 px and the small
  network from 313 to 257 ms (``rewrite=False`` / ``nst export --no-rewrite`` turns it off).

Metadata (``nst.style``, ``nst.variant``, ``nst.config`` ...) is stored in the model's
``metadata_props``; `infer.stylize.Stylizer.metadata` and ``nst stylize --info`` read it back.
Every file is written to a temporary file beside the target and renamed only once it passed its check.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as _dt
import io
import json
import os
import tempfile
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nst_core.errors import NSTError
from nst_core.image_io import atomic_path
from nst_core.transformer import TransformerNet

#: Opset of the exported graph: the dynamo exporter's native opset range starts at 18, and onnxruntime
#: >= 1.14, TensorRT >= 8.6 and onnxruntime's quantizer all run it.
DEFAULT_OPSET = 18
#: Largest max-abs difference (RGB in [0, 1]) between the fp32 ONNX model and PyTorch that passes the
#: export check: a quarter of one 8-bit level. Typical values are ~1e-6.
DEFAULT_TOLERANCE = 1e-3
FORMAT = "nst-onnx-v1"
INPUT_NAME = "image"
OUTPUT_NAME = "stylized"
DIM_NAMES = ("batch", None, "height", "width")
EXPORTERS = ("auto", "dynamo", "torchscript")
#: Sizes of the random images the export check runs (odd sizes exercise the padding; batch > 1 the batch axis).
CHECK_SHAPES = ((2, 3, 67, 101), (1, 3, 64, 48))
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
CALIBRATION_SIZE = 256
#: Training-config keys kept in the ``nst.config`` summary.
CONFIG_SUMMARY_KEYS = (
    "style",
    "data",
    "variant",
    "image_size",
    "batch_size",
    "max_steps",
    "epochs",
    "lr",
    "content_weight",
    "style_weight",
    "tv_weight",
    "content_layers",
    "style_layers",
    "style_size",
    "vgg_weights",
    "mixed_precision",
    "seed",
)


# ---------------------------------------------------------------------------------------------- graph


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


def _output_layer(layer: nn.Module, rewrite: bool) -> nn.Module:
    """The decoder's last layer, with its 3-channel convolution as a PhaseConv when ``rewrite``."""
    mods = list(layer.children()) if isinstance(layer, nn.Sequential) else []
    if (
        rewrite
        and len(mods) >= 2
        and isinstance(mods[0], nn.ReflectionPad2d)
        and isinstance(mods[1], nn.Conv2d)
        and mods[1].out_channels < 8
        and mods[1].stride == (1, 1)
        and mods[0].padding == (mods[1].kernel_size[0] // 2,) * 4
    ):
        return nn.Sequential(PhaseConv(mods[1]), *mods[2:])
    return layer


class InferenceNet(nn.Module):
    """TransformerNet for export: the same function, traced-size-independent (see the module docstring)."""

    def __init__(self, net: TransformerNet, rewrite: bool = True) -> None:
        super().__init__()
        self.encoder = net.encoder
        self.residuals = net.residuals
        layers = list(net.decoder.children())
        self.decoder = nn.Sequential(*layers[:-1], _output_layer(layers[-1], rewrite))
        self.rewritten = self.decoder[-1] is not layers[-1]

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        h, w = image.shape[-2], image.shape[-1]
        x = F.pad(image, (0, (4 - w % 4) % 4, 0, (4 - h % 4) % 4), mode="reflect")
        y = self.decoder(self.residuals(self.encoder(x)))
        return torch.sigmoid(y[..., :h, :w])


# ---------------------------------------------------------------------------------------------- results


@dataclass
class VariantResult:
    """An fp16 or int8 copy of the exported model and its difference from the fp32 ONNX model."""

    precision: str
    path: Path
    max_abs_error: float
    mean_abs_error: float
    size_bytes: int


@dataclass
class ExportResult:
    """What `export_onnx` wrote and how close it is to PyTorch."""

    path: Path
    max_abs_error: float  # fp32 ONNX (onnxruntime, CPU) vs PyTorch on the check images
    tolerance: float
    opset: int
    exporter: str
    metadata: dict[str, str]
    seconds: float
    size_bytes: int
    fp16: VariantResult | None = None
    int8: VariantResult | None = None
    check_shapes: list[list[int]] = field(default_factory=list)

    @property
    def fp16_path(self) -> Path | None:
        return self.fp16.path if self.fp16 else None

    @property
    def fp16_max_abs_error(self) -> float | None:
        return self.fp16.max_abs_error if self.fp16 else None

    @property
    def int8_path(self) -> Path | None:
        return self.int8.path if self.int8 else None

    @property
    def int8_max_abs_error(self) -> float | None:
        return self.int8.max_abs_error if self.int8 else None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for key in ("path",):
            d[key] = str(d[key])
        for key in ("fp16", "int8"):
            if d[key]:
                d[key]["path"] = str(d[key]["path"])
        return d


# ---------------------------------------------------------------------------------------------- metadata


def package_version() -> str:
    from nst_core import __version__

    return __version__


def _as_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value) if isinstance(value, dict | list | tuple) else str(value)


def config_summary(config: str | Mapping[str, Any] | None) -> dict[str, Any]:
    """The training-config keys worth keeping inside the model (paths reduced to file/folder names)."""
    if config is None:
        return {}
    if isinstance(config, str):
        try:
            config = json.loads(config)
        except json.JSONDecodeError:
            return {"raw": config[:500]}
        if not isinstance(config, Mapping):
            return {"raw": str(config)[:500]}
    out = {}
    for key in CONFIG_SUMMARY_KEYS:
        if key in config and config[key] is not None:
            value = config[key]
            if key in ("style", "data") and isinstance(value, str) and (os.sep in value or "/" in value):
                value = Path(value).name
            out[key] = value
    return out


def build_metadata(
    net: TransformerNet, source_meta: Mapping[str, str], extra: Mapping[str, Any] | None, source: str | None
) -> dict[str, str]:
    """``nst.*`` metadata for the exported model (before the export-time fields are added)."""
    meta: dict[str, str] = {
        "nst.format": FORMAT,
        "nst.version": package_version(),
        "nst.variant": net.variant,
        "nst.width": str(net.spec.width),
        "nst.res_blocks": str(net.spec.res_blocks),
        "nst.input": f"{INPUT_NAME}: float32 (batch, 3, height, width), RGB in [0, 1]",
        "nst.output": f"{OUTPUT_NAME}: float32 (batch, 3, height, width), RGB in [0, 1]",
    }
    if source_meta.get("style"):
        meta["nst.style"] = source_meta["style"]
    if source_meta.get("step"):
        meta["nst.step"] = str(source_meta["step"])
    summary = config_summary(source_meta.get("config"))
    if summary:
        meta["nst.config"] = json.dumps(summary, sort_keys=True)
    if source:
        meta["nst.source"] = source
    for key, value in (extra or {}).items():
        key = str(key)
        meta[key if "." in key else f"nst.{key}"] = _as_str(value)
    return meta


# ---------------------------------------------------------------------------------------------- export steps


def _load_source(source: str | os.PathLike | TransformerNet) -> tuple[TransformerNet, dict[str, str], str | None]:
    if isinstance(source, nn.Module):
        from nst_core.checkpoint_io import unwrap

        net = unwrap(source)
        if not isinstance(net, TransformerNet):
            raise NSTError(f"expected a TransformerNet, got {type(net).__name__}")
        return copy.deepcopy(net).float().cpu().eval(), {}, None
    from nst_core.checkpoint_io import find_network_file, load_network

    file = find_network_file(source)
    net, meta = load_network(file, "cpu")
    return net.float().eval(), meta, f"{file.parent.name}/{file.name}" if file.parent.name else file.name


def _torch_export(module: nn.Module, opset: int, exporter: str) -> tuple[Any, str]:
    """(onnx ModelProto, exporter used). ``auto`` tries dynamo and falls back to the TorchScript exporter
    (the other way round below opset 18)."""
    import onnx

    # batch > 1 and H != W, so nothing specializes to 1 or to H == W; a private generator leaves the caller's
    # random state alone
    example = (torch.rand(2, 3, 72, 104, generator=torch.Generator().manual_seed(0)),)
    errors = []
    if exporter == "auto":  # dynamo's own opsets start at 18; below that the TorchScript exporter is native
        order: tuple[str, ...] = ("dynamo", "torchscript") if opset >= 18 else ("torchscript", "dynamo")
    else:
        order = (exporter,)
    for name in order:
        try:
            with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), torch.no_grad():
                warnings.simplefilter("ignore")
                if name == "dynamo":
                    dyn = torch.export.Dim.DYNAMIC
                    program = torch.onnx.export(
                        module,
                        example,
                        None,
                        input_names=[INPUT_NAME],
                        output_names=[OUTPUT_NAME],
                        opset_version=opset,
                        dynamo=True,
                        external_data=False,
                        optimize=True,
                        dynamic_shapes={"image": {0: dyn, 2: dyn, 3: dyn}},
                    )
                    return program.model_proto, name
                buf = io.BytesIO()
                axes = {0: "batch", 2: "height", 3: "width"}
                torch.onnx.export(
                    module,
                    example,
                    buf,
                    input_names=[INPUT_NAME],
                    output_names=[OUTPUT_NAME],
                    opset_version=min(opset, 20),
                    dynamo=False,
                    dynamic_axes={INPUT_NAME: axes, OUTPUT_NAME: axes},
                )
                return onnx.load_from_string(buf.getvalue()), name
        except Exception as e:  # the exporters raise many types; report them all if every one fails
            first = str(e).strip().splitlines()[0][:300] if str(e).strip() else ""
            errors.append(f"{name}: {type(e).__name__}: {first}")
    raise NSTError("ONNX export failed (" + "; ".join(errors) + ")")


def _name_dims(model: Any) -> None:
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


def _set_metadata(model: Any, metadata: Mapping[str, str]) -> None:
    """Replace the model's metadata_props with ``metadata`` (and set producer / doc string)."""
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


def _session(path: str | os.PathLike) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def _run(session: Any, x: np.ndarray) -> np.ndarray:
    return session.run(None, {session.get_inputs()[0].name: x})[0].astype(np.float32)


def _check_images() -> list[np.ndarray]:
    gen = torch.Generator().manual_seed(0)
    return [torch.rand(*shape, generator=gen).numpy() for shape in CHECK_SHAPES]


def _calibration_images(sources: Iterable[str | os.PathLike] | None) -> list[np.ndarray]:
    """(1, 3, S, S) float32 arrays: centre crops of the given images / folders (or built-in photos)."""
    from PIL import Image

    from nst_core.image_io import open_image, pil_to_tensor

    paths: list[str | os.PathLike] = []
    for src in sources or ():
        p = Path(src)
        if p.is_dir():
            found = sorted(
                q
                for q in p.rglob("*")
                if q.is_file() and q.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
            )
            if not found:
                raise NSTError(f"{p}: no images to calibrate with")
            paths += found[:64]
        else:
            paths.append(src)
    images = []
    if paths:
        for path in paths:
            images.append(open_image(path))
    else:
        for name in DEFAULT_CALIBRATION:
            try:
                images.append(open_image(name))
            except NSTError:
                continue
    arrays = []
    for img in images:
        side = min(img.size)
        left, top = (img.width - side) // 2, (img.height - side) // 2
        img = img.crop((left, top, left + side, top + side)).resize(
            (CALIBRATION_SIZE, CALIBRATION_SIZE), Image.Resampling.LANCZOS
        )
        arrays.append(pil_to_tensor(img).unsqueeze(0).numpy())
    if not arrays:  # no scikit-image photos: smooth random images
        gen = torch.Generator().manual_seed(0)
        for _ in range(4):
            low = torch.rand(1, 3, CALIBRATION_SIZE // 16, CALIBRATION_SIZE // 16, generator=gen)
            arrays.append(F.interpolate(low, size=(CALIBRATION_SIZE,) * 2, mode="bicubic").clamp(0, 1).numpy())
    return arrays


def _variant_path(out: Path, precision: str) -> Path:
    return out.with_name(f"{out.stem}.{precision}{out.suffix}")


def _fp16_model(model: Any) -> Any:
    """float16 weights and activations, float32 input and output (casts at the edges)."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return convert_float_to_float16(copy.deepcopy(model), keep_io_types=True)


def _int8_model(fp32_file: Path, calibration: list[np.ndarray]) -> Any:
    """Static QDQ quantization of the convolutions: int8 per-channel weights, uint8 activations whose ranges
    are calibrated (min/max) on photos. Instance norm, padding and resizing stay in float."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter([{INPUT_NAME: x} for x in calibration])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._it, None)

    with (
        tempfile.TemporaryDirectory(prefix=".nst-int8-", dir=fp32_file.parent) as work,
        warnings.catch_warnings(),
        contextlib.redirect_stdout(io.StringIO()),
    ):
        warnings.simplefilter("ignore")
        pre, raw = Path(work) / "pre.onnx", Path(work) / "int8.onnx"
        quant_pre_process(str(fp32_file), str(pre), skip_symbolic_shape=True)
        quantize_static(
            str(pre),
            str(raw),
            Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            op_types_to_quantize=["Conv"],
        )
        return onnx.load(str(raw))


def _write_variant(
    model: Any,
    precision: str,
    dest: Path,
    metadata: Mapping[str, str],
    probe: Sequence[np.ndarray],
    fp32_out: Sequence[np.ndarray],
) -> VariantResult:
    """Save ``model`` atomically to ``dest`` with its error against the fp32 model measured and stored."""
    import onnx

    meta = {k: v for k, v in metadata.items() if k != "nst.max_abs_error"}
    meta["nst.precision"] = precision
    with atomic_path(dest) as tmp:
        _set_metadata(model, meta)
        onnx.save(model, str(tmp))
        session = _session(tmp)
        diffs = [np.abs(_run(session, x) - ref) for x, ref in zip(probe, fp32_out)]
        max_err, mean_err = float(max(d.max() for d in diffs)), float(np.mean([d.mean() for d in diffs]))
        meta["nst.max_abs_error_vs_fp32"] = f"{max_err:.3g}"
        _set_metadata(model, meta)
        onnx.save(model, str(tmp))
    return VariantResult(precision, dest, max_err, mean_err, dest.stat().st_size)


# ---------------------------------------------------------------------------------------------- API


def export_onnx(
    source: str | os.PathLike | TransformerNet,
    out: str | os.PathLike,
    *,
    opset: int = DEFAULT_OPSET,
    fp16: bool = False,
    int8: bool = False,
    tolerance: float = DEFAULT_TOLERANCE,
    metadata: Mapping[str, Any] | None = None,
    calibration: Iterable[str | os.PathLike] | None = None,
    exporter: str = "auto",
    rewrite: bool = True,
) -> ExportResult:
    """Export ``source`` (a TransformerNet, a network ``.safetensors``, a checkpoint folder or a run folder) to ``out``.

    The fp32 model is run with onnxruntime on random images of odd sizes and compared with PyTorch; a max
    abs difference above ``tolerance`` raises NSTError and nothing is written. ``fp16`` / ``int8`` also write
    ``OUT.fp16.onnx`` / ``OUT.int8.onnx`` (float16 weights and activations with float32 input/output;
    static int8 quantization calibrated on ``calibration`` images, default built-in photos), each with its
    difference from the fp32 model reported, not enforced. ``metadata`` adds or overrides ``nst.*`` keys
    (``{"style": "candy"}`` -> ``nst.style``). ``exporter``: ``auto`` (dynamo, falling back to TorchScript),
    ``dynamo`` or ``torchscript``.
    """
    import onnx

    t0 = time.perf_counter()
    out = Path(out)
    if out.suffix.lower() != ".onnx":
        raise NSTError(f"{out}: the output file must end in .onnx")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise NSTError(f"{out}: output folder {parent} does not exist")
    if out.is_dir():
        raise NSTError(f"{out}: is a directory")
    if exporter not in EXPORTERS:
        raise NSTError(f"unknown exporter {exporter!r}; choose one of {', '.join(EXPORTERS)}")
    if not 13 <= int(opset) <= 23:
        raise NSTError(f"opset {opset} not supported; use 13 to 23 (default {DEFAULT_OPSET})")
    if not tolerance > 0:
        raise NSTError(f"tolerance must be > 0, got {tolerance}")

    net, source_meta, source_name = _load_source(source)
    meta = build_metadata(net, source_meta, metadata, source_name)
    module = InferenceNet(net, rewrite=rewrite).eval()
    model, used = _torch_export(module, int(opset), exporter)
    _name_dims(model)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), int(opset))
    meta.update(
        {
            "nst.precision": "fp32",
            "nst.opset": str(opset),
            "nst.exporter": used,
            "nst.graph": "phase-conv-output" if module.rewritten else "plain",
            "nst.exported": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        }
    )

    inputs = _check_images()
    with torch.no_grad():
        reference = [net(torch.from_numpy(x)).numpy() for x in inputs]
    with atomic_path(out) as tmp:
        _set_metadata(model, meta)
        onnx.save(model, str(tmp))
        try:
            onnx.checker.check_model(str(tmp))
            session = _session(tmp)
        except Exception as e:
            raise NSTError(f"the exported model does not load ({type(e).__name__}: {str(e)[:300]})") from None
        error = float(max(np.abs(_run(session, x) - ref).max() for x, ref in zip(inputs, reference)))
        if not error <= tolerance:
            raise NSTError(
                f"exported model differs from PyTorch by up to {error:.3g} (tolerance {tolerance:g}); nothing written"
            )
        # Store the measured error too; rewriting the file is cheap and keeps it one self-describing file.
        meta["nst.max_abs_error"] = f"{error:.3g}"
        _set_metadata(model, meta)
        onnx.save(model, str(tmp))

    result = ExportResult(
        path=out,
        max_abs_error=error,
        tolerance=tolerance,
        opset=int(opset),
        exporter=used,
        metadata=dict(meta),
        seconds=0.0,
        size_bytes=out.stat().st_size,
        check_shapes=[list(s) for s in CHECK_SHAPES],
    )
    if fp16 or int8:
        calib = _calibration_images(calibration)
        probe = [*inputs, calib[0]]
        fp32_session = _session(out)
        fp32_out = [_run(fp32_session, x) for x in probe]
        if fp16:
            result.fp16 = _write_variant(_fp16_model(model), "fp16", _variant_path(out, "fp16"), meta, probe, fp32_out)
        if int8:
            result.int8 = _write_variant(
                _int8_model(out, calib), "int8", _variant_path(out, "int8"), meta, probe, fp32_out
            )
    result.seconds = time.perf_counter() - t0
    return result
