"""ONNX export and onnxruntime stylization: matches PyTorch, keeps its metadata, handles folders, odd sizes,
tiles, stdin/stdout and video, and fails on bad input with one line and no half-written file."""

from __future__ import annotations

import io
import itertools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper
from PIL import Image

from infer.export import DEFAULT_TOLERANCE, export_onnx
from infer.stylize import Stylizer, blend_weights, tile_starts
from nst_core import __version__
from nst_core.checkpoint_io import save_network
from nst_core.cli import main
from nst_core.color import rgb_to_ycbcr
from nst_core.image_io import load_image, pil_to_tensor
from nst_core.transformer import TransformerNet
from tests.conftest import skimage_photo

#: onnxruntime (CPU, fp32) vs PyTorch eager on the same network: observed ~1e-6; anything near one
#: 8-bit level (4e-3) would be a real export bug.
ORT_TOLERANCE = 1e-4


def tiny_net() -> TransformerNet:
    """The network the `tiny_onnx` fixture exports (same seed, same variant)."""
    torch.manual_seed(1234)
    return TransformerNet.from_variant("small").eval()


def photo(tmp_path: Path, name: str = "astronaut.png", size: int = 64, fmt: str = "png") -> Path:
    img = Image.open(skimage_photo(name)).convert("RGB")
    img.thumbnail((size, size))
    out = tmp_path / f"{Path(name).stem}.{fmt}"
    img.save(out)
    return out


def leftovers(folder: Path) -> list[Path]:
    """Temporary files an interrupted atomic write would leave."""
    return [p for p in folder.rglob("*") if ".tmp" in p.name]


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


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


def test_stylize_file_json_and_size(tiny_onnx: Path, tmp_path: Path, capsys) -> None:
    src = photo(tmp_path, size=64)
    out = tmp_path / "out.jpg"
    code, stdout, _ = run_cli(["stylize", str(src), "--model", str(tiny_onnx), "-o", str(out), "--json"], capsys)
    assert code == 0
    summary = json.loads(stdout)
    assert summary["outputs"] == [str(out)] and len(summary["ms"]) == 1 and summary["ms"][0] > 0
    assert summary["provider"] == "CPUExecutionProvider" and summary["model"] == str(tiny_onnx)
    assert Image.open(out).size == Image.open(src).size and Image.open(out).format == "JPEG"
    code, _, _ = run_cli(["stylize", str(src), "--model", str(tiny_onnx), "-o", str(out), "--size", "40", "-q"], capsys)
    assert code == 0 and max(Image.open(out).size) == 40


def test_folder_with_one_corrupt_image(tiny_onnx: Path, tmp_path: Path, capsys) -> None:
    src = tmp_path / "photos"
    (src / "sub").mkdir(parents=True)
    photo(src, "astronaut.png", 48)
    photo(src / "sub", "chelsea.png", 40, fmt="jpg")
    (src / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    (src / "notes.txt").write_text("ignored")
    out = tmp_path / "styled"
    code, stdout, stderr = run_cli(["stylize", str(src), "--model", str(tiny_onnx), "-o", str(out), "--json"], capsys)
    assert code != 0
    summary = json.loads(stdout)
    written = sorted(Path(p).relative_to(out).as_posix() for p in summary["outputs"])
    assert written == ["astronaut.png", "sub/chelsea.jpg"]
    assert [e["input"] for e in summary["errors"]] == [str(src / "broken.jpg")]
    assert "broken.jpg" in stderr and "1 of 3 inputs failed" in stderr
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "astronaut.png",
        "sub/chelsea.jpg",
    ]
    assert Image.open(out / "astronaut.png").size == Image.open(src / "astronaut.png").size


def test_stdin_to_stdout(tiny_onnx: Path, tmp_path: Path, monkeypatch, capsysbinary) -> None:
    src = photo(tmp_path, size=40)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(src.read_bytes())))
    code = main(["stylize", "-", "--model", str(tiny_onnx), "-o", "-", "-q"])
    assert code == 0
    img = Image.open(io.BytesIO(capsysbinary.readouterr().out))
    assert img.format == "PNG" and img.size == Image.open(src).size


