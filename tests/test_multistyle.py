"""One network of several styles (conditional instance norm): training from several paintings or teachers, adding
a style, the ONNX style input, and choosing or blending styles wherever a model is taken."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from infer.export.exporter import DEFAULT_TOLERANCE
from infer.stylize import Stylizer
from nst_core.checkpoint_io import load_network
from nst_core.cli.command import build_parser
from nst_core.errors import NSTError
from nst_core.transformer import with_styles
from tests.helpers import MULTI_STYLES, multi_net, one_error_line, run_cli, skimage_photo, tiny_train_config
from train.cli import config_from_args
from train.trainer import run_training

pytestmark = pytest.mark.usefixtures("one_thread")

NAMES = MULTI_STYLES


def test_each_style_learns_its_painting(tmp_path, photo_dir, style_path, style_path2):
    """Two paintings, one network: it trains (the loss falls), names its styles, paints a row per style in the
    sample grid, and its two styles, identical at step 0, end apart."""
    cfg = tiny_train_config(tmp_path / "run", photo_dir, [style_path, style_path2], max_steps=24, lr=3e-3)
    result = run_training(cfg.updated({"sample_every": 24}, "test"), progress=False)
    totals = [h["total"] for _, h in result.history]
    for k in range(2):  # each style's own loss, on its own turns
        mine = totals[k::2]
        assert np.mean(mine[-3:]) < 0.9 * np.mean(mine[:3]), (k, mine)
    net, meta = load_network(result.network)
    assert net.styles == 2 and json.loads(meta["styles"]) == ["coffee", "rocket"]
    grid = Image.open(result.run_dir / "samples" / "step-000000024.png")
    assert grid.size[1] == 3 * 48 + 8  # photos, then one row per style
    x = torch.rand(1, 3, 48, 48)
    with torch.no_grad():
        assert (net(x, 0) - net(x, 1)).abs().mean() > 1e-3


def test_adding_a_style_keeps_the_others_bit_for_bit(tmp_path, photo_dir, style_path, style_path2, content_path):
    """--add-style trains only the new style's norm rows: the base styles' outputs and every convolution are
    unchanged bit for bit, and the new style moved away from where it started."""
    base = run_training(tiny_train_config(tmp_path / "base", photo_dir, [style_path, style_path2], max_steps=4))
    added = tiny_train_config(
        tmp_path / "added", photo_dir, skimage_photo("chelsea.png"), init_from=str(base.network), add_style=True
    )
    grown = run_training(added.updated({"max_steps": 8, "lr": 3e-3}, "test"), progress=False)
    before, _ = load_network(base.network)
    after, meta = load_network(grown.network)
    assert json.loads(meta["styles"]) == NAMES
    x = torch.rand(2, 3, 40, 52)
    with torch.no_grad():
        for k in range(2):
            assert torch.equal(before(x, k), after(x, k)), k
        start = with_styles(before, 1)
        assert (start(x, 2) - after(x, 2)).abs().max() > 1e-4
    convs = {k: v for k, v in before.state_dict().items() if v.dim() == 4}
    assert all(torch.equal(v, after.state_dict()[k]) for k, v in convs.items())


def test_style_turns_choose_whose_turn_each_step_is(tmp_path, photo_dir, style_path, style_path2):
    """--style-turns 1,3 makes the cycle [1, 0, 1, 1]: the first step is the second style's. With --add-style only
    the norm rows of the style in turn get a gradient, so after one step only that style moved."""
    base = run_training(tiny_train_config(tmp_path / "base", photo_dir, [style_path, style_path2], max_steps=2))
    new = [skimage_photo("chelsea.png"), skimage_photo("astronaut.png")]
    moved = []
    for turns in (None, [1, 3]):
        cfg = tiny_train_config(
            tmp_path / f"added{turns}", photo_dir, new, init_from=str(base.network), add_style=True, max_steps=1
        )
        grown = run_training(cfg.updated({"style_turns": turns, "lr": 3e-3}, "test"), progress=False)
        start, _ = load_network(base.network)
        start, (after, _) = with_styles(start, 2), load_network(grown.network)
        x = torch.rand(1, 3, 40, 52)
        with torch.no_grad():
            moved.append([bool((start(x, k) - after(x, k)).abs().max() > 0) for k in (2, 3)])
    assert moved == [[True, False], [False, True]]
    parser = build_parser("train")
    args = parser.parse_args(["train", "--teacher", "x", "--teacher", "y", "--style-turns", "1,3", "-o", "r"])
    assert config_from_args(args).style_turns == [1, 3]
    args = parser.parse_args(["train", "--teacher", "x", "--teacher", "y", "--style-turns", "1,3,1", "-o", "r"])
    with pytest.raises(NSTError, match="style_turns must be one per style of the run"):
        config_from_args(args)


def test_several_teachers_distil_into_one_network(tmp_path, photo_dir):
    """One teacher per style (shipped networks, by name): the L1 to the teachers falls, and the styles are named
    after them."""
    cfg = tiny_train_config(
        tmp_path / "run", photo_dir, None, teacher=["starry_night", "udnie"], variant="fast", max_steps=30, lr=3e-3
    )
    result = run_training(cfg, progress=False)
    errors = [h["teacher"] for _, h in result.history]
    assert np.mean(errors[-6:]) < 0.8 * np.mean(errors[:6]), errors
    _, meta = load_network(result.network)
    assert json.loads(meta["styles"]) == ["starry_night", "udnie"]


def test_style_and_teacher_flags_repeat():
    """--style and --teacher repeat into lists; a teacher count that does not match the paintings is one line."""
    parser = build_parser("train")
    args = parser.parse_args(["train", "--style", "a.jpg", "--style", "b.jpg", "--data", "d", "-o", "r"])
    assert config_from_args(args).styles == ["a.jpg", "b.jpg"]
    args = parser.parse_args(["train", "--style", "a.jpg", "--data", "d", "-o", "r"])
    assert config_from_args(args).style == "a.jpg"
    args = parser.parse_args(["train", "--teacher", "x", "--teacher", "y", "--style", "a.jpg", "-o", "r"])
    with pytest.raises(NSTError, match="teacher must be one per style"):
        config_from_args(args)


def test_onnx_style_input_matches_pytorch(multi_onnx, tmp_path):
    """The exported network takes the style weights as an input: a blend matches PyTorch within the export
    tolerance, weights (1, 0, 0) give the first style's picture exactly, and a name equals its one-hot weights."""
    net = multi_net()
    stylizer = Stylizer(multi_onnx)
    assert stylizer.styles == NAMES and stylizer.info()["styles"] == NAMES
    x = np.random.default_rng(0).random((1, 3, 45, 61), dtype=np.float32)
    blend = np.array([0.2, 0.5, 0.3], np.float32)
    with torch.no_grad():
        reference = net(torch.from_numpy(x), torch.from_numpy(blend)).numpy()
        assert torch.equal(net(torch.from_numpy(x), torch.tensor([1.0, 0, 0])), net(torch.from_numpy(x), 0))
    assert np.abs(stylizer.run_array(x, blend) - reference).max() <= DEFAULT_TOLERANCE
    first = stylizer.run_array(x, stylizer.style_weights("coffee"))
    assert np.array_equal(first, stylizer.run_array(x, np.array([1, 0, 0], np.float32)))
    assert np.array_equal(first, stylizer.run_array(x))  # the default: the first style
    assert np.abs(first - stylizer.run_array(x, stylizer.style_weights("rocket"))).mean() > 1e-3
    photo = skimage_photo("chelsea.png")
    a = stylizer.stylize(photo, size=48, style={"coffee": 0.7, "rocket": 0.3})
    b = stylizer.stylize(photo, size=48, style="coffee=7,rocket=3")  # weights are normalised
    assert np.array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize(
    ("style", "needle"),
    [
        ("monet", "has no style 'monet'; its styles: coffee, rocket, chelsea"),
        ("coffee=-1,rocket=1", "must be >= 0"),
        ("coffee=0,rocket=0", "sum to 0"),
        ("coffee=nan", "finite"),
        ("coffee=x", "not a number"),
    ],
)
def test_bad_style_is_one_line_and_exit_2(multi_onnx, tmp_path, capsys, style, needle):
    out = tmp_path / "out.png"
    code, _, err = run_cli(
        ["stylize", str(skimage_photo("chelsea.png")), "-m", str(multi_onnx), "--style", style, "-o", str(out)],
        capsys,
    )
    assert code == 2 and not out.exists()
    one_error_line(err, needle)


