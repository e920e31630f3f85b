"""The pretrained models that ship with the package: ``infer/models/<name>.onnx``, one per style.

Each file describes itself: the release tool (``tools/ship.py``) stores its model card's facts in ``nst.*``
metadata (the keys below), so the registry is the folder and nothing else. ``NST_MODELS_DIR`` points it at
another folder (tests, or a user's own collection). `resolve_model` is how every ``--model`` takes a name: an existing
path always wins, then a shipped name.

No torch and no onnx import: `nst models` reads the metadata straight from the protobuf (`read_metadata`).
"""

from __future__ import annotations

import json
import os
import statistics
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from infer.models.hub import hub_model, is_hub_name
from nst_core.errors import NSTError

#: Environment variable naming a folder to use instead of the package's own ``infer/models``.
MODELS_ENV = "NST_MODELS_DIR"
PACKAGE_MODELS = Path(__file__).resolve().parent
SUFFIX = ".onnx"

#: The card's facts in the ONNX metadata (besides the exporter's own nst.variant, nst.step, nst.config ...).
NAME_KEY = "nst.name"
STYLE_KEY = "nst.style"
STYLES_KEY = "nst.styles"  # JSON list: the styles of a network of several styles (infer.export.format)
STYLE_FILE_KEY = "nst.style_file"
STYLE_SOURCE_KEY = "nst.style_source"
TRAINING_KEY = "nst.training"  # JSON list of stages: steps, batch_size, image_size, images_seen, wall_time, hardware
DATA_KEY = "nst.data"
LOSS_KEY = "nst.loss"  # JSON: the run's loss section
HOW_KEY = "nst.how"
#: JSON: {"256": {...}, "256/noise": {...}}: per size and optimizer start, {"size", "start", "photos": [{"name",
#: "iterations"}], "max_steps", "median"}; the start from the photo keeps the bare size (its key before starts).
COMPARE_KEY = "nst.compare"
#: JSON list: the photos of the card's sample picture (the card is regenerated from the metadata alone).
SAMPLE_PHOTOS_KEY = "nst.sample_photos"


def models_dir() -> Path:
    """The folder of shipped models: ``$NST_MODELS_DIR`` when set, else the package's ``infer/models``."""
    return Path(os.environ[MODELS_ENV]) if os.environ.get(MODELS_ENV) else PACKAGE_MODELS


def model_files(folder: Path | None = None) -> list[Path]:
    """The ``<name>.onnx`` files of the folder, sorted by name (none when it does not exist)."""
    folder = models_dir() if folder is None else folder
    return sorted(folder.glob(f"*{SUFFIX}")) if folder.is_dir() else []


def shipped_names(folder: Path | None = None) -> list[str]:
    return [p.stem for p in model_files(folder)]


# ---------------------------------------------------------------------------------------------- metadata


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        pos, shift = pos + 1, shift + 7
        if byte < 0x80:
            return value, pos


def _fields(data: bytes) -> list[tuple[int, bytes | int]]:
    """The top-level (field number, value) pairs of a protobuf message; nested messages left as bytes."""
    out: list[tuple[int, bytes | int]] = []
    pos = 0
    while pos < len(data):
        tag, pos = _varint(data, pos)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value, pos = _varint(data, pos)
            out.append((number, value))
        elif wire == 2:
            size, pos = _varint(data, pos)
            out.append((number, data[pos : pos + size]))
            pos += size
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
    return out


#: ModelProto.metadata_props and StringStringEntryProto's key/value (onnx.proto): fixed by the ONNX format.
_METADATA_FIELD, _KEY_FIELD, _VALUE_FIELD = 14, 1, 2


def read_metadata(path: Path) -> dict[str, str]:
    """An ONNX file's ``metadata_props``, parsed from the protobuf without onnx or onnxruntime (a few ms:
    `nst models` stays instant); NSTError naming the file if it is not ONNX."""
    try:
        entries = [value for number, value in _fields(path.read_bytes()) if number == _METADATA_FIELD]
        pairs = [dict(_fields(entry)) for entry in entries if isinstance(entry, bytes)]
        return {p[_KEY_FIELD].decode(): p.get(_VALUE_FIELD, b"").decode() for p in pairs if _KEY_FIELD in p}
    except (OSError, ValueError, IndexError, UnicodeDecodeError, AttributeError) as e:
        raise NSTError(f"{path}: cannot read its ONNX metadata ({type(e).__name__}: {e})") from None


def _json(metadata: dict[str, str], key: str, default: Any) -> Any:
    try:
        return json.loads(metadata[key]) if key in metadata else default
    except json.JSONDecodeError:
        return default


# ---------------------------------------------------------------------------------------------- models


def compare_key(size: int, start: str = "content") -> str:
    """The ``nst.compare`` key of the figures at ``size`` px from ``start`` (``content``: the photo, or ``noise``)."""
    return str(size) if start == "content" else f"{size}/{start}"


def median_text(iterations: list[int | None], max_steps: int) -> str:
    """The median iterations to match over the photos; an unmatched photo counts as more than ``max_steps``."""
    if not iterations:
        return "-"
    values = sorted(float("inf") if i is None else i for i in iterations)
    mid = statistics.median(values)
    return f">{max_steps}" if mid == float("inf") else f"{mid:g}"