def test_preserve_color_keeps_the_input_chroma(tiny_onnx: Path) -> None:
    stylizer = Stylizer(tiny_onnx)
    content = load_image(skimage_photo("chelsea.png"), 64)
    kept = pil_to_tensor(stylizer.stylize(content, preserve_color=True))
    plain = pil_to_tensor(stylizer.stylize(content))
    chroma = lambda t: rgb_to_ycbcr(t)[1:]  # noqa: E731
    kept_diff = (chroma(kept) - chroma(content)).abs().mean()
    plain_diff = (chroma(plain) - chroma(content)).abs().mean()
    assert kept_diff < 0.01 and kept_diff < plain_diff / 3
    # the luminance is the stylized one, not the input's
    assert (rgb_to_ycbcr(kept)[0] - rgb_to_ycbcr(plain)[0]).abs().mean() < 0.01


def test_strength_blends_with_the_input(tiny_onnx: Path) -> None:
    stylizer = Stylizer(tiny_onnx)
    src = Image.open(skimage_photo("coffee.png")).convert("RGB").resize((48, 32))
    same = np.asarray(stylizer.stylize(src, strength=0.0), dtype=np.int16)
    assert np.abs(same - np.asarray(src, dtype=np.int16)).max() <= 1  # uint8 rounding at most
    full = pil_to_tensor(stylizer.stylize(src))
    half = pil_to_tensor(stylizer.stylize(src, strength=0.5))
    expected = 0.5 * full + 0.5 * pil_to_tensor(src)
    assert (half - expected).abs().max() <= 1.5 / 255


def test_tiling_close_to_one_pass(tiny_onnx: Path) -> None:
    stylizer = Stylizer(tiny_onnx)
    content = load_image(skimage_photo("astronaut.png"), 96)
    one = stylizer.stylize_tensor(content, tile=0)
    tiled = stylizer.stylize_tensor(content, tile=64)
    assert stylizer.count_tiles(96, 96, tile=64) == 4 and stylizer.count_tiles(96, 96) == 1
    # Each tile's instance norms see only that tile, so tiles differ from one pass. With this untrained
    # network (whose instance norms amplify every statistic) the mean difference is ~0.04, against ~0.29
    # between the input and its stylization; seams are blended, not cut.
    diff = (tiled - one).abs()
    assert diff.mean() < 0.06
    assert diff.mean() < 0.25 * (one - content).abs().mean()


def identity_model(path: Path) -> Path:
    """An ONNX model whose output is its (N, 3, H, W) input."""
    x = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, "H", "W"])
    y = helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", 3, "H", "W"])
    graph = helper.make_graph([helper.make_node("Identity", ["image"], ["out"])], "identity", [x], [y])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def test_tile_blending_is_exact_for_an_identity_model(tmp_path: Path) -> None:
    stylizer = Stylizer(identity_model(tmp_path / "identity.onnx"))
    x = torch.rand(1, 3, 150, 97).numpy()
    for tile, overlap in [(64, 8), (40, 16), (33, 16)]:
        out = stylizer.run_tiled(x, tile, overlap)
        assert np.abs(out - x).max() < 1e-5, (tile, overlap)
    for length, tile, overlap in [(1000, 256, 32), (257, 256, 32), (100, 256, 32)]:
        starts = tile_starts(length, min(tile, length), overlap)
        size = min(tile, length)
        assert starts[0] == 0 and starts[-1] + size == length
        assert all(b - a <= size - overlap for a, b in itertools.pairwise(starts))
        total = np.zeros(length)
        for s, w in zip(starts, blend_weights(starts, size, length)):
            total[s : s + size] += w
        assert np.allclose(total, 1.0)


@pytest.mark.skipif(
    not all(__import__("importlib").util.find_spec(m) for m in ("imageio", "imageio_ffmpeg")),
    reason="video extra (imageio, imageio-ffmpeg) not installed",
)
def test_video_frame_by_frame_with_smoothing(tiny_onnx: Path, tmp_path: Path, capsys) -> None:
    import imageio.v2 as iio

    clip = tmp_path / "clip.mp4"
    writer = iio.get_writer(str(clip), fps=8, macro_block_size=1, ffmpeg_log_level="error")
    for i in range(6):
        frame = np.full((32, 48, 3), 90, np.uint8)
        frame[8:24, 4 * i : 4 * i + 12] = 250
        writer.append_data(frame)
    writer.close()
    out = tmp_path / "styled.mp4"
    code, stdout, _ = run_cli(
        ["stylize", str(clip), "--model", str(tiny_onnx), "-o", str(out), "--smooth", "0.6", "--json"], capsys
    )
    assert code == 0
    entry = json.loads(stdout)["images"][0]
    assert entry["frames"] == 6 and entry["size"] == [48, 32] and entry["fps"] == pytest.approx(8)
    reader = iio.get_reader(str(out))
    assert reader.count_frames() == 6
    reader.close()
    assert not leftovers(tmp_path)


