"""Export a trained TransformerNet to ONNX, checked against PyTorch; optional fp16 and int8 copies.

`export_onnx` is the one way to a file (``nst export``, the benchmarks); `build_onnx` does steps 1-4 in
memory (``nst stylize`` given a run folder):

1. load the network (a module, a ``.safetensors``, a checkpoint or run folder: `nst_core.checkpoint_io`);
2. rewrite it for inference and trace it with dynamic batch/height/width (`infer.export.graph`);
3. describe it in ``nst.*`` metadata (`infer.export.format`);
4. run it with onnxruntime on random images of odd sizes and compare with PyTorch: above ``tolerance``
   nothing is written;
5. on request, make fp16 / int8 copies, each measured against the fp32 model (`infer.export.precision`);
6. write every file to a temporary beside its target, and rename them all only once all are written.

`nst export --help` reads its defaults from `infer.export.format`, which imports neither torch nor onnx;
this module imports both, and onnxruntime's quantizer (`infer.export.precision`) only for fp16 / int8.

Each value is checked once, where it enters: the output paths here, before any work (every caller
writes through this function); the network path by `checkpoint_io.find_network_file`, which resolves
it; the exporter by `infer.export.graph.to_onnx`, which picks it; calibration paths by `infer.export.precision`,
before the export; opset and tolerance by `nst export`'s argument types, where a person types them.
A Python caller gets the opset it asks for as far as the exporter goes (``ExportResult.opset`` and
``nst.opset`` record the one written) and, with a tolerance <= 0, an export that never passes.
"""

from __future__ import annotations

import copy
import datetime as _dt
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

from infer.export.format import DEFAULT_OPSET, DEFAULT_TOLERANCE, EXPORTERS, build_metadata, set_metadata
from infer.export.graph import InferenceNet, graph_opset, to_onnx
from nst_core.checkpoint_io import find_network_file, load_network, unwrap
from nst_core.errors import NSTError
from nst_core.files import atomic_path, check_output_folder
from nst_core.transformer import TransformerNet

if TYPE_CHECKING:
    from infer.export.precision import Calibration

__all__ = ["DEFAULT_OPSET", "DEFAULT_TOLERANCE", "EXPORTERS", "ExportResult", "VariantResult", "export_onnx"]

#: Sizes of the random images the export check runs (odd sizes exercise the padding; batch > 1 the batch axis).
CHECK_SHAPES = ((2, 3, 67, 101), (1, 3, 64, 48))


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
    calibration_skipped: list[str] = field(default_factory=list)  # non-image files in calibration folders

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["path"] = str(d["path"])
        for key in ("fp16", "int8"):
            if d[key]:
                d[key]["path"] = str(d[key]["path"])
        return d


@dataclass
class ExportedModel:
    """An exported model that passed the check against PyTorch, in memory (`build_onnx`)."""

    model: Any  # the onnx ModelProto, metadata set
    data: bytes  # its serialized form, what is written or handed to onnxruntime
    metadata: dict[str, str]
    max_abs_error: float
    opset: int
    exporter: str
    inputs: list[np.ndarray]  # the random check images


# ---------------------------------------------------------------------------------------------- steps


def check_output(out: str | os.PathLike) -> Path:
    """``out`` as a Path: an ``.onnx`` file name in an existing, writable folder (NSTError otherwise)."""
    out = Path(out)
    if out.suffix.lower() != ".onnx" and not out.is_dir():  # a folder is named as such by check_output_folder
        raise NSTError(f"{out}: the output file must end in .onnx")
    return check_output_folder(out)


def _load_source(source: str | os.PathLike | TransformerNet) -> tuple[TransformerNet, dict[str, str], str | None]:
    """(float32 CPU network in eval mode, its saved metadata, ``folder/file`` name to record as the source)."""
    if isinstance(source, nn.Module):
        net = unwrap(source)
        if not isinstance(net, TransformerNet):
            raise NSTError(f"expected a TransformerNet, got {type(net).__name__}")
        return copy.deepcopy(net).float().cpu().eval(), {}, None
    file = find_network_file(source)
    net, meta = load_network(file, "cpu")
    return net.float().eval(), meta, f"{file.parent.name}/{file.name}" if file.parent.name else file.name


