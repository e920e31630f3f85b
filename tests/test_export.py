"""nst export: ONNX vs PyTorch, metadata, precision variants."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from PIL import Image

from infer.export.cli import EXAMPLES, export_options, summary
from infer.export.exporter import DEFAULT_TOLERANCE, export_onnx
from infer.export.format import config_summary
from infer.export.graph import InferenceNet, PhaseConv
from infer.export.precision import CALIBRATION_SIZE, DEFAULT_CALIBRATION, calibration_images
from infer.stylize.stylizer import Stylizer
from nst_core import __version__
from nst_core.checkpoint_io import save_network
from nst_core.cli import build_parser
from nst_core.errors import NSTError
from nst_core.transformer import TransformerNet
from tests.helpers import ORT_TOLERANCE, leftovers, one_error_line, photo, run_cli, tiny_net

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


def test_fast_variant_exports_and_matches_pytorch_at_any_size(tmp_path: Path) -> None:
    torch.manual_seed(7)
    net = TransformerNet.from_variant("fast").eval()
    for p in net.parameters():  # random weights everywhere (ICNR makes the untrained phases equal)
        p.data.normal_(0, 0.2)
    res = export_onnx(net, tmp_path / "fast.onnx")
    stylizer = Stylizer(res.path)
    assert stylizer.metadata["nst.variant"] == "fast" and stylizer.metadata["nst.layout"] == "shuffle"
    gen = torch.Generator().manual_seed(0)
    for shape in [(2, 3, 64, 64), (1, 3, 37, 53), (1, 3, 5, 6)]:
        x = torch.rand(*shape, generator=gen)
        with torch.no_grad():
            ref = net(x).numpy()
        assert np.abs(stylizer.run_array(x.numpy()) - ref).max() < ORT_TOLERANCE, shape


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
    """A model trained before the config's ``loss:`` section: its flat loss keys come out as one section."""
    run_dir = tmp_path / "run"
    config = {"style": "/data/styles/candy.jpg", "variant": "small", "image_size": 256, "lr": 1e-3, "out": "/x"}
    config |= {"content_weight": 1.0, "style_weight": 0.2, "content_layers": ["relu2_2"], "tv_weight": None}
    save_network(tiny_net(), run_dir / "network.safetensors", {"style": "candy", "config": config, "step": 40})
    out = tmp_path / "candy.onnx"
    argv = ["export", str(run_dir), "-o", str(out), "--exporter", "torchscript", "--json", "--meta", "author=a=b"]
    code, stdout, stderr = run_cli(argv, capsys)
    assert code == 0 and stderr == ""
    result = json.loads(stdout)
    assert result["path"] == str(out) and result["max_abs_error"] <= DEFAULT_TOLERANCE
    meta = Stylizer(out).metadata
    assert meta["nst.style"] == "candy" and meta["nst.step"] == "40" and meta["nst.variant"] == "small"
    assert meta["nst.author"] == "a=b" and meta["nst.source"] == "run/network.safetensors"
    assert json.loads(meta["nst.config"]) == {
        "style": "candy.jpg",
        "variant": "small",
        "image_size": 256,
        "lr": 1e-3,
        "loss": {"content": 1.0, "style": 0.2, "content_layers": ["relu2_2"]},
    }
    argv = ["export", str(run_dir / "network.safetensors"), "-o", str(out), "--exporter", "torchscript"]
    code, stdout, stderr = run_cli([*argv, "--style", "renamed"], capsys)
    assert code == 0 and stdout == ""  # the summary is a message: stderr
    assert "max abs error" in stderr and "renamed" in stderr
    assert Stylizer(out).metadata["nst.style"] == "renamed"
    assert not leftovers(tmp_path)


def test_config_summary_keeps_the_loss_section() -> None:
    loss = {"content": 1.0, "style": 0.5, "tv": 0.0, "content_layers": ["relu2_2"], "style_layers": ["relu1_2"]}
    loss |= {"style_layer_weights": [2.0]}
    config = {"style": "s/candy.jpg", "data": "/d/coco", "loss": loss, "out": "runs/x", "max_steps": None}
    assert config_summary(json.dumps(config)) == {"style": "candy.jpg", "data": "coco", "loss": loss}
    assert config_summary({"tv_weight": 1e-6, "style_layers": ["relu3_3"]}) == {
        "loss": {"tv": 1e-6, "style_layers": ["relu3_3"]}
    }
    assert config_summary(None) == {} and config_summary("[1, 2]") == {"raw": "[1, 2]"}
    assert config_summary("not json") == {"raw": "not json"}


