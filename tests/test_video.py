"""Videos through `nst stylize` (PyAV): frames, frame rate and size kept, the sound copied or re-encoded, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import leftovers, make_clip, one_error_line, run_cli

av = pytest.importorskip("av", reason="video extra (PyAV) not installed")


def probe(path: Path) -> dict:
    """What a player sees: frames decoded, their size, and the sound (codec, seconds, strongest frequency)."""
    with av.open(str(path)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    info = {"frames": len(frames), "size": (frames[0].shape[1], frames[0].shape[0]), "audio": None}
    with av.open(str(path)) as c:
        if not c.streams.audio:
            return info
        codec = c.streams.audio[0].codec_context.name
        chunks = [f for f in c.decode(audio=0)]
    rate = chunks[0].sample_rate
    samples = np.concatenate([f.to_ndarray().reshape(f.samples, -1).mean(axis=1) for f in chunks if f.samples])
    spectrum = np.abs(np.fft.rfft(samples))
    peak = float(np.fft.rfftfreq(len(samples), 1 / rate)[spectrum.argmax()])
    info["audio"] = {"codec": codec, "seconds": len(samples) / rate, "peak_hz": peak}
    return info


def stylize(clip: Path, out: Path, model: Path, capsys, *extra: str) -> dict:
    code, stdout, err = run_cli(["stylize", str(clip), "--model", str(model), "-o", str(out), "--json", *extra], capsys)
    assert code == 0, err
    return json.loads(stdout)["images"][0]


def test_video_keeps_its_sound(tiny_onnx: Path, tmp_path: Path, capsys) -> None:
    clip = make_clip(tmp_path / "clip.mp4", frames=12, fps=8)  # 1.5 s of picture and of a 440 Hz tone
    entry = stylize(clip, tmp_path / "styled.mp4", tiny_onnx, capsys, "--smooth", "0.6")
    assert entry["frames"] == 12 and entry["size"] == [48, 32] and entry["fps"] == pytest.approx(8)
    assert entry["audio"] == "aac (copied)" and entry["frames_per_second"] > 0
    got = probe(tmp_path / "styled.mp4")
    assert got["frames"] == 12 and got["size"] == (48, 32)
    assert got["audio"]["seconds"] == pytest.approx(1.5, abs=0.1)
    assert got["audio"]["peak_hz"] == pytest.approx(440, abs=5)  # the same tone, not just some stream
    assert not leftovers(tmp_path)


def test_sound_is_reencoded_when_the_container_refuses_its_codec(tiny_onnx: Path, tmp_path: Path, capsys) -> None:
    clip = make_clip(tmp_path / "clip.mp4", frames=8, fps=8, tone_hz=660.0)
    entry = stylize(clip, tmp_path / "styled.webm", tiny_onnx, capsys)  # WebM takes Opus or Vorbis, not AAC
    assert entry["audio"] == "libopus (re-encoded from aac)"
    got = probe(tmp_path / "styled.webm")
    assert got["frames"] == 8 and got["audio"]["codec"] == "opus"
    assert got["audio"]["seconds"] == pytest.approx(1.0, abs=0.1)
    assert got["audio"]["peak_hz"] == pytest.approx(660, abs=5)


def test_silent_video_and_the_summary_line(tiny_onnx: Path, tmp_path: Path, capsys) -> None:
    clip = make_clip(tmp_path / "clip.mov", frames=5, size=(40, 24), fps=10, tone_hz=None)
    out = tmp_path / "styled.mp4"
    code, _, err = run_cli(["stylize", str(clip), "--model", str(tiny_onnx), "-o", str(out), "--size", "20"], capsys)
    assert code == 0
    assert "5 frames" in err and "frames/s" in err and "sound: none" in err, err
    assert probe(out) == {"frames": 5, "size": (20, 12), "audio": None}


def test_rotated_video_comes_out_upright(tiny_onnx: Path, tmp_path: Path, capsys) -> None:
    """A phone's portrait video is stored landscape with a rotation; the output is portrait pixels."""
    clip = tmp_path / "phone.mp4"
    with av.open(str(clip), "w") as c:
        s = c.add_stream("libx264", rate=5)
        s.width, s.height, s.pix_fmt = 48, 32, "yuv420p"
        s.set_display_rotation(90)
        for i in range(3):
            frame = av.VideoFrame.from_ndarray(np.zeros((32, 48, 3), np.uint8), format="rgb24")
            frame.pts = i
            c.mux(s.encode(frame))
        c.mux(s.encode(None))
    entry = stylize(clip, tmp_path / "styled.mp4", tiny_onnx, capsys)
    assert entry["size"] == [32, 48] and probe(tmp_path / "styled.mp4")["size"] == (32, 48)


def test_not_a_video_is_one_line(tiny_onnx: Path, tmp_path: Path, capsys) -> None:
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"\x00" * 64)
    code, out, err = run_cli(["stylize", str(clip), "--model", str(tiny_onnx), "-o", str(tmp_path / "o.mp4")], capsys)
    assert code == 2 and out == ""
    one_error_line(err, "clip.mp4: cannot read video")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]


def test_video_without_the_extra_says_how_to_install(tiny_onnx: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    clip = make_clip(tmp_path / "clip.mp4", frames=2)
    monkeypatch.setitem(sys.modules, "av", None)  # import now raises ImportError
    code, _, err = run_cli(["stylize", str(clip), "--model", str(tiny_onnx), "-o", str(tmp_path / "o.mp4")], capsys)
    assert code == 2
    one_error_line(err, "nst-toolkit[video]")


def test_a_write_that_fails_half_way_is_one_line_and_leaves_nothing(tiny_onnx: Path, tmp_path: Path) -> None:
    """A real failure inside FFmpeg's own writes: the process may not grow any file past 8 KB (EFBIG)."""
    clip = make_clip(tmp_path / "clip.mp4", frames=24, size=(96, 64), fps=8)
    code = (
        "import resource, signal, sys\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (8192, 8192))\n"
        "from nst_core.cli import main\n"
        f"sys.exit(main(['stylize', {str(clip)!r}, '--model', {str(tiny_onnx)!r}, '-o', {str(tmp_path / 'o.mp4')!r},"
        " '--quality', '100', '-q']))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    one_error_line(proc.stderr, "o.mp4: cannot write (File too large)")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]
