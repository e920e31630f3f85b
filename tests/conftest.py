"""Shared fixtures: real photos that ship with scikit-image, optional shared data, tiny images."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

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
    """An untrained, seeded `small` TransformerNet exported to ONNX with `infer.export.export_onnx` (fp32,
    dynamic batch/height/width, metadata style "tiny-test"); shared by the inference and compare tests."""
    from infer.export import export_onnx
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
