"""nst export: ONNX vs PyTorch, metadata, precision variants."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import torch
from PIL import Image

from infer.export import DEFAULT_TOLERANCE, export_onnx
from infer.stylize import Stylizer
from nst_core import __version__
from nst_core.checkpoint_io import save_network
from tests.conftest import ORT_TOLERANCE, leftovers, run_cli, tiny_net

# ---------------------------------------------------------------------------------------------- export


def test_onnxruntime_matches_pytorch_at_any_size(tiny_onnx: Path) -> None:
    net, stylizer = tiny_net(), Stylizer(tiny_onnx)
    assert stylizer.provider == "CPUExecutionProvider"
    gen = torch.Generator().manual_seed(0)
    for shape in [(2, 3, 64, 64), (1, 3, 37, 53), (1, 3, 96, 33), (1, 3, 5, 6)]:
        x = torch.rand(*shape, generator=gen)
        with torch.no_grad():
            ref = net(x).numpy()
        y = stylizer.run_array(x.numpy())
        assert y.shape == ref.shape
        assert np.abs(y - ref).max() < ORT_TOLERANCE, shape
    # dynamic axes, named
    model = onnx.load(str(tiny_onnx))
    dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 3, "height", "width"]


def test_tiny_images_are_padded_not_rejected(tiny_onnx: Path) -> None:
    out = Stylizer(tiny_onnx).stylize(Image.new("RGB", (3, 2), (200, 40, 40)))
    assert out.size == (3, 2)


def test_metadata_round_trip(tiny_onnx: Path, capsys) -> None:
    stylizer = Stylizer(tiny_onnx)
    meta = stylizer.metadata
    assert meta["nst.style"] == "tiny-test"
    assert meta["nst.variant"] == "small" and meta["nst.width"] == "16" and meta["nst.res_blocks"] == "3"
    assert meta["nst.version"] == __version__ and meta["nst.format"] == "nst-onnx-v1"
    assert float(meta["nst.max_abs_error"]) < ORT_TOLERANCE
    code, out, _ = run_cli(["stylize", "--info", "--model", str(tiny_onnx)], capsys)
    assert code == 0 and "tiny-test" in out and "nst.variant" in out
    code, out, _ = run_cli(["stylize", "--info", "--json", "--model", str(tiny_onnx)], capsys)
    info = json.loads(out)
    assert info["metadata"]["nst.style"] == "tiny-test" and info["provider"] == "CPUExecutionProvider"
    assert info["inputs"][0]["shape"] == ["batch", 3, "height", "width"]


def test_export_cli_from_checkpoint_keeps_training_metadata(tmp_path: Path, capsys) -> None:
    run_dir = tmp_path / "run"
    config = {"style": "/data/styles/candy.jpg", "variant": "small", "image_size": 256, "lr": 1e-3, "out": "/x"}
    save_network(tiny_net(), run_dir / "network.safetensors", {"style": "candy", "config": config, "step": 40})
    out = tmp_path / "candy.onnx"
    code, stdout, _ = run_cli(["export", str(run_dir), "-o", str(out), "--exporter", "torchscript", "--json"], capsys)
    assert code == 0
    summary = json.loads(stdout)
    assert summary["path"] == str(out) and summary["max_abs_error"] <= DEFAULT_TOLERANCE
    meta = Stylizer(out).metadata
    assert meta["nst.style"] == "candy" and meta["nst.step"] == "40" and meta["nst.variant"] == "small"
    assert json.loads(meta["nst.config"]) == {"style": "candy.jpg", "variant": "small", "image_size": 256, "lr": 1e-3}
    code, stdout, _ = run_cli(
        [
            "export",
            str(run_dir / "network.safetensors"),
            "-o",
            str(out),
            "--exporter",
            "torchscript",
            "--style",
            "renamed",
        ],
        capsys,
    )
    assert code == 0 and "max abs error" in stdout and "renamed" in stdout
    assert Stylizer(out).metadata["nst.style"] == "renamed"
    assert not leftovers(tmp_path)


def test_fp16_and_int8_variants_report_their_error(tmp_path: Path) -> None:
    res = export_onnx(tiny_net(), tmp_path / "m.onnx", fp16=True, int8=True, exporter="torchscript")
    assert res.fp16_path == tmp_path / "m.fp16.onnx" and res.int8_path == tmp_path / "m.int8.onnx"
    assert res.fp16_max_abs_error < 5e-3  # fp16 activations: ~1e-3
    assert res.int8 is not None and res.int8.mean_abs_error < 0.05  # 8-bit activations through instance norms
    for path, precision in [(res.path, "fp32"), (res.fp16_path, "fp16"), (res.int8_path, "int8")]:
        stylizer = Stylizer(path)
        assert stylizer.metadata["nst.precision"] == precision
        assert stylizer.stylize(torch.rand(3, 33, 41)).size == (41, 33)
    assert res.int8.size_bytes < res.size_bytes / 2
    assert not leftovers(tmp_path)


# ---------------------------------------------------------------------------------------------- stylize
