"""nst stylize: files, folders, stdin, tiling, video, bad input."""

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

from infer.stylize.stylizer import Stylizer
from infer.stylize.tiling import blend_weights, tile_starts
from nst_core.cli import main
from nst_core.color import rgb_to_ycbcr
from nst_core.image_io import load_image, pil_to_tensor
from tests.helpers import leftovers, one_error_line, photo, run_cli, skimage_photo, zoo_convention_onnx


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


# ---------------------------------------------------------------------------------------------- bad input


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


@pytest.mark.parametrize("kind", [TensorProto.INT64, TensorProto.UINT8])
def test_onnx_model_whose_output_is_not_an_image(kind: int, tmp_path: Path, capsys) -> None:
    """An image in, integers out (a classifier's labels, a mask): refused when the model opens, not painted."""
    x = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, "H", "W"])
    y = helper.make_tensor_value_info("labels", kind, ["N", 3, "H", "W"])
    graph = helper.make_graph([helper.make_node("Cast", ["image"], ["labels"], to=kind)], "cast", [x], [y])
    model = tmp_path / "labels.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(model))
    src, out = photo(tmp_path), tmp_path / "out.png"
    code, stdout, err = run_cli(["stylize", str(src), "--model", str(model), "-o", str(out)], capsys)
    assert code == 2 and stdout == "" and not out.exists()
    one_error_line(err, "labels.onnx", "not an image model", "output 'labels' is tensor(")


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
    one_error_line(capsys.readouterr().err, "--strength", "in [0, 1]")
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


# ---------------------------------------------------------------------------------------------- issue 10


def test_folder_takes_pillow_formats_and_reports_skipped_files(tiny_onnx: Path, tmp_path: Path, capsys) -> None:
    src = tmp_path / "photos"
    (src / "sub").mkdir(parents=True)
    photo(src, "astronaut.png", 40)
    Image.open(photo(tmp_path, "chelsea.png", 40)).save(src / "sub" / "cat.avif")  # Pillow's registry has .avif
    (src / "notes.txt").write_text("not a picture")
    (src / "sub" / "data.csv").write_text("1,2")
    out = tmp_path / "styled"
    code, stdout, stderr = run_cli(["stylize", str(src), "--model", str(tiny_onnx), "-o", str(out), "--json"], capsys)
    assert code == 0
    summary = json.loads(stdout)
    assert sorted(Path(p).relative_to(out).as_posix() for p in summary["outputs"]) == ["astronaut.png", "sub/cat.png"]
    assert summary["skipped"] == [str(src / "notes.txt"), str(src / "sub" / "data.csv")]
    skipped = [line for line in stderr.splitlines() if "skipped 2 files" in line]
    assert len(skipped) == 1 and "notes.txt" in skipped[0] and "data.csv" in skipped[0]
    again = ["stylize", str(src), "--model", str(tiny_onnx), "-o", str(tmp_path / "jpeg"), "--format", "jpeg", "-q"]
    code, _, stderr = run_cli(again, capsys)
    assert code == 0 and stderr == ""  # -q: nothing but errors
    assert Image.open(tmp_path / "jpeg" / "sub" / "cat.jpeg").format == "JPEG"  # --format names the extension


def test_folder_of_only_other_files_names_them(tiny_onnx: Path, tmp_path: Path, capsys) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "readme.md").write_text("#")
    code, _, err = run_cli(
        ["stylize", str(tmp_path / "docs"), "--model", str(tiny_onnx), "-o", str(tmp_path / "o")], capsys
    )
    assert code == 2
    one_error_line(err, "no images or videos", "readme.md")


def test_run_folder_or_safetensors_as_model_is_exported_in_memory(tiny_onnx: Path, tmp_path: Path, capsys) -> None:
    from nst_core.checkpoint_io import save_network
    from tests.helpers import tiny_net

    run = tmp_path / "runs" / "tiny"
    save_network(tiny_net(), run / "network.safetensors", {"style": "tiny-run"})
    src, out = photo(tmp_path, size=40), tmp_path / "out.png"
    code, stdout, err = run_cli(["stylize", str(src), "--model", str(run), "-o", str(out), "--json"], capsys)
    assert code == 0, err
    assert f"exporting {run} to ONNX in memory" in err and "nst export" in err
    summary = json.loads(stdout)
    assert summary["model"] == str(run) and summary["style"] == "tiny-run"
    expected = np.asarray(Stylizer(tiny_onnx).stylize(src), dtype=np.int16)  # the same weights, exported by hand
    assert np.abs(np.asarray(Image.open(out), dtype=np.int16) - expected).max() <= 1
    assert not list(tmp_path.rglob("*.onnx"))  # nothing left behind
    code, stdout, _ = run_cli(
        ["stylize", "--info", "--json", "-q", "--model", str(run / "network.safetensors")], capsys
    )
    info = json.loads(stdout)
    assert code == 0 and info["exported_on_load"] and info["metadata"]["nst.style"] == "tiny-run"


def test_folder_without_a_network_as_model_is_one_line(tmp_path: Path, capsys) -> None:
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli(
        ["stylize", str(photo(tmp_path)), "--model", str(tmp_path / "empty"), "-o", str(tmp_path / "o.png"), "-q"],
        capsys,
    )
    assert code == 2 and not (tmp_path / "o.png").exists()
    one_error_line(err, "network.safetensors")