def test_fp16_and_int8_variants_report_their_error(tmp_path: Path) -> None:
    calib = tmp_path / "calib"
    (calib / "sub").mkdir(parents=True)
    photo(calib / "sub", "coffee.png", size=96)
    (calib / "notes.txt").write_text("not an image")
    kw = {"fp16": True, "int8": True, "exporter": "torchscript", "calibration": [calib]}
    res = export_onnx(tiny_net(), tmp_path / "m.onnx", **kw)
    assert res.fp16.path == tmp_path / "m.fp16.onnx" and res.int8.path == tmp_path / "m.int8.onnx"
    assert res.fp16.max_abs_error < 5e-3  # fp16 activations: ~1e-3
    assert res.int8 is not None and res.int8.mean_abs_error < 0.05  # 8-bit activations through instance norms
    assert res.calibration_skipped == [str(calib / "notes.txt")]
    for path, precision in [(res.path, "fp32"), (res.fp16.path, "fp16"), (res.int8.path, "int8")]:
        stylizer = Stylizer(path)
        assert stylizer.metadata["nst.precision"] == precision
        assert stylizer.stylize(torch.rand(3, 33, 41)).size == (41, 33)
    assert float(Stylizer(res.int8.path).metadata["nst.max_abs_error_vs_fp32"]) == pytest.approx(
        res.int8.max_abs_error, rel=1e-2
    )
    assert res.int8.size_bytes < res.size_bytes / 2
    text = summary(res)  # what `nst export --fp16 --int8` prints
    assert "fp16 " in text and "int8 " in text and "vs fp32" in text and "skipped 1 non-image file(s)" in text
    assert json.loads(json.dumps(res.to_dict()))["int8"]["path"] == str(res.int8.path)
    assert not leftovers(tmp_path) and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


# ---------------------------------------------------------------------------------------------- graph rewrite


def test_inference_net_matches_transformer_net_at_any_size() -> None:
    net = tiny_net()
    rewritten, plain = InferenceNet(net).eval(), InferenceNet(net, rewrite=False).eval()
    assert rewritten.rewritten and not plain.rewritten
    assert isinstance(rewritten.decoder[-1][0], PhaseConv)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for shape in [(1, 3, 32, 48), (2, 3, 37, 21)]:  # a multiple of 4 (no padding) and odd sizes
            x = torch.rand(*shape, generator=gen)
            ref = net(x)
            assert (rewritten(x) - ref).abs().max() < 1e-5 and (plain(x) - ref).abs().max() < 1e-6


def test_phase_conv_rejects_what_it_cannot_rewrite() -> None:
    with pytest.raises(ValueError):
        PhaseConv(torch.nn.Conv2d(8, 3, 4))  # even kernel
    with pytest.raises(ValueError):
        PhaseConv(torch.nn.Conv2d(8, 3, 3, stride=2))


# ---------------------------------------------------------------------------------------------- calibration


def test_calibration_images_from_folders_skip_non_images(tmp_path: Path) -> None:
    photo(tmp_path, "astronaut.png", size=300)
    photo(tmp_path, "rocket.jpg", size=80, fmt="jpg")
    (tmp_path / "README.md").write_text("x")
    (tmp_path / ".hidden.png").write_bytes(b"")  # hidden: not even looked at
    calib = calibration_images([tmp_path])
    assert len(calib.arrays) == 2 and calib.skipped == [tmp_path / "README.md"]
    for arr in calib.arrays:
        assert arr.shape == (1, 3, CALIBRATION_SIZE, CALIBRATION_SIZE) and arr.dtype == np.float32
        assert arr.min() >= 0 and arr.max() <= 1
    single = calibration_images([tmp_path / "rocket.jpg"])  # a file is taken as given
    assert len(single.arrays) == 1 and single.skipped == []
    assert 1 <= len(calibration_images(None).arrays) <= len(DEFAULT_CALIBRATION)


def test_calibration_errors_come_before_the_export(tmp_path: Path, capsys) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    with pytest.raises(NSTError, match="no images to calibrate with"):
        calibration_images([tmp_path / "empty"])
    out = tmp_path / "m.onnx"
    code, _, err = run_cli(["export", "nowhere/", "-o", str(out), "--int8", "--calibration", "missing.jpg"], capsys)
    assert code == 2
    one_error_line(err, "missing.jpg")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]


# ---------------------------------------------------------------------------------------------- command line


@pytest.mark.parametrize(
    ("output", "needle"),
    [
        ("missing/m.onnx", "output folder"),
        ("m.png", "must end in .onnx"),
        ("folder.onnx", "is a folder"),
    ],
)
def test_bad_output_is_one_line_and_leaves_nothing(tmp_path: Path, capsys, output: str, needle: str) -> None:
    (tmp_path / "folder.onnx").mkdir()
    save_network(tiny_net(), tmp_path / "net.safetensors")
    before = sorted(tmp_path.rglob("*"))
    code, out, err = run_cli(["export", str(tmp_path / "net.safetensors"), "-o", str(tmp_path / output)], capsys)
    assert code == 2 and out == ""
    one_error_line(err, needle)
    assert sorted(tmp_path.rglob("*")) == before


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--opset", "12"], "--opset"),
        (["--opset", "24"], "[13, 23]"),
        (["--opset", "x"], "integer"),
        (["--meta", "novalue"], "KEY=VALUE"),
        (["--tolerance", "0"], "> 0"),
    ],
)
def test_bad_values_are_refused_where_they_are_typed(tmp_path: Path, capsys, args: list[str], needle: str) -> None:
    with pytest.raises(SystemExit) as exc:
        run_cli(["export", str(tmp_path), "-o", str(tmp_path / "m.onnx"), *args], capsys)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    one_error_line(err, needle)