def _check_inputs() -> list[np.ndarray]:
    gen = torch.Generator().manual_seed(0)
    return [torch.rand(*shape, generator=gen).numpy() for shape in CHECK_SHAPES]


def check_blend(styles: int) -> np.ndarray | None:
    """The style weights the check runs a network of several styles with: a blend of all of them, each weight
    different (1, 2, ... normalised), so that a row traced away or swapped shows; None for one style."""
    if styles == 1:
        return None
    weights = np.arange(1, styles + 1, dtype=np.float32)
    return weights / weights.sum()


def _pytorch_outputs(net: TransformerNet, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    blend = check_blend(net.styles)
    style = torch.from_numpy(blend) if blend is not None else None
    with torch.no_grad():
        return [net(torch.from_numpy(x), style).numpy() for x in inputs]


def _export_fields(opset: int, used: str, rewritten: bool) -> dict[str, str]:
    """The metadata only known once the graph exists."""
    return {
        "nst.precision": "fp32",
        "nst.opset": str(opset),
        "nst.exporter": used,
        "nst.graph": "phase-conv-output" if rewritten else "plain",
        "nst.exported": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
    }


def _cpu_session(model: bytes) -> Any:
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    return ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])


def _outputs(session: Any, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The model's outputs for ``inputs``; a network of several styles runs the check blend (`check_blend`)."""
    image, *style = session.get_inputs()
    extra = {style[0].name: check_blend(style[0].shape[0])} if style else {}
    return [session.run(None, {image.name: x, **extra})[0].astype(np.float32) for x in inputs]


def _abs_errors(session: Any, inputs: Sequence[np.ndarray], references: Sequence[np.ndarray]) -> list[np.ndarray]:
    """|ONNX output - reference| for each input."""
    return [np.abs(y - ref) for y, ref in zip(_outputs(session, inputs), references)]


def _serialized(model: Any, metadata: Mapping[str, str]) -> bytes:
    set_metadata(model, metadata)
    return model.SerializeToString()


def _checked_fp32(
    model: Any, meta: dict[str, str], inputs: Sequence[np.ndarray], reference: Sequence[np.ndarray], tol: float
) -> tuple[bytes, float]:
    """The fp32 model's bytes if it loads and matches PyTorch within ``tol`` (NSTError otherwise); its max abs error.

    Checked in memory: nothing touches the disk until every check passed.
    """
    data = _serialized(model, meta)
    try:
        onnx.checker.check_model(data)
        session = _cpu_session(data)
    except Exception as e:
        raise NSTError(f"the exported model does not load ({type(e).__name__}: {str(e)[:300]})") from None
    error = float(max(d.max() for d in _abs_errors(session, inputs, reference)))
    if not error <= tol:
        raise NSTError(f"exported model differs from PyTorch by up to {error:.3g} (tolerance {tol:g}); nothing written")
    meta["nst.max_abs_error"] = f"{error:.3g}"  # stored in the model: one self-describing file
    return _serialized(model, meta), error


def _measured_variant(
    model: Any,
    precision: str,
    metadata: Mapping[str, str],
    probe: Sequence[np.ndarray],
    fp32_out: Sequence[np.ndarray],
) -> tuple[bytes, float, float]:
    """(bytes of ``model`` with its error against the fp32 model stored, max abs error, mean abs error)."""
    meta = {k: v for k, v in metadata.items() if k != "nst.max_abs_error"}
    meta["nst.precision"] = precision
    diffs = _abs_errors(_cpu_session(_serialized(model, meta)), probe, fp32_out)
    max_err, mean_err = float(max(d.max() for d in diffs)), float(np.mean([d.mean() for d in diffs]))
    meta["nst.max_abs_error_vs_fp32"] = f"{max_err:.3g}"
    return _serialized(model, meta), max_err, mean_err


def _write(stack: ExitStack, path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary beside ``path``, renamed when ``stack`` closes without an error."""
    stack.enter_context(atomic_path(path)).write_bytes(data)


def _add_variants(
    stack: ExitStack, result: ExportResult, built: ExportedModel, calibration: Calibration, precisions: Sequence[str]
) -> None:
    """The fp16 / int8 copies, measured on the check images plus one photo against the fp32 model."""
    from infer.export.precision import fp16_model, int8_model, variant_path

    probe = [*built.inputs, calibration.arrays[0]]
    fp32_out = _outputs(_cpu_session(built.data), probe)
    for precision in precisions:
        dest = variant_path(result.path, precision)
        variant = fp16_model(built.model) if precision == "fp16" else int8_model(built.model, calibration, dest)
        data, max_err, mean_err = _measured_variant(variant, precision, result.metadata, probe, fp32_out)
        _write(stack, dest, data)
        setattr(result, precision, VariantResult(precision, dest, max_err, mean_err, len(data)))
    result.calibration_skipped = [str(p) for p in calibration.skipped]


# ---------------------------------------------------------------------------------------------- API


def build_onnx(
    source: str | os.PathLike | TransformerNet,
    *,
    opset: int = DEFAULT_OPSET,
    tolerance: float = DEFAULT_TOLERANCE,
    metadata: Mapping[str, Any] | None = None,
    exporter: str = "auto",
    rewrite: bool = True,
) -> ExportedModel:
    """Steps 1 to 4 without a file: ``source`` exported, described and checked against PyTorch, in memory.

    `nst stylize` runs a trained network through this (no temporary file a kill could leave behind).
    """
    net, source_meta, source_name = _load_source(source)
    module = InferenceNet(net, rewrite=rewrite).eval()
    model, used = to_onnx(module, int(opset), exporter)
    opset = graph_opset(model, int(opset))
    meta = build_metadata(net, source_meta, metadata, source_name) | _export_fields(opset, used, module.rewritten)
    inputs = _check_inputs()
    data, error = _checked_fp32(model, meta, inputs, _pytorch_outputs(net, inputs), tolerance)
    return ExportedModel(model, data, meta, error, opset, used, inputs)


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
    ``OUT.fp16.onnx`` / ``OUT.int8.onnx`` (see `infer.export.precision`; int8 calibrated on ``calibration`` images
    and folders, default built-in photos), each with its difference from the fp32 model reported, not
    enforced. ``metadata`` adds or overrides ``nst.*`` keys (``{"style": "candy"}`` -> ``nst.style``).
    ``exporter``: ``auto`` (dynamo, falling back to TorchScript), ``dynamo`` or ``torchscript``.
    The files are renamed into place together at the end: an error (a full disk ...) leaves none of them.
    """
    t0 = time.perf_counter()
    out = check_output(out)
    precisions = [name for name, wanted in (("fp16", fp16), ("int8", int8)) if wanted]
    calib = None
    if precisions:  # onnxruntime's quantizer loads only when needed; a bad --calibration fails before the export
        from infer.export.precision import calibration_images, variant_path

        for precision in precisions:
            check_output_folder(variant_path(out, precision))
        calib = calibration_images(calibration)
    built = build_onnx(source, opset=opset, tolerance=tolerance, metadata=metadata, exporter=exporter, rewrite=rewrite)
    result = ExportResult(
        path=out,
        max_abs_error=built.max_abs_error,
        tolerance=tolerance,
        opset=built.opset,
        exporter=built.exporter,
        metadata=dict(built.metadata),
        seconds=0.0,
        size_bytes=len(built.data),
        check_shapes=[list(s) for s in CHECK_SHAPES],
    )
    with ExitStack() as stack:  # all files renamed into place on a clean exit, none on an error
        _write(stack, out, built.data)
        if calib is not None:
            _add_variants(stack, result, built, calib, precisions)
    result.seconds = time.perf_counter() - t0
    return result
