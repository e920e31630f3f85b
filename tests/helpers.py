"""Helpers the test modules import (fixtures live in conftest.py): real photos, tiny networks and configs,
clips, and the checks every command-line test makes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image

from nst_core.cli import main
from nst_core.transformer import TransformerNet

#: The development data beside the checkout (see its SOURCES.md); tests that need it skip when it is absent.
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def skimage_photo(name: str) -> Path:
    """Path of a photo shipped inside scikit-image (astronaut.png, chelsea.png, coffee.png, rocket.jpg ...)."""
    import skimage.data

    path = Path(os.path.dirname(skimage.data.__file__)) / name
    if not path.is_file():
        pytest.skip(f"scikit-image does not ship {name}")
    return path


#: onnxruntime (CPU, fp32) vs PyTorch eager on the same network: observed ~1e-6; anything near one
#: 8-bit level (4e-3) would be a real export bug.
ORT_TOLERANCE = 1e-4


def tiny_net() -> TransformerNet:
    """An untrained `small` network, always the same one (the `tiny_onnx` fixture exports it)."""
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


def tiny_train_config(output: Path, data: Path, style: Path | list[Path] | None, **overrides: object):
    """A `small` network trained a few steps on tiny crops on the CPU: enough for the loss to fall and for a
    model to export; ``style``: one image, several (one network of several styles) or None (a distillation);
    ``overrides`` are TrainConfig fields."""
    from train.config import build_config

    styles = [str(s) for s in style] if isinstance(style, list) else str(style) if style else None
    base = dict(style=styles, data=str(data), output=str(output), image_size=48, batch_size=2, variant="small")
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


#: The styles of the `multi_onnx` fixture's network, in the order of its style input.
MULTI_STYLES = ["coffee", "rocket", "chelsea"]


def multi_net() -> TransformerNet:
    """An untrained `small` network of three styles (`MULTI_STYLES`), always the same one, with random norm scales
    and shifts so that each style paints differently, as trained ones do (the `multi_onnx` fixture exports it)."""
    torch.manual_seed(4321)
    net = TransformerNet.from_variant("small", styles=len(MULTI_STYLES))
    with torch.no_grad():
        for norm in net.style_norms:
            norm.weight.copy_(1 + 0.3 * torch.randn(norm.weight.shape))
            norm.bias.copy_(0.3 * torch.randn(norm.bias.shape))
    return net.eval()


#: Debian's chromium, which the browser tests drive through playwright (no browser download).
CHROMIUM = Path("/usr/bin/chromium")


@contextmanager
def chromium(*args: str) -> Iterator[Any]:
    """Debian's headless chromium (with extra command-line ``args``) through playwright; the test skips, saying
    why, when either is missing."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found: install Debian's chromium (apt-get install chromium); .ci/run does")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the [dev] extra")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", *args])
        try:
            yield browser
        finally:
            browser.close()


def fake_dist(folder: Path, version: str | None = None) -> Path:
    """An npm install's layout with placeholder onnxruntime-web files (for building `nst web` pages without a
    browser); its ``node_modules`` folder, for ``--ort``. ``version``: the package's (default: the pinned one)."""
    import json

    from infer.web import runtime

    package = folder / "node_modules" / "onnxruntime-web"
    (package / "dist").mkdir(parents=True)
    meta = {"name": "onnxruntime-web", "version": version or runtime.VERSION}
    (package / "package.json").write_text(json.dumps(meta))
    for name in runtime.needed(list(runtime.BACKENDS)):
        (package / "dist" / name).write_bytes(b"placeholder " + name.encode())
    return folder / "node_modules"


def zoo_convention_onnx(path: Path, dynamic: bool = True) -> Path:
    """`tiny_net` as the ONNX model zoo's fast-neural-style networks are: pixels in 0-255 in and out, input ``input1``
    and output ``output1``, torch's legacy exporter; ``dynamic``: any size, else 64x64 only (as the zoo's 224x224)."""

    class ZooConvention(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = tiny_net()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net(x / 255.0) * 255.0

    axes = {0: "n", 2: "h", 3: "w"}
    torch.onnx.export(
        ZooConvention().eval(),
        (torch.rand(1, 3, 64, 64) * 255,),
        str(path),
        input_names=["input1"],
        output_names=["output1"],
        dynamic_axes={"input1": axes, "output1": axes} if dynamic else None,
        dynamo=False,
    )
    return path
