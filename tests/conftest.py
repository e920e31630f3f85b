"""Shared fixtures: real photos that ship with scikit-image, optional shared data, tiny images."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from PIL import Image

from nst_core.cli import main
from nst_core.transformer import TransformerNet

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def skimage_photo(name: str) -> Path:
    """Path of a photo shipped inside scikit-image (astronaut.png, chelsea.png, coffee.png, rocket.jpg ...)."""
    import skimage.data

    path = Path(os.path.dirname(skimage.data.__file__)) / name
    if not path.is_file():
        pytest.skip(f"scikit-image does not ship {name}")
    return path


@pytest.fixture(scope="session")
def content_path() -> Path:
    return skimage_photo("astronaut.png")


@pytest.fixture(scope="session")
def style_path() -> Path:
    return skimage_photo("coffee.png")


@pytest.fixture(scope="session")
def style_path2() -> Path:
    return skimage_photo("rocket.jpg")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data beside the checkout; tests that need it skip cleanly when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} not present")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _seed_and_threads() -> None:
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def tiny_onnx(tmp_path_factory) -> Path:
    """An untrained, seeded `small` TransformerNet exported to ONNX with `infer.export.exporter.export_onnx` (fp32,
    dynamic batch/height/width, metadata style "tiny-test"); shared by the inference and compare tests."""
    from infer.export.exporter import export_onnx
    from nst_core.transformer import TransformerNet

    torch.manual_seed(1234)
    net = TransformerNet.from_variant("small").eval()
    out = tmp_path_factory.mktemp("tiny_onnx") / "tiny.onnx"
    return export_onnx(net, out, metadata={"style": "tiny-test"}).path


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread for a module: deterministic, and far faster than 2 spinning threads on a
    shared CPU at the tiny sizes of the training tests."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ---------------------------------------------------------------- helpers of the export and stylize tests

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


def one_error_line(err: str, *needles: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("nst "), err
    for needle in needles:
        assert needle in lines[0], (needle, err)


def tiny_train_config(output: Path, data: Path, style: Path, **overrides: object):
    """A `small` network trained a few steps on tiny crops on the CPU: enough for the loss to fall and for a
    model to export; ``overrides`` are TrainConfig fields."""
    from train.config import build_config

    base = dict(style=str(style), data=str(data), output=str(output), image_size=48, batch_size=2, variant="small")
    base |= dict(num_workers=0, max_steps=12, checkpoint_every=100, sample_every=100, num_samples=2, log_every=1)
    return build_config({**base, "report_to": "none", **overrides})


def make_clip(
    path: Path, frames: int = 12, size: tuple[int, int] = (48, 32), fps: int = 8, tone_hz: float | None = 440.0
) -> Path:
    """A short H.264 clip written with PyAV: a bright square moving across grey and, unless ``tone_hz`` is None,
    a sine tone as long as the picture (AAC, 16 kHz mono): a video with its sound, as a camera gives them."""
    import av
    import numpy as np

    (w, h), rate = size, 16000
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = w, h, "yuv420p"
        audio = out.add_stream("aac", rate=rate, layout="mono") if tone_hz is not None else None
        for i in range(frames):
            frame = np.full((h, w, 3), 90, np.uint8)
            frame[h // 4 : 3 * h // 4, 3 * i : 3 * i + w // 4] = 250
            picture = av.VideoFrame.from_ndarray(frame, format="rgb24")
            picture.pts = i
            out.mux(video.encode(picture))
        out.mux(video.encode(None))
        if audio is not None:
            t = np.arange(rate * frames // fps)
            samples = (0.3 * np.sin(2 * np.pi * tone_hz * t / rate)).astype(np.float32)
            for start in range(0, len(samples), 1024):
                sound = av.AudioFrame.from_ndarray(samples[None, start : start + 1024], format="fltp", layout="mono")
                sound.sample_rate, sound.pts = rate, start
                out.mux(audio.encode(sound))
            out.mux(audio.encode(None))
    return path
