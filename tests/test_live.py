"""`nst live` with a video file as the source (no camera here): frames written, the frame rate reported, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import leftovers, make_clip, one_error_line, run_cli

pytest.importorskip("cv2", reason="live extra (opencv-python-headless) not installed")
av = pytest.importorskip("av", reason="live extra (PyAV) not installed")


def frames_in(path: Path) -> tuple[int, tuple[int, int], float]:
    """(frames decoded, (width, height), seconds of picture) of a recording."""
    with av.open(str(path)) as c:
        frames = list(c.decode(video=0))
    return len(frames), (frames[0].width, frames[0].height), float(frames[-1].time - frames[0].time)


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    return make_clip(tmp_path / "clip.mp4", frames=12, size=(48, 32), fps=8)


def test_records_every_frame_of_a_file_at_its_frame_rate(tiny_onnx: Path, clip: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "live.mp4"
    argv = ["live", "--model", str(tiny_onnx), "--source", str(clip), "-o", str(out), "--no-window", "--size", "24"]
    code, stdout, _ = run_cli([*argv, "--smooth", "--json"], capsys)
    assert code == 0
    result = json.loads(stdout)
    assert result["frames"] == 12 and result["stopped"] == "end" and result["size"] == [24, 16]
    assert result["frames_per_second"] > 0 and result["output"] == str(out)
    assert frames_in(out) == (12, (24, 16), pytest.approx(11 / 8))  # the source's 8 frames/s, not the loop's
    assert not leftovers(tmp_path)


def test_max_frames_and_a_shipped_model_by_name(clip: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "live.mkv"
    argv = ["live", "--model", "starry_night", "--source", str(clip), "-o", str(out), "--no-window"]
    code, stdout, err = run_cli([*argv, "--max-frames", "5"], capsys)
    assert code == 0 and stdout == ""
    assert "5 frames (48x32)" in err and "frames/s" in err and "stopped: max-frames" in err, err
    assert "--model starry_night_fast is the same style" in err  # the live network of that style ships too
    assert frames_in(out)[:2] == (5, (48, 32))
    argv[2] = "starry_night_fast"
    code, _, err = run_cli([*argv, "--max-frames", "2"], capsys)
    assert code == 0 and "_fast is the same style" not in err and frames_in(out)[:2] == (2, (48, 32))


def test_without_a_display_the_output_is_required(tiny_onnx: Path, clip: Path, tmp_path: Path, monkeypatch, capsys):
    import infer.live.run

    monkeypatch.setattr(infer.live.run, "display_problem", lambda: "no display (DISPLAY is not set)")
    code, out, err = run_cli(["live", "--model", str(tiny_onnx), "--source", str(clip)], capsys)
    assert code == 2 and out == ""
    one_error_line(err, "no window can be shown: no display", "give -o FILE")
    rec = tmp_path / "rec.mp4"  # with -o it records instead, and says so
    code, _, err = run_cli(["live", "--model", str(tiny_onnx), "--source", str(clip), "-o", str(rec)], capsys)
    assert code == 0 and "without a window" in err and frames_in(rec)[0] == 12


def test_a_window_is_tried_only_where_one_can_be_shown(monkeypatch) -> None:
    """A headless OpenCV (the [live] extra's) has no windows; a GUI one still needs a display."""
    import cv2

    from infer.live.run import display_problem

    gui = next(line for line in cv2.getBuildInformation().splitlines() if line.strip().startswith("GUI:"))
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    problem = display_problem()
    assert problem is not None
    assert ("no windows" in problem) if gui.split(":")[1].strip() == "NONE" else ("no display" in problem)


@pytest.mark.parametrize(
    ("source", "output", "needle"),
    [
        ("missing.mp4", "o.mp4", "missing.mp4: no such file"),
        ("notavideo.mp4", "o.mp4", "notavideo.mp4: cannot open"),
        ("clip.mp4", "o.png", "o.png: the recording is a video"),
        ("clip.mp4", "nofolder/o.mp4", "output folder"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(
    source: str, output: str, needle: str, tiny_onnx: Path, clip: Path, tmp_path: Path, capsys
) -> None:
    (tmp_path / "notavideo.mp4").write_bytes(b"\x00" * 64)
    before = sorted(tmp_path.iterdir())
    argv = ["live", "--model", str(tiny_onnx), "--source", str(tmp_path / source), "-o", str(tmp_path / output)]
    code, out, err = run_cli([*argv, "--no-window"], capsys)
    assert code == 2 and out == ""
    one_error_line(err, needle)
    assert sorted(tmp_path.iterdir()) == before


def test_no_window_needs_an_output(tiny_onnx: Path, clip: Path, capsys) -> None:
    code, _, err = run_cli(["live", "--model", str(tiny_onnx), "--source", str(clip), "--no-window"], capsys)
    assert code == 2
    one_error_line(err, "--no-window without -o")


@pytest.mark.parametrize("moment", ["model-load", "first-frame"])
def test_ctrl_c_before_the_first_frame_is_one_line_and_no_recording(
    moment: str, tiny_onnx: Path, clip: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    import infer.live.run
    import infer.stylize.run

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    target = (infer.stylize.run, "load_model") if moment == "model-load" else (infer.live.run.Capture, "frames")
    monkeypatch.setattr(*target, interrupt)
    out = tmp_path / "live.mp4"
    argv = ["live", "--model", str(tiny_onnx), "--source", str(clip), "-o", str(out), "--no-window"]
    code, stdout, err = run_cli(argv, capsys)
    assert code == 130 and stdout == "" and err.strip() == "nst live: error: interrupted", err
    assert not out.exists() and not leftovers(tmp_path)


def test_the_next_style_key_switches_a_network_of_several_styles(multi_onnx: Path, clip: Path) -> None:
    """n or the space bar in the window: the next frame is painted in the next style (after the last, the first),
    with --temporal restarted so nothing of the old style is carried over; the run reports the styles shown."""
    import numpy as np

    from infer.live.run import open_capture, run_live
    from infer.stylize.stylizer import FrameOptions, Stylizer

    class Keys:
        """A window whose user presses n after frames 3 and 6, and shows nothing."""

        def __init__(self) -> None:
            self.frames: list[np.ndarray] = []

        def show(self, frame: np.ndarray) -> str | None:
            self.frames.append(frame)
            return "next" if len(self.frames) in (3, 6) else None

    stylizer, window = Stylizer(multi_onnx, spinning=False, style="rocket"), Keys()
    capture = open_capture(str(clip))
    try:
        result = run_live(stylizer, capture, FrameOptions(size=24, temporal=0.7), window=window)  # type: ignore[arg-type]
    finally:
        capture.close()
    assert result.frames == 12 and result.styles_shown == ["rocket", "chelsea", "coffee"]
    source = open_capture(str(clip))
    try:
        frames = list(source.frames())
    finally:
        source.close()
    for index, name in ((0, "rocket"), (3, "chelsea"), (6, "coffee")):
        # the first frame in a style is the network's own picture in it: nothing of the old style blended in
        alone = next(Stylizer(multi_onnx, style=name).stylize_frames(iter([frames[index]]), FrameOptions(size=24)))
        assert np.array_equal(window.frames[index], alone), name
    assert not np.array_equal(window.frames[3], window.frames[2])
