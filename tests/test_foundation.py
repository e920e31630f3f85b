"""The shared pieces every command uses: argparse types and help, image idioms, the network at any size."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from nst_core.cli.options import (
    HelpFormatter,
    add_loss_options,
    list_of,
    loss_from_args,
    nonneg_float,
    number,
    positive_float,
    positive_int,
    unit_float,
)
from nst_core.errors import NSTError
from nst_core.image_io import (
    array_to_pil,
    center_crop,
    is_image_file,
    pil_to_array,
    pil_to_tensor,
    readable_extensions,
    resize_longer,
    scan_images,
    tensor_to_pil,
)
from nst_core.losses.weights import LossWeights
from nst_core.transformer import TransformerNet

# ------------------------------------------------------------------------------------------------ argparse types


@pytest.mark.parametrize(
    ("kind", "text", "value"),
    [(positive_int, "3", 3), (nonneg_float, "0", 0.0), (unit_float, "1", 1.0), (number(int, 13, 23), "18", 18)],
)
def test_number_types_accept_values_in_range(kind, text: str, value: float) -> None:
    assert kind(text) == value


@pytest.mark.parametrize(
    ("kind", "text", "message"),
    [
        (positive_int, "0", "must be > 0"),
        (positive_int, "1.5", "expected an integer"),
        (nonneg_float, "-1e-9", "must be >= 0"),
        (nonneg_float, "nan", "must be a finite number"),
        (positive_float, "inf", "must be a finite number"),
        (positive_int, "1e39", "expected an integer"),
        (unit_float, "1.01", "in [0, 1]"),
        (number(float, 0, 1, high_open=True), "1", "in [0, 1)"),
        (number(int, 13, 23), "24", "in [13, 23]"),
    ],
)
def test_number_types_reject_with_the_range(kind, text: str, message: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=re.escape(message)):
        kind(text)


def test_list_of_checks_each_item_and_the_count() -> None:
    assert list_of(nonneg_float)("1, 2.5") == [1.0, 2.5]
    with pytest.raises(argparse.ArgumentTypeError):
        list_of(nonneg_float)("1,-2")
    with pytest.raises(argparse.ArgumentTypeError, match="expected 2"):
        list_of(nonneg_float, 2)("1")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="t", formatter_class=HelpFormatter)
    p.add_argument("--size", type=positive_int, default=512, help="longer side")
    p.add_argument("--model", required=True, help="the model")
    p.add_argument("--coarse-steps", type=positive_int, help="steps (default: --steps)")
    p.add_argument("--flag", action="store_true", help="a switch")
    add_loss_options(p, LossWeights())
    return p


def test_help_shows_defaults_and_ranges_as_typed_never_none() -> None:
    text = " ".join(_parser().format_help().split())
    assert "longer side; > 0 (default: 512)" in text
    assert "(default: relu1_1,relu2_1,relu3_1,relu4_1,relu5_1)" in text  # a list as the user types it
    assert "(default: 5)" in text and "(default: 100)" in text  # the loss weights
    assert "None" not in text and "'" not in text and "the model (default" not in text
    assert "(default: --steps)" in text and text.count("(default: --steps)") == 1
    assert "a switch (default" not in text


def test_loss_options_only_given_leave_the_base_alone() -> None:
    p = argparse.ArgumentParser()
    base = LossWeights(content=1, style=0.2)
    add_loss_options(p, base, only_given=True)
    assert loss_from_args(p.parse_args([]), base) == base
    w = loss_from_args(p.parse_args(["--style-weight", "3", "--style-layers", "relu1_1"]), base)
    assert (w.content, w.style, w.style_layers) == (1, 3, ("relu1_1",))
    with pytest.raises(NSTError, match="relu9_9"):
        loss_from_args(p.parse_args(["--content-layers", "relu9_9"]), base)


def test_loss_weights_round_trip_through_a_config_mapping() -> None:
    w = LossWeights(content=2, style_layers=["relu1_1", "relu2_1"], style_layer_weights=[1, 0.5])
    assert LossWeights.from_dict(w.to_dict()) == w
    assert LossWeights.from_dict({"style": 7}, base=w).style_layer_weights == (1.0, 0.5)
    with pytest.raises(NSTError, match=re.escape("cfg.yaml: unknown loss key 'styel'")):
        LossWeights.from_dict({"styel": 1}, source="cfg.yaml")


def test_nst_help_does_not_import_torch() -> None:
    code = "import sys; from nst_core.cli import main\ntry: main(['--help'])\nexcept SystemExit: pass\n"
    code += "print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_the_command_lists_are_the_entry_points() -> None:
    """`nst --help` lists every command with its first example; `python -m infer --help` the inference ones."""
    from importlib.metadata import entry_points

    eps = {ep.name: ep.module for ep in entry_points(group="nst.commands")}
    assert {"optimize", "train", "export", "stylize", "compare", "app", "models", "live"} <= set(eps)
    run = {"capture_output": True, "text": True, "timeout": 120}
    nst = subprocess.run([sys.executable, "-c", "from nst_core.cli import main; main(['--help'])"], **run).stdout
    infer = subprocess.run([sys.executable, "-m", "infer", "--help"], **run).stdout

    def listed(text: str) -> set[str]:
        return set(re.findall(r"^ {4}(\w+) ", text, re.M))

    assert listed(nst) == set(eps) and all(f"  nst {name} " in nst or f"  nst {name}\n" in nst for name in eps)
    assert listed(infer) == {name for name, module in eps.items() if module.startswith("infer.")}


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--style", "x.jpg", "-o", "run"],
        ["optimize", "in.jpg", "--style", "starry_night", "-o", "out.png"],
        ["stylize", "in.jpg", "-m", "starry_night"],
        ["export", "run", "-o", "m.onnx"],
        ["models"],
    ],
    ids=lambda argv: argv[0],
)
def test_an_unknown_option_is_the_command_s_own_one_line_error(argv: list[str], capsys) -> None:
    from nst_core.cli import main

    with pytest.raises(SystemExit) as stop:
        main([*argv, "--bogus", "1"])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err == f"nst {argv[0]}: error: unrecognized arguments: --bogus 1\n", err


def test_ctrl_c_while_a_command_loads_is_one_line(monkeypatch, capsys) -> None:
    import nst_core.cli.command

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(nst_core.cli.command, "build_parser", interrupted)  # as if Ctrl-C came during the imports
    assert nst_core.cli.command.main(["stylize", "in.jpg", "-m", "starry_night"]) == 130
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == "nst stylize: error: interrupted\n"


# ------------------------------------------------------------------------------------------------ image idioms


def test_extensions_come_from_pillow_registry(tmp_path: Path) -> None:
    exts = readable_extensions()
    assert {".jpg", ".jpeg", ".png", ".webp", ".tif"} <= exts
    assert is_image_file(tmp_path / "A.JPEG") and not is_image_file(tmp_path / "notes.txt")
    (tmp_path / "sub").mkdir()
    Image.new("RGB", (4, 4)).save(tmp_path / "sub" / "a.png")
    (tmp_path / "b.txt").write_text("x")
    (tmp_path / ".hidden.png").write_bytes(b"")
    images, others = scan_images(tmp_path)
    assert images == [tmp_path / "sub" / "a.png"] and others == [tmp_path / "b.txt"]


def test_resize_center_crop_and_array_round_trip() -> None:
    img = Image.new("RGB", (300, 200), (10, 20, 30))
    assert resize_longer(img, 150).size == (150, 100) and resize_longer(img, None) is img
    assert center_crop(img).size == (200, 200) and center_crop(img, 64).size == (64, 64)
    rng = np.random.default_rng(0)
    photo = Image.fromarray(rng.integers(0, 256, (7, 5, 3), dtype=np.uint8))
    arr = pil_to_array(photo)
    assert arr.shape == (3, 7, 5) and arr.dtype == np.float32
    assert np.array_equal(np.asarray(array_to_pil(arr)), np.asarray(photo))
    assert np.allclose(arr, pil_to_tensor(photo).numpy())  # the ONNX and PyTorch paths see the same values
    assert np.array_equal(np.asarray(tensor_to_pil(torch.from_numpy(arr))), np.asarray(photo))


# ------------------------------------------------------------------------------------------------ network


@pytest.mark.parametrize("size", [(1, 1), (2, 3), (4, 4), (5, 7), (9, 4), (17, 12)])
def test_transformer_net_takes_any_size(size: tuple[int, int]) -> None:
    net = TransformerNet.from_variant("small").eval()
    with torch.no_grad():
        y = net(torch.rand(2, 3, *size))
    assert y.shape == (2, 3, *size) and float(y.min()) >= 0 and float(y.max()) <= 1


# ------------------------------------------------------------------------------------------------ docs


def _commands(text: str) -> set[str]:
    """Shell commands in ``text``, comments dropped, continuation lines joined, whitespace collapsed."""
    text = text.replace("\\\n", " ")
    return {" ".join(line.split("#")[0].split()) for line in text.splitlines() if line.strip()}


def _user_docs() -> tuple[str, str]:
    """(README.md, README.md and every page of docs/), as the shell commands they hold."""
    root = Path(__file__).resolve().parents[1]
    readme = "\n".join(_commands((root / "README.md").read_text(encoding="utf-8")))
    pages = [p.read_text(encoding="utf-8") for p in sorted((root / "docs").rglob("*.md"))]
    return readme, "\n".join([readme, *("\n".join(_commands(text)) for text in pages)])


@pytest.mark.parametrize("command", ["optimize", "train", "export", "stylize", "compare", "app", "models", "live"])
def test_help_examples_are_in_the_docs(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Every example of `nst COMMAND --help` stands in the docs (README.md or docs/), the first in the README."""
    from nst_core.cli import main

    with pytest.raises(SystemExit):
        main([command, "--help"])
    help_text = capsys.readouterr().out
    examples = [e for e in help_text.split("\nexamples:\n", 1)[1].splitlines() if e.strip()]
    readme, docs = _user_docs()
    missing = [e for e in _commands("\n".join(examples)) if e not in docs]  # a docs line may chain it after `&&`
    assert examples and not missing, missing
    first = " ".join(examples[0].split("#")[0].split())
    assert first in readme, first


def test_every_package_and_its_data_reach_the_wheel() -> None:
    """pyproject.toml lists every package of the tree (a left-out one would be missing from the wheel) and the data
    folders: the paintings, the demo photos, the configs, the models."""
    import tomllib

    root = Path(__file__).resolve().parents[1]
    project = tomllib.loads((root / "pyproject.toml").read_text())
    listed = set(project["tool"]["setuptools"]["packages"])
    inits = [p for top in ("nst_core", "train", "infer") for p in (root / top).glob("**/__init__.py")]
    found = {".".join(p.parent.relative_to(root).parts) for p in inits}
    assert found <= listed, found - listed
    data = project["tool"]["setuptools"]["package-data"]
    assert {"nst_core.styles", "nst_core.photos", "train.configs", "infer.models"} <= set(data) <= listed