def test_not_an_onnx_file_hints_at_trained_networks(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "model.bin"
    bad.write_bytes(b"\x00\x01 not a protobuf")
    code, _, err = run_cli(
        ["stylize", str(photo(tmp_path)), "--model", str(bad), "-o", str(tmp_path / "o.png")], capsys
    )
    assert code == 2
    one_error_line(err, "model.bin", "not an ONNX model", ".safetensors", "nst export")


@pytest.mark.parametrize(
    ("flag", "value", "needle"),
    [
        ("--tile", "8", "at least 32"),
        ("--quality", "0", "in [1, 100]"),
        ("--smooth", "1", "in [0, 1)"),
        ("--strength", "nan", "finite"),
        ("--strength", "inf", "finite"),
        ("--smooth", "nan", "finite"),
        ("--quality", "nan", "integer"),
        ("--max-pixels", "0", "> 0"),
    ],
)
def test_bad_option_values_are_one_line_before_any_work(
    tiny_onnx: Path, tmp_path: Path, capsys, flag: str, value: str, needle: str
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["stylize", str(photo(tmp_path)), "--model", str(tiny_onnx), "-o", str(tmp_path / "o.png"), flag, value])
    assert exc.value.code == 2
    one_error_line(capsys.readouterr().err, flag, needle)


def test_tile_is_checked_where_it_enters_the_library(tiny_onnx: Path) -> None:
    from nst_core.errors import NSTError

    with pytest.raises(NSTError, match="at least 32"):
        Stylizer(tiny_onnx).stylize(Image.new("RGB", (40, 40)), tile=8)


def test_help_ends_with_examples_and_loads_no_torch() -> None:
    code = (
        "import sys, contextlib, io\n"
        "from nst_core.cli import main\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):\n"
        "    main(['stylize', '--help'])\n"
        "last = out.getvalue().rstrip().splitlines()[-1]\n"
        "assert last.strip() == 'nst stylize photo.jpg --model runs/candy -o out.png', last\n"
        "assert not {'torch', 'onnxruntime'} & set(sys.modules), sorted(sys.modules)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_onnx_model_runs_without_torch(tiny_onnx: Path, tmp_path: Path) -> None:
    src = photo(tmp_path, size=40)
    code = (
        "import sys\n"
        "from nst_core.cli import main\n"
        f"assert main(['stylize', {str(src)!r}, '--model', {str(tiny_onnx)!r}, '-o', {str(tmp_path / 'o.jpg')!r},"
        " '--strength', '0.7', '--tile', '32', '-q']) == 0\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert Image.open(tmp_path / "o.jpg").size == Image.open(src).size


@pytest.mark.parametrize(
    ("build", "picked"),
    [
        (["CPUExecutionProvider"], ["CPUExecutionProvider"]),
        (["CoreMLExecutionProvider", "CPUExecutionProvider"], ["CoreMLExecutionProvider", "CPUExecutionProvider"]),
        (["CPUExecutionProvider", "DmlExecutionProvider"], ["DmlExecutionProvider", "CPUExecutionProvider"]),
        (["OpenVINOExecutionProvider", "CPUExecutionProvider"], ["OpenVINOExecutionProvider", "CPUExecutionProvider"]),
        (
            ["CPUExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider"],
            ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
        ),
        (["ROCMExecutionProvider", "CPUExecutionProvider"], ["ROCMExecutionProvider", "CPUExecutionProvider"]),
    ],
)
def test_auto_takes_the_machine_s_accelerator_first(monkeypatch, build: list[str], picked: list[str]) -> None:
    """--provider auto asks the build what it has: a Mac's CoreML, Windows' DirectML or Intel's OpenVINO come before
    the CPU, NVIDIA's TensorRT before CUDA; the order of the build's own list does not matter."""
    from infer.stylize import providers

    monkeypatch.setattr(providers, "available_providers", lambda: build)
    assert providers.resolve_providers("auto") == picked
    assert providers.resolve_providers(None) == picked


def test_a_model_zoo_convention_model_stylizes_with_pixel_range(tmp_path: Path, tiny_onnx: Path, capsys) -> None:
    """A network in the ONNX model zoo's convention (pixels 0-255 in and out, input named input1) gives the same
    picture as in 0-1 with --pixel-range 0-255, and a wrong one without it."""
    zoo = zoo_convention_onnx(tmp_path / "candy-8.onnx")
    x = np.random.default_rng(0).random((1, 3, 48, 40), dtype=np.float32)
    ours = Stylizer(tiny_onnx).run_array(x)
    assert np.abs(Stylizer(zoo, pixel_range="0-255").run_array(x) - ours).max() < 1e-4
    assert np.abs(Stylizer(zoo).run_array(x) - ours).mean() > 0.05  # read as 0-1: the wrong picture
    src, out = photo(tmp_path, size=40), tmp_path / "out.png"
    code, _, _ = run_cli(["stylize", str(src), "--model", str(zoo), "--pixel-range", "0-255", "-o", str(out)], capsys)
    assert code == 0 and out.is_file()
