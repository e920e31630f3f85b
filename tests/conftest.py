"""Fixtures shared by the test modules (their helpers are in tests/helpers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from tests.helpers import MULTI_STYLES, multi_net, skimage_photo, tiny_net

#: The photos of the training tests' image folder (`photo_dir`).
TRAIN_PHOTOS = ("astronaut.png", "chelsea.png", "rocket.jpg", "motorcycle_left.png")


@pytest.fixture(scope="session")
def photo_dir(tmp_path_factory) -> Path:
    """Four real photos, shrunk to 96 px (decoding stays cheap), one in a subfolder (recursion)."""
    root = tmp_path_factory.mktemp("photos")
    (root / "sub").mkdir()
    for i, name in enumerate(TRAIN_PHOTOS):
        img = Image.open(skimage_photo(name)).convert("RGB")
        img.thumbnail((96, 96))
        img.save(root / ("sub" if i == 3 else ".") / f"{Path(name).stem}.jpg", quality=90)
    return root


@pytest.fixture(scope="session")
def multi_onnx(tmp_path_factory) -> Path:
    """`multi_net` exported: a network of three styles (`MULTI_STYLES`), each painting differently."""
    from infer.export.exporter import export_onnx

    out = tmp_path_factory.mktemp("multi_onnx") / "multi.onnx"
    return export_onnx(multi_net(), out, metadata={"styles": MULTI_STYLES}).path


@pytest.fixture(scope="session")
def content_path() -> Path:
    return skimage_photo("astronaut.png")


@pytest.fixture(scope="session")
def style_path() -> Path:
    return skimage_photo("coffee.png")


@pytest.fixture(scope="session")
def style_path2() -> Path:
    return skimage_photo("rocket.jpg")


@pytest.fixture(autouse=True)
def _seed() -> None:
    """Every test starts from the same torch random state."""
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def tiny_onnx(tmp_path_factory) -> Path:
    """An untrained, seeded `small` TransformerNet exported to ONNX with `infer.export.exporter.export_onnx` (fp32,
    dynamic batch/height/width, metadata style "tiny-test"); shared by the inference and compare tests."""
    from infer.export.exporter import export_onnx

    out = tmp_path_factory.mktemp("tiny_onnx") / "tiny.onnx"
    return export_onnx(tiny_net(), out, metadata={"style": "tiny-test"}).path


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread for a module: deterministic, and far faster than 2 spinning threads on a
    shared CPU at the tiny sizes of the training tests."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