def test_style_of_a_one_style_model_is_one_line(tiny_onnx, tmp_path, capsys):
    out = tmp_path / "out.png"
    args = ["stylize", str(skimage_photo("chelsea.png")), "-m", str(tiny_onnx), "--style", "udnie", "-o", str(out)]
    code, _, err = run_cli(args, capsys)
    assert code == 2 and not out.exists()
    one_error_line(err, "paints one style")


def test_cli_blend_and_listings(multi_onnx, tmp_path, capsys, monkeypatch):
    """`nst stylize --style A=W,B=W --json` reports the blend; `--info` and `nst models` list the styles."""
    out = tmp_path / "out.png"
    args = ["stylize", str(skimage_photo("chelsea.png")), "-m", str(multi_onnx), "--size", "40", "-o", str(out)]
    code, stdout, _ = run_cli([*args, "--style", "rocket=1,chelsea=3", "--json"], capsys)
    assert code == 0 and json.loads(stdout)["style"] == "rocket=0.25,chelsea=0.75"
    code, stdout, _ = run_cli(["stylize", "-m", str(multi_onnx), "--info"], capsys)
    assert code == 0 and "coffee, rocket, chelsea" in stdout
    monkeypatch.setenv("NST_MODELS_DIR", str(multi_onnx.parent))
    code, stdout, _ = run_cli(["models"], capsys)
    assert code == 0 and "3 styles" in stdout and "multi: coffee, rocket, chelsea" in stdout
    code, stdout, _ = run_cli(["models", "--json"], capsys)
    assert json.loads(stdout)[0]["styles"] == NAMES


def test_compare_scores_the_style_named_like_the_style_image(multi_onnx, tmp_path):
    """nst compare on a network of several styles: the style image's name picks the style the network paints (the
    fast picture is that style's), and a painting the network has no style of is one line listing its styles."""
    from infer.compare.model import load_fast_model
    from infer.compare.run import compare

    photo = skimage_photo("astronaut.png")
    report = compare([photo], "skimage:rocket", multi_onnx, steps=[1], size=32, repeats=1, progress=False)
    assert report.model_info["style"] == "rocket" and not report.warnings
    model = load_fast_model(multi_onnx, torch.device("cpu"))
    model.choose_style("rocket")
    picture = np.asarray(Image.open(photo).convert("RGB").resize((32, 32)))
    expected = Stylizer(multi_onnx).stylize(picture, style="rocket")
    assert np.array_equal(np.asarray(model.stylize(Image.fromarray(picture))), np.asarray(expected))
    other = tmp_path / "coffee_cup.png"
    Image.open(skimage_photo("coffee.png")).save(other)
    with pytest.raises(NSTError, match=r"has no style 'coffee_cup'.*coffee, rocket, chelsea"):
        compare([photo], other, multi_onnx, steps=[1], size=32, progress=False)
