"""The browser page as a folder of static files: the page, the chosen networks, onnxruntime-web, a manifest.

``build_site(SiteConfig(...))`` writes::

    index.html app.js style.css   the page (infer/web/static)
    models.json                   what the page offers: each network's file, styles, paintings and pixel range
    models/NAME.onnx              each network as given; beside it a shipped network's int8 copy (the CPU backend
                                  runs it: 1.15-1.5x faster there) and a float32 copy of one with float16 weights (for
                                  WebGPU devices without float16 shaders)
    paintings/STYLE.jpg           small copies of the built-in paintings the styles come from
    photos/NAME.jpg               a sample photo
    ort/                          the onnxruntime-web files of each backend, and its licence
    README.md                     a Hugging Face Space's settings (a static Space, with the headers threads need)

The folder is built beside the destination and renamed into place, so a failed build leaves nothing half-written;
a destination that exists must be a page this command built (it is replaced) or an empty folder.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from infer.export.format import FORMAT_KEY
from infer.models.shipped import int8_copy, resolve_model
from infer.stylize.stylizer import Stylizer, export_in_memory, is_network_source
from infer.web import runtime
from nst_core.builtin_photos import builtin_photo_path
from nst_core.builtin_styles import builtin_style_path
from nst_core.errors import NSTError

STATIC = Path(__file__).resolve().parent / "static"
PAGE_FILES = ("index.html", "app.js", "style.css")
MANIFEST = "models.json"
#: Networks the page offers when none are named: the multi-style one first (its blends), then the fast ones.
DEFAULT_MODELS = (
    "six_styles_fast",
    "starry_night_fast",
    "the_scream_fast",
    "great_wave_fast",
    "composition_vii_fast",
    "shipwreck_fast",
    "udnie_fast",
)
SAMPLE_PHOTOS = ("chelsea",)
PAINTING_SIDE = 240  # px, the longer side of the painting thumbnails
#: A float32 copy may differ from its float16 original by float16 rounding, no more (output pixels in [0, 1]).
FP32_COPY_TOLERANCE = 0.02

SPACE_README = """---
title: Style transfer in your browser
emoji: 🎨
colorFrom: blue
colorTo: indigo
sdk: static
app_file: index.html
custom_headers:
  cross-origin-embedder-policy: require-corp
  cross-origin-opener-policy: same-origin
  cross-origin-resource-policy: cross-origin
tags:
  - style-transfer
  - onnx
  - onnxruntime-web
---