def test_video_without_the_extra_says_how_to_install(tiny_onnx: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"\x00" * 64)
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)  # import now raises ImportError
    code, _, err = run_cli(["stylize", str(clip), "--model", str(tiny_onnx), "-o", str(tmp_path / "o.mp4")], capsys)
    assert code == 2 and "nst-toolkit[video]" in err and len(err.strip().splitlines()) == 1


# ---------------------------------------------------------------------------------------------- bad input


def one_error_line(err: str, *needles: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("nst "), err
    for needle in needles:
        assert needle in lines[0], (needle, err)


def test_not_an_onnx_file(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "model.onnx"
    bad.write_text("this is not a protobuf")
    src, out = photo(tmp_path), tmp_path / "out.png"
    code, _, err = run_cli(["stylize", str(src), "--model", str(bad), "-o", str(out)], capsys)
    assert code == 2 and not out.exists()
    one_error_line(err, "model.onnx", "not an ONNX model")


def test_onnx_model_whose_input_is_not_an_image(tmp_path: Path, capsys) -> None:
    x = helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", 10])
    y = helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", 10])
    graph = helper.make_graph([helper.make_node("Relu", ["features"], ["out"])], "mlp", [x], [y])
    model = tmp_path / "mlp.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(model))
    src, out = photo(tmp_path), tmp_path / "out.png"
    code, _, err = run_cli(["stylize", str(src), "--model", str(model), "-o", str(out)], capsys)
    assert code == 2 and not out.exists()
    one_error_line(err, "not an image model", "features")


def test_output_folder_that_does_not_exist(tiny_onnx: Path, tmp_path: Path, capsys) -> None:
    src = photo(tmp_path)
    code, _, err = run_cli(
        ["stylize", str(src), "--model", str(tiny_onnx), "-o", str(tmp_path / "no" / "o.png")], capsys
    )
    assert code == 2
    one_error_line(err, "does not exist")
    code, _, err = run_cli(
        ["stylize", str(src), str(src), "--model", str(tiny_onnx), "-o", str(tmp_path / "no" / "dir")], capsys
    )
    assert code == 2
    one_error_line(err, "does not exist")
    code, _, err = run_cli(["export", str(tmp_path), "-o", str(tmp_path / "no" / "m.onnx")], capsys)
    assert code == 2
    one_error_line(err, "does not exist")
    assert not (tmp_path / "no").exists()


def test_single_unreadable_image_and_bad_options(tiny_onnx: Path, tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    out = tmp_path / "out.png"
    code, _, err = run_cli(["stylize", str(bad), "--model", str(tiny_onnx), "-o", str(out)], capsys)
    assert code == 2 and not out.exists()
    one_error_line(err, "bad.png")
    code, _, err = run_cli(["stylize", str(bad), "--model", str(tiny_onnx), "-o", str(tmp_path / "o.xyz")], capsys)
    assert code == 2
    one_error_line(err, ".xyz")
    code, _, err = run_cli(["stylize", str(bad), "--model", str(tmp_path / "missing.onnx"), "-o", str(out)], capsys)
    assert code == 2
    one_error_line(err, "missing.onnx")
    code, _, err = run_cli(
        ["stylize", str(photo(tmp_path)), "--model", str(tiny_onnx), "-o", str(out), "--provider", "no-such-provider"],
        capsys,
    )
    assert code == 2
    one_error_line(err, "not available")
    with pytest.raises(SystemExit) as exc:
        main(["stylize", str(bad), "--model", str(tiny_onnx), "-o", str(out), "--strength", "1.5"])
    assert exc.value.code == 2
    one_error_line(capsys.readouterr().err, "--strength", "between 0 and 1")
    code, _, err = run_cli(["export", str(tmp_path), "-o", str(tmp_path / "m.onnx")], capsys)  # no network here
    assert code == 2
    one_error_line(err, "network.safetensors")
    assert not leftovers(tmp_path) and not (tmp_path / "m.onnx").exists()


def test_python_dash_m_infer(tiny_onnx: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "infer", "stylize", "--info", "--json", "--model", str(tiny_onnx)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["metadata"]["nst.style"] == "tiny-test"