@dataclass(frozen=True)
class ShippedModel:
    """One shipped model: its name (the file stem), file and metadata; the card's facts as properties."""

    name: str
    path: Path
    metadata: dict[str, str]

    @property
    def style(self) -> str:
        return self.metadata.get(STYLE_KEY, "-")

    @property
    def styles(self) -> list[str]:
        """A network of several styles: their names, in the order of its style input; [] for one style."""
        names = _json(self.metadata, STYLES_KEY, [])
        return [str(n) for n in names] if isinstance(names, list) and len(names) > 1 else []

    @property
    def style_image(self) -> Path | None:
        """The built-in style image (``nst.style_file``, relative to the packages' folder) when it is installed."""
        file = self.metadata.get(STYLE_FILE_KEY)
        path = Path(__file__).resolve().parents[2] / file if file else None
        return path if path is not None and path.is_file() else None

    @property
    def variant(self) -> str:
        return self.metadata.get("nst.variant", "-")

    @cached_property
    def stages(self) -> list[dict[str, Any]]:
        stages = _json(self.metadata, TRAINING_KEY, [])
        return stages if isinstance(stages, list) else []

    @property
    def steps(self) -> int | None:
        steps = [s.get("steps") for s in self.stages]
        return sum(steps) if steps and all(isinstance(s, int) for s in steps) else None

    @property
    def images_seen(self) -> int | None:
        seen = [s.get("images_seen") for s in self.stages]
        return sum(seen) if seen and all(isinstance(s, int) for s in seen) else None

    @property
    def size_bytes(self) -> int:
        return self.path.stat().st_size

    @property
    def sample_photos(self) -> list[str] | None:
        """The photos of the card's sample picture, when the file records them."""
        photos = _json(self.metadata, SAMPLE_PHOTOS_KEY, None)
        return [str(p) for p in photos] if isinstance(photos, list) and photos else None

    @cached_property
    def compare(self) -> dict[str, dict[str, Any]]:
        figures = _json(self.metadata, COMPARE_KEY, {})
        return figures if isinstance(figures, dict) else {}

    def iterations_to_match(self, size: int, start: str = "content") -> str:
        """The median optimizer iterations, started from ``start``, to match the network at ``size`` px; ``-``
        when not measured."""
        figures = self.compare.get(compare_key(size, start))
        return str(figures.get("median", "-")) if isinstance(figures, dict) else "-"

    def to_dict(self) -> dict[str, Any]:
        """What `nst models --json` prints for this model."""
        return {
            "name": self.name,
            "path": str(self.path),
            "style": self.style,
            "styles": self.styles,
            "style_file": self.metadata.get(STYLE_FILE_KEY),
            "style_source": self.metadata.get(STYLE_SOURCE_KEY),
            "variant": self.variant,
            "steps": self.steps,
            "images_seen": self.images_seen,
            "training": self.stages,
            "data": self.metadata.get(DATA_KEY),
            "loss": _json(self.metadata, LOSS_KEY, None),
            "how": self.metadata.get(HOW_KEY),
            "size_bytes": self.size_bytes,
            "precision": self.metadata.get("nst.precision"),
            "compare": self.compare,
            "version": self.metadata.get("nst.version"),
        }


def shipped_models(folder: Path | None = None) -> list[ShippedModel]:
    """Every shipped model with its metadata, sorted by name."""
    return [ShippedModel(p.stem, p, read_metadata(p)) for p in model_files(folder)]


def find_shipped(name: str, folder: Path | None = None) -> Path | None:
    """The file of the shipped model ``name``, or None."""
    return next((p for p in model_files(folder) if p.stem == name), None)


#: Sub-folder of the shipped models holding int8 copies of some of them (same name, same metadata but
#: ``nst.precision``), which `Stylizer` runs instead on the CPU: measured as good (iterations to match within one
#: of the fp32 file's) and 1.4x faster there (benchmarks/README.md, "int8 on the CPU").
INT8_DIR = "int8"


def int8_copy(path: Path) -> Path | None:
    """The shipped int8 copy of ``path`` when ``path`` is a shipped model's file and one ships, else None."""
    folder = models_dir()
    if path.parent.resolve() != folder.resolve():
        return None
    copy = folder / INT8_DIR / path.name
    return copy if copy.is_file() else None


def resolve_model(text: str | os.PathLike, folder: Path | None = None) -> str:
    """What a ``--model`` names: an existing path (always wins), a model on the Hugging Face Hub
    (``hf://OWNER/REPO[/FILE.onnx][@REVISION]``, `infer.models.hub`: its file in the local cache), else a shipped
    model's file; else one NSTError line listing the shipped names."""
    if Path(text).exists():
        return str(text)
    if is_hub_name(str(text)):
        return hub_model(str(text))
    found = find_shipped(str(text), folder)
    if found is not None:
        return str(found)
    names = shipped_names(folder)
    shipped = f"shipped models: {', '.join(names)}" if names else "no pretrained models ship in this installation yet"
    raise NSTError(f"{text}: no such model file, nor a shipped model name ({shipped}; `nst models` lists them)")
