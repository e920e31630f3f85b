"""Image loading under hostile input: byte-mutated files (hypothesis), decompression bombs, the pixel limit."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

import nst_core.image_io as image_io
from nst_core.errors import NSTError
from nst_core.image_io import open_image, set_max_pixels
from nst_core.log import configure
from tests.helpers import skimage_photo


def _encoded(fmt: str) -> bytes:
    img = Image.open(skimage_photo("chelsea.png")).convert("RGB").resize((24, 16))
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


SAMPLES = {fmt: _encoded(fmt) for fmt in ("PNG", "JPEG", "WEBP", "BMP", "GIF", "TIFF")}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    fmt=st.sampled_from(sorted(SAMPLES)),
    edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=8),
    cut=st.one_of(st.none(), st.integers(0, 10_000)),
)
def test_mutated_images_load_or_fail_with_one_named_line(
    fmt: str, edits: list[tuple[int, int]], cut: int | None
) -> None:
    data = bytearray(SAMPLES[fmt])
    for pos, value in edits:
        data[pos % len(data)] = value
    if cut is not None:
        data = data[: cut % len(data)]
    try:
        img = open_image(bytes(data))
    except NSTError as e:
        message = str(e)
        assert message.startswith("<stdin>: ") and "\n" not in message
        return
    assert img.mode == "RGB" and min(img.size) >= image_io.MIN_SIDE


def test_pixel_limit_is_one_line_and_max_pixels_lifts_it(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    Image.new("RGB", (40, 30)).save(path)
    try:
        set_max_pixels(1000)
        with pytest.raises(NSTError, match=r"40x30 .* --max-pixels 1200"):
            open_image(path)
        set_max_pixels(1200)
        assert open_image(path).size == (40, 30)
    finally:
        set_max_pixels(image_io.DEFAULT_MAX_PIXELS)


def test_large_images_warn_once_on_one_line(tmp_path: Path, monkeypatch, capsys) -> None:
    path = tmp_path / "large.png"
    Image.new("RGB", (40, 30)).save(path)
    monkeypatch.setattr(image_io, "WARN_PIXELS", 1000)
    monkeypatch.setattr(image_io, "_warned", set())
    configure("nst")  # as `nst` does for every command (an earlier test may have left it at -q)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        open_image(path)
        open_image(path)
    assert not caught  # no raw DecompressionBombWarning: Pillow's check is replaced by ours
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"nst: warning: {path} is 40x30")


def test_the_demo_photos_ship_and_open_by_name(tmp_path, monkeypatch) -> None:
    """`chelsea` is a shipped photo (its provenance recorded); `skimage:chelsea` is scikit-image's where it is
    installed and the shipped copy where it is not; an existing file of the name wins."""
    import builtins

    from nst_core.builtin_photos import BUILTIN_PHOTOS, PHOTOS_DIR

    sources = (PHOTOS_DIR / "SOURCES.md").read_text()
    for name in BUILTIN_PHOTOS:
        assert open_image(name).size == Image.open(PHOTOS_DIR / f"{name}.jpg").size and f"{name}.jpg" in sources
    assert str(image_io.resolve_name("skimage:chelsea")).endswith("chelsea.png")  # scikit-image's own
    real_import = builtins.__import__

    def no_skimage(name, *args, **kwargs):
        if name.startswith("skimage"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_skimage)
    assert image_io.resolve_name("skimage:chelsea") == PHOTOS_DIR / "chelsea.jpg"
    with pytest.raises(NSTError, match=r"pip install scikit-image\); the demo photos nst ships are named"):
        image_io.resolve_name("skimage:retina")
    monkeypatch.chdir(tmp_path)
    Image.new("RGB", (8, 8)).save(tmp_path / "chelsea", format="PNG")
    assert image_io.resolve_name("chelsea") == "chelsea"
