"""Strokes at the picture's size (infer/stylize/scales.py) and one style weight for every painting
(nst_core/losses/calibrate.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from infer.stylize import Stylizer
from nst_core.cli import main
from nst_core.scales import WORK_SIZE_KEY, model_work_size, pyramid_sizes, stylize_multiscale
from tests.helpers import tiny_train_config
from tests.test_stylize import identity_model
from train.config import read_yaml
from train.trainer import run_training

pytestmark = pytest.mark.usefixtures("one_thread")


def test_the_pyramid_halves_down_to_about_the_work_size():
    assert pyramid_sizes(256, 200, 256) == [(256, 200)]
    assert pyramid_sizes(300, 360, 256) == [(300, 360)]  # within 1.4x: its own size only
    assert pyramid_sizes(512, 384, 256) == [(512, 384), (256, 192)]
    assert pyramid_sizes(1024, 700, 256) == [(1024, 700), (512, 350), (256, 175)]
    assert pyramid_sizes(1024, 700, 0) == [(1024, 700)]


@pytest.mark.parametrize("size", [(64, 48), (96, 130), (200, 150)])
def test_an_identity_network_gives_back_the_picture(size):
    x = np.random.default_rng(0).random((1, 3, *size), dtype=np.float32)
    out = stylize_multiscale(lambda a: a, x, 48)
    assert out.shape == x.shape
    assert np.abs(out - x).mean() < 0.01 and np.abs(out - x).max() < 0.2  # two levels: exact up to float rounding
    assert np.abs(stylize_multiscale(lambda a: a, x[..., :64, :48], 48) - x[..., :64, :48]).max() < 1e-5


def _stripes(a: np.ndarray, period: int = 8) -> np.ndarray:
    """A 'network' that paints vertical stripes of a fixed width in pixels, whatever the picture's size."""
    cols = (np.arange(a.shape[3]) // (period // 2)) % 2
    return np.broadcast_to(cols.astype(np.float32), a.shape).copy()


def _strongest_period(image: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(image[0, 0].mean(axis=0) - image[0, 0].mean()))
    return image.shape[3] / int(np.argmax(spectrum[1:]) + 1)


def test_a_picture_twice_the_work_size_gets_strokes_twice_the_size():
    x = np.zeros((1, 3, 64, 256), np.float32)
    assert _strongest_period(_stripes(x)) == pytest.approx(8)  # one pass: the network's own stroke size
    assert _strongest_period(stylize_multiscale(_stripes, x, 128)) == pytest.approx(16)
    assert _strongest_period(stylize_multiscale(_stripes, x, 64)) == pytest.approx(32)


def test_a_picture_half_the_work_size_is_painted_enlarged_and_brought_back():
    x = np.zeros((1, 3, 32, 128), np.float32)
    out = stylize_multiscale(_stripes, x, 256)  # run at 64 x 256, then halved: strokes half the size
    assert out.shape == x.shape
    assert _strongest_period(out) == pytest.approx(4)
    assert _strongest_period(stylize_multiscale(_stripes, x, 160)) == pytest.approx(8)  # within 1.4x: one pass


@pytest.mark.parametrize(
    ("metadata", "size"),
    [
        ({WORK_SIZE_KEY: "256"}, 256),  # an ONNX model's
        ({"work_size": "0"}, 0),  # a trained network's: one pass paints its larger pictures better
        ({"nst.config": json.dumps({"image_size": 256})}, None),  # not checked: one pass, as before
        ({WORK_SIZE_KEY: "big"}, None),
        ({}, None),
    ],
)
def test_a_models_work_size_comes_from_its_metadata(metadata, size):
    assert model_work_size(metadata) == size


@pytest.mark.parametrize(
    ("style_size", "judged_at"),
    [(None, 96), (96, 48)],  # the painting at the crops' size: judged at twice it; at twice the crops: at the crops'
)
def test_a_finished_run_records_the_way_its_network_paints_other_sizes(
    tmp_path,
    photo_dir,
    style_path,
    style_size,
    judged_at,
):
    from nst_core.checkpoint_io import load_network

    run_training(tiny_train_config(tmp_path / "run", photo_dir, style_path, max_steps=3, style_size=style_size))
    _, meta = load_network(tmp_path / "run")
    check = json.loads(meta["work_size_check"])
    assert check["size"] == judged_at and check["loss_one_pass"] > 0 and check["loss_work_size"] > 0
    assert check["loss_one_pass"] != check["loss_work_size"]  # the two ways differ at the size judged
    better = (style_size or 48) if check["loss_work_size"] < check["loss_one_pass"] else 0
    assert model_work_size(meta) == check["work_size"] == better
    assert Stylizer(tmp_path / "run").work_size == better  # exported in memory, the default kept


def _with_work_size(model: Path, size: int, out: Path) -> Path:
    proto = onnx.load(str(model))
    proto.metadata_props.add(key=WORK_SIZE_KEY, value=str(size))
    onnx.save(proto, str(out))
    return out


def test_stylize_blends_the_work_size_in_by_default_and_work_size_0_turns_it_off(tiny_onnx, tmp_path, capsys):
    stylizer = Stylizer(_with_work_size(tiny_onnx, 48, tmp_path / "m.onnx"))
    assert stylizer.work_size == 48 and Stylizer(tiny_onnx).work_size is None
    x = np.round(torch.rand(3, 96, 80).numpy() * 255) / 255  # 8-bit values: the PNG below holds them exactly
    x = x.astype(np.float32)
    one_pass = stylizer.stylize_array(x, work_size=0)
    assert np.array_equal(one_pass, Stylizer(tiny_onnx).stylize_array(x))
    blended = stylizer.stylize_array(x)
    assert np.abs(blended - one_pass).mean() > 1e-3  # the 48 px run is in it
    small = x[:, :48, :40]
    assert np.array_equal(stylizer.stylize_array(small), stylizer.stylize_array(small, work_size=0))
    Image = pytest.importorskip("PIL.Image")
    photo = tmp_path / "p.png"
    Image.fromarray(np.round(x.transpose(1, 2, 0) * 255).astype(np.uint8)).save(photo)
    for flag, ref in (([], blended), (["--work-size", "0"], one_pass)):
        out = tmp_path / f"out{len(flag)}.png"
        assert main(["stylize", str(photo), "-m", str(tmp_path / "m.onnx"), "-o", str(out), *flag]) == 0
        got = np.asarray(Image.open(out), np.float32).transpose(2, 0, 1) / 255
        assert np.abs(got - np.clip(ref, 0, 1)).max() <= 1 / 255 + 1e-6


def test_identity_model_is_unchanged_through_the_stylizer(tmp_path):
    stylizer = Stylizer(_with_work_size(identity_model(tmp_path / "i.onnx"), 40, tmp_path / "i40.onnx"))
    x = torch.rand(3, 80, 64).numpy()
    assert np.abs(stylizer.stylize_array(x) - x).max() < 1e-5


# ---------------------------------------------------------------------------------------------- the style weight


def test_the_energy_rule_leaves_the_reference_alone_and_strengthens_a_soft_painting():
    from nst_core.image_io import load_image
    from nst_core.losses.calibrate import REFERENCE_STYLE, energy_scaled_style_weight
    from train.config import TrainConfig

    loss = TrainConfig().loss
    ref = load_image(REFERENCE_STYLE, size=64)
    same, mine, theirs = energy_scaled_style_weight(loss, ref, ref)
    assert same == pytest.approx(loss.style, rel=1e-5) and mine == pytest.approx(theirs, rel=1e-5)
    soft = 0.5 + 0.5 * (ref - 0.5)  # half the contrast: a paler painting
    stronger, *_ = energy_scaled_style_weight(loss, soft, ref)
    assert stronger > 1.5 * loss.style


def test_a_run_under_the_energy_rule_records_the_weight_it_used(tmp_path, photo_dir, style_path):
    cfg = tiny_train_config(tmp_path / "run", photo_dir, style_path, max_steps=2, style_weight_rule="energy")
    run_training(cfg)
    saved = read_yaml(tmp_path / "run" / "config.yaml")
    assert saved["style_weight_rule"] == "fixed"  # resolved: a resumed run keeps the weight
    assert saved["loss"]["style"] > 0 and saved["loss"]["style"] != pytest.approx(cfg.loss.style, rel=0.05)
