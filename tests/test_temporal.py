"""Video without flicker (`infer.temporal`): the warping error, the motion-compensated filter, scene cuts, the
test clips, and `--temporal` / `--flicker` through `nst stylize` and `nst live`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.helpers import make_clip, one_error_line, run_cli, skimage_photo

pytest.importorskip("cv2", reason="OpenCV (the video extra) not installed")

from infer.temporal import TemporalFilter, camera_clip, cut_clip, warping_error
from infer.temporal.flow import sample

SIZE = (96, 64)


@pytest.fixture(scope="module")
def photos() -> tuple[Image.Image, Image.Image]:
    return Image.open(skimage_photo("astronaut.png")), Image.open(skimage_photo("coffee.png"))


def strokes(frames: list[np.ndarray], seed: int = 0, amount: float = 0.15) -> list[np.ndarray]:
    """A stand-in for a network that flickers: each frame (as floats) plus its own noise, as a network answers
    each frame with strokes of its own."""
    rng = np.random.default_rng(seed)
    return [np.clip(f / 255.0 + rng.normal(0, amount, f.shape), 0, 1).astype(np.float32) for f in frames]


def test_a_still_clip_has_no_warping_error_and_the_filter_keeps_it_still(photos) -> None:
    frame = camera_clip(photos[0], "pan", 1, SIZE)[0]
    still = [frame] * 5
    assert warping_error(still, still).value == 0.0
    styled = strokes([frame], seed=1) * 5  # the same output every time, as a network gives for the same frame
    filt = TemporalFilter(0.7)
    outs = [filt(f, s) for f, s in zip(still, styled, strict=True)]
    for out in outs:
        np.testing.assert_array_equal(out, styled[0])


def test_the_filter_lowers_the_warping_error_of_a_panning_clip(photos) -> None:
    clip = camera_clip(photos[0], "pan", 10, SIZE)
    styled = strokes(clip)
    before = warping_error(clip, styled).value
    filt = TemporalFilter(0.7)
    after = warping_error(clip, [filt(f, s) for f, s in zip(clip, styled, strict=True)]).value
    assert after < before / 3, (before, after)  # the noise's flicker, followed along the motion and averaged
    assert warping_error(clip, clip).value < before / 20  # the clip itself is steady: its motion is followable
    assert filt.stats.cuts == 0 and len(filt.stats.ms) == 9


def test_a_cut_is_not_blended_across(photos) -> None:
    clip = cut_clip(photos[0], photos[1], 24, SIZE)  # 12 frames of each photo
    styled = strokes(clip, seed=2)
    filt = TemporalFilter(0.9)
    outs = [filt(f, s) for f, s in zip(clip, styled, strict=True)]
    assert filt.stats.cuts == 1
    np.testing.assert_array_equal(outs[12], styled[12])  # the first frame after the cut: the network's own
    assert not np.array_equal(outs[13], styled[13])  # and the new scene is followed from there on
    assert warping_error(clip, outs).skipped == 1  # the measure leaves the cut out too


def test_warp_follows_a_known_shift(photos) -> None:
    frame = camera_clip(photos[0], "pan", 1, SIZE)[0].astype(np.float32)
    flow = np.zeros((*frame.shape[:2], 2), np.float32)
    flow[..., 0] = 3.0  # each pixel was 3 px to the right in the previous frame
    moved = sample(frame, flow)
    np.testing.assert_array_equal(moved[:, :-3], frame[:, 3:])


@pytest.mark.parametrize("value", ["1", "-0.1", "nan", "much"])
def test_bad_temporal_values_are_one_line(value: str, tiny_onnx: Path, tmp_path: Path, capsys) -> None:
    clip = make_clip(tmp_path / "clip.mp4", frames=2, tone_hz=None)
    argv = ["stylize", str(clip), "--model", str(tiny_onnx), "-o", str(tmp_path / "o.mp4"), "--temporal", value]
    with pytest.raises(SystemExit) as exit_info:
        run_cli(argv, capsys)
    assert exit_info.value.code == 2
    one_error_line(capsys.readouterr().err, "--temporal")
    assert not (tmp_path / "o.mp4").exists()


def test_smooth_and_temporal_together_are_one_line(tiny_onnx: Path, tmp_path: Path, capsys) -> None:
    clip = make_clip(tmp_path / "clip.mp4", frames=2, tone_hz=None)
    argv = ["stylize", str(clip), "--model", str(tiny_onnx), "-o", str(tmp_path / "o.mp4"), "--smooth", "--temporal"]
    code, _, err = run_cli(argv, capsys)
    assert code == 2
    one_error_line(err, "--smooth", "--temporal")
    assert not (tmp_path / "o.mp4").exists()


def test_stylize_reports_the_filter_and_the_warping_error(tiny_onnx: Path, tmp_path: Path, capsys) -> None:
    pytest.importorskip("av", reason="video extra (PyAV) not installed")
    clip = make_clip(tmp_path / "clip.mp4", frames=10, size=(64, 48), tone_hz=None)
    runs = {}
    for name, extra in {"plain": [], "temporal": ["--temporal", "0.8"]}.items():
        argv = ["stylize", str(clip), "--model", str(tiny_onnx), "-o", str(tmp_path / f"{name}.mp4"), "--json"]
        code, out, err = run_cli([*argv, "--flicker", *extra], capsys)
        assert code == 0, err
        runs[name] = json.loads(out)["images"][0]
    assert "temporal" not in runs["plain"] and runs["plain"]["pairs_measured"] >= 8
    got = runs["temporal"]
    assert got["temporal"] == 0.8 and got["temporal_ms_per_frame"] > 0 and got["scene_cuts"] == 0
    assert got["warping_error"] < runs["plain"]["warping_error"]


def test_live_takes_temporal_and_reports_it(tiny_onnx: Path, tmp_path: Path, capsys) -> None:
    clip = make_clip(tmp_path / "clip.mp4", frames=6, size=(48, 32), tone_hz=None)
    argv = ["live", "--model", str(tiny_onnx), "--source", str(clip), "--no-window", "-o", str(tmp_path / "r.mp4")]
    code, out, err = run_cli([*argv, "--temporal", "--json"], capsys)
    assert code == 0, err
    summary = json.loads(out)
    assert summary["frames"] == 6 and summary["temporal"] == 0.7 and summary["temporal_ms_per_frame"] > 0