def test_every_flag_reaches_export_onnx() -> None:
    argv = ["export", "run", "-o", "m.onnx", "--opset", "17", "--fp16", "--int8", "--calibration", "a", "--calibration"]
    argv += ["b", "--tolerance", "0.01", "--style", "candy", "--meta", "k=v", "--exporter", "dynamo", "--no-rewrite"]
    options = export_options(build_parser("export").parse_args(argv))
    assert options == {
        "opset": 17,
        "fp16": True,
        "int8": True,
        "tolerance": 0.01,
        "calibration": ["a", "b"],
        "exporter": "dynamo",
        "rewrite": False,
        "metadata": {"k": "v", "style": "candy"},
    }
    keywords = inspect.signature(export_onnx).parameters
    assert set(options) == {name for name, p in keywords.items() if p.kind is p.KEYWORD_ONLY}


def test_missing_checkpoint_is_one_line(tmp_path: Path, capsys) -> None:
    code, _, err = run_cli(["export", str(tmp_path / "nope"), "-o", str(tmp_path / "m.onnx")], capsys)
    assert code == 2
    one_error_line(err, "no such file or folder")
    assert list(tmp_path.iterdir()) == []


def test_help_ends_with_the_examples(capsys) -> None:
    with pytest.raises(SystemExit):
        run_cli(["export", "--help"], capsys)
    text = capsys.readouterr().out
    assert text.rstrip().endswith(EXAMPLES[-1])
    assert "(default: 18)" in text and "in [13, 23]" in text and "(default: None)" not in text


def test_export_cli_imports_neither_torch_nor_onnxruntime() -> None:
    code = "import sys, infer.export.cli; print(sorted({'torch', 'onnx', 'onnxruntime'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_int8_with_the_default_exporter_and_a_relative_path(tmp_path: Path, monkeypatch) -> None:
    # quant_pre_process given the in-memory dynamo model re-saved it with external data it could not
    # read back: `nst export runs/x -o m.onnx --int8` was a traceback (the tests used TorchScript only)
    monkeypatch.chdir(tmp_path)
    res = export_onnx(tiny_net(), Path("m.onnx"), int8=True)
    assert res.exporter == "dynamo" and res.int8 is not None and res.int8.mean_abs_error < 0.05
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.int8.onnx", "m.onnx"]


@pytest.mark.parametrize("variant", ["standard", "small", "fast"])
def test_an_exported_network_reads_back_as_the_same_weights(variant: str, tmp_path: Path) -> None:
    """`load_onnx_network` (what `nst train --init-from model.onnx` starts from) undoes the export's output-layer
    rewrite (PhaseConv) exactly: every weight comes back, and the network computes what the ONNX file does."""
    from nst_core.checkpoint_io import load_onnx_network

    torch.manual_seed(0)
    net = TransformerNet.from_variant(variant).eval()
    with torch.no_grad():  # as after training: no two tensors alike (the exporter shares identical constants)
        for p in net.parameters():
            p.add_(0.01 * torch.randn_like(p))
    path = export_onnx(net, tmp_path / f"{variant}.onnx").path
    back, meta = load_onnx_network(path)
    assert back.variant == variant and meta["nst.variant"] == variant
    original, restored = net.state_dict(), back.state_dict()
    assert original.keys() == restored.keys()
    assert all(torch.equal(original[k], restored[k]) for k in original)
    x = torch.rand(1, 3, 40, 52)
    with torch.no_grad():
        assert np.abs(back(x).numpy() - Stylizer(path).run_array(x.numpy())).max() < 1e-5


def test_a_file_that_holds_no_network_is_one_line(tmp_path: Path) -> None:
    from nst_core.checkpoint_io import load_onnx_network
    from nst_core.errors import NSTError
    from tests.test_stylize import identity_model

    with pytest.raises(NSTError, match="not a network exported by `nst export`"):
        load_onnx_network(identity_model(tmp_path / "identity.onnx"))
    (tmp_path / "junk.onnx").write_bytes(b"not onnx")
    with pytest.raises(NSTError, match=r"junk\.onnx: cannot read it as ONNX"):
        load_onnx_network(tmp_path / "junk.onnx")