Neural style transfer in the browser: the networks run on the visitor's device with onnxruntime-web, nothing is
uploaded. The headers above make the page cross-origin isolated, so WebAssembly runs on several threads.
"""


@dataclass(frozen=True)
class SiteConfig:
    """What `nst web` builds: the networks (shipped names, ``.onnx`` files, ``hf://`` names, trained networks), the
    folder, the runtime backends and where the runtime's files come from (None: the cache or the npm registry)."""

    out: Path
    models: tuple[str, ...] = DEFAULT_MODELS
    backends: tuple[str, ...] = runtime.BACKENDS
    ort: Path | None = None
    photos: tuple[str, ...] = SAMPLE_PHOTOS
    precision: str = "auto"  # auto: shipped networks' int8 copies for the CPU backend where one ships; fp32: never
    pixel_range: str | None = None  # networks not made by `nst export` (no nst.format): 0-1 or 0-255 (the model zoo's)


@dataclass
class WebModel:
    """One network on the page: what models.json says of it."""

    name: str
    file: str
    styles: list[str]
    input_scale: float
    variant: str
    bytes: int
    file_fp32: str | None = None
    file_int8: str | None = None
    fixed_size: list[int] | None = None  # [height, width] of a network that takes one size only (the page resizes)
    paintings: dict[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        kind = f"{len(self.styles)} styles" if len(self.styles) > 1 else self.styles[0].replace("_", " ")
        return f"{self.name} ({kind}, {self.bytes / 1e6:.1f} MB)"

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "label": self.label}


def _unique(name: str, taken: set[str]) -> str:
    candidate, k = name, 2
    while candidate in taken:
        candidate, k = f"{name}-{k}", k + 1
    taken.add(candidate)
    return candidate


def _model_source(text: str, dest: Path) -> tuple[str, Path, Path | None]:
    """(name, the ONNX file to check, the shipped int8 copy or None) of what ``--model`` names: an ONNX file is
    checked where it is (so an error names it as the user gave it), a trained network is exported to ``dest``
    first (in memory; needs torch)."""
    path = Path(resolve_model(text))
    if is_network_source(path):
        dest.write_bytes(export_in_memory(path))
        return path.stem if path.suffix else path.name, dest, None
    return path.stem, path, int8_copy(path)


def _fp32_copy(network: Stylizer, file: Path, dest: Path, pixel_range: str | None) -> bool:
    """A float32 copy of ``file`` (loaded as ``network``, read in ``pixel_range``) at ``dest`` when it computes in
    float16, checked against it; False if not, or without the onnx package (the light install: WebGPU then runs such
    a network only with float16 shaders)."""
    try:
        import onnx

        from infer.export.precision import fp32_model, has_fp16
    except ImportError:
        return False

    model = onnx.load(str(file))
    if not has_fp16(model):
        return False
    onnx.save(fp32_model(model), str(dest))
    x = np.random.default_rng(0).random((1, 3, 40, 56), dtype=np.float32)
    copy = Stylizer(dest, provider="cpu", precision="fp32", pixel_range=pixel_range)
    error = float(np.abs(network.run_array(x) - copy.run_array(x)).max())
    if error > FP32_COPY_TOLERANCE:
        raise NSTError(f"{file.name}: its float32 copy differs by {error:.3g} (over {FP32_COPY_TOLERANCE})")
    return True


def _painting(style: str, folder: Path) -> str | None:
    """A thumbnail of the built-in painting ``style`` in ``folder``; its page-relative path (None: not built in)."""
    path = builtin_style_path(style)
    if path is None:
        return None
    dest = folder / "paintings" / f"{style}.jpg"
    if not dest.exists():
        dest.parent.mkdir(exist_ok=True)
        with Image.open(path) as image:
            image = image.convert("RGB")
            image.thumbnail((PAINTING_SIDE, PAINTING_SIDE), Image.Resampling.LANCZOS)
            image.save(dest, quality=88)
    return dest.relative_to(folder).as_posix()


def add_model(text: str, folder: Path, taken: set[str], config: SiteConfig) -> WebModel:
    """Write the network ``text`` names into ``folder``/models, checked by loading it; its manifest entry."""
    (folder / "models").mkdir(exist_ok=True)
    exported = folder / "models" / ".exported.onnx"
    stem, source, int8 = _model_source(text, exported)
    model = Stylizer(source, provider="cpu", precision="fp32")  # an image model? if not, one line naming the file
    metadata = model.metadata
    pixel_range = None if FORMAT_KEY in metadata else config.pixel_range  # ours say their range themselves
    if pixel_range:
        model = Stylizer(source, provider="cpu", precision="fp32", pixel_range=pixel_range)
    name = _unique(stem, taken)
    dest = folder / "models" / f"{name}.onnx"
    if source == exported:
        source.rename(dest)
    else:
        shutil.copyfile(source, dest)
    styles = model.styles or [model.metadata.get("nst.style") or name]
    entry = WebModel(
        name=name,
        file=dest.relative_to(folder).as_posix(),
        styles=styles,
        input_scale=model.input_scale,
        variant=metadata.get("nst.variant", "-"),
        bytes=dest.stat().st_size,
        fixed_size=list(model.fixed_size) if model.fixed_size else None,
    )
    fp32 = dest.with_name(f"{name}.fp32.onnx")
    if _fp32_copy(model, dest, fp32, pixel_range):
        entry.file_fp32 = fp32.relative_to(folder).as_posix()
    if int8 is not None and config.precision == "auto":
        copy = dest.with_name(f"{name}.int8.onnx")
        shutil.copyfile(int8, copy)
        Stylizer(copy, provider="cpu", precision="fp32")  # loads
        entry.file_int8 = copy.relative_to(folder).as_posix()
    entry.paintings = {s: p for s in styles if (p := _painting(s, folder))}
    return entry


def _add_photos(names: tuple[str, ...], folder: Path) -> list[str]:
    (folder / "photos").mkdir()
    paths = []
    for name in names:
        source = builtin_photo_path(name)
        if source is not None:
            shutil.copyfile(source, folder / "photos" / source.name)
            paths.append(f"photos/{source.name}")
    return paths


def _add_runtime(config: SiteConfig, folder: Path) -> None:
    (folder / "ort").mkdir()
    for name, path in runtime.runtime_files(list(config.backends), config.ort).items():
        shutil.copyfile(path, folder / "ort" / name)
    (folder / "ort" / "LICENSE.txt").write_text(runtime.NOTICE)


def _write(config: SiteConfig, folder: Path) -> dict[str, Any]:
    taken: set[str] = set()
    models = [add_model(text, folder, taken, config) for text in config.models]
    _add_runtime(config, folder)
    manifest = {
        "runtime": runtime.VERSION,
        "backends": list(config.backends),
        "models": [m.to_dict() for m in models],
        "photos": _add_photos(config.photos, folder),
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1))
    for name in PAGE_FILES:
        shutil.copyfile(STATIC / name, folder / name)
    (folder / "README.md").write_text(SPACE_README)
    return manifest


def is_site(folder: Path) -> bool:
    """A folder this command built (it may be replaced by the next build)."""
    return (folder / MANIFEST).is_file() and (folder / "index.html").is_file() and (folder / "ort").is_dir()


def _check_destination(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise NSTError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not is_site(out):
        raise NSTError(f"{out}: a folder with other files in it; give a new or empty folder (or a page built before)")
    if not out.parent.is_dir():
        raise NSTError(f"{out}: output folder {out.parent} does not exist")


def build_site(config: SiteConfig) -> dict[str, Any]:
    """Build the page into ``config.out`` (replacing a page built there before); its manifest."""
    out = config.out
    _check_destination(out)
    if not config.models:
        raise NSTError("no network to put on the page: name one or more with --model")
    runtime.needed(list(config.backends))  # a bad backend name: one line before any work
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        manifest = _write(config, work)
        work.chmod(0o755)
        if out.exists():
            old = out.with_name(f".{out.name}.old.{work.name}")
            out.rename(old)
            work.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            work.rename(out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return manifest


def site_size(folder: Path) -> int:
    """Bytes of every file in ``folder``."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
