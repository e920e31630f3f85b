"""The models `nst app` offers: found in one folder, loaded once, each with its style image when findable.

No gradio and no torch here: the catalogue is plain files, and a `Stylizer` is only built (and kept)
when a model is first used, so the app starts at once even with many models.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from nst_core.builtin_styles import builtin_style_path
from nst_core.checkpoint_io import CHECKPOINTS_DIR, NETWORK_FILE
from nst_core.errors import NSTError
from nst_core.image_io import is_image_file

if TYPE_CHECKING:
    from infer.stylize.stylizer import Stylizer

NO_MODEL_HELP = (
    "No model yet. Train one with `nst train --style STYLE.jpg --data PHOTOS/ -o runs/mystyle`, "
    "export it with `nst export runs/mystyle -o models/mystyle.onnx`, then start `nst app --models models/` "
    "(run folders and .safetensors networks work too)."
)


@dataclass(frozen=True)
class ModelEntry:
    """One offered model: its label in the list, its path, and its style image (None when not found)."""

    label: str
    path: Path
    style: Path | None


def _style_from_config(config: str | dict | None, base: Path) -> Path | None:
    """The ``style`` image of a training config (JSON text or a dict): under ``base``, else as written."""
    if isinstance(config, str):
        try:
            config = json.loads(config)
        except json.JSONDecodeError:
            return None
    style = config.get("style") if isinstance(config, dict) else None
    if not isinstance(style, str) or style.startswith("skimage:"):
        return None
    # exported models keep only the file name (no paths of the training machine): look beside the model too
    candidates = [base / style, base / Path(style).name, Path(style)]  # base / an absolute path = that path
    found = next((p for p in candidates if p.is_file() and is_image_file(p)), None)
    return found or builtin_style_path(style)  # a built-in style's name (`style: starry_night`)


def _onnx_config(path: Path) -> str | None:
    """The ``nst.config`` metadata of an ONNX file, read without building a session (graph only, no weights)."""
    try:
        import onnx

        model = onnx.load(str(path), load_external_data=False)
    except Exception:  # not our concern here: a model that does not load says so when it is used
        return None
    return next((p.value for p in model.metadata_props if p.key == "nst.config"), None)


def find_style(path: Path) -> Path | None:
    """The style image a model was trained on: a sibling image named like the model, else its training config."""
    stem = path.stem if path.is_file() else path.name
    for sibling in sorted(path.parent.glob(f"{stem}.*")):
        if sibling != path and is_image_file(sibling):
            return sibling
    if path.is_dir() and (path / "config.yaml").is_file():
        import yaml

        try:
            config = yaml.safe_load((path / "config.yaml").read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            return None
        return _style_from_config(config, path.parent)
    if path.suffix.lower() == ".onnx":
        return _style_from_config(_onnx_config(path), path.parent)
    return None


def scan_models(folder: Path | None) -> list[ModelEntry]:
    """Every model under ``folder``: ``.onnx`` files, run folders (their ``network.safetensors``) and other
    ``.safetensors`` networks outside checkpoint folders; sorted by label."""
    if folder is None:
        return []
    if not folder.is_dir():
        raise NSTError(f"{folder}: --models must be a folder")
    found: dict[Path, None] = {}
    for p in sorted(folder.rglob("*")):
        if CHECKPOINTS_DIR in p.relative_to(folder).parts or not p.is_file():
            continue
        if p.suffix.lower() == ".onnx":
            found[p] = None
        elif p.name == NETWORK_FILE:
            found[p.parent] = None
        elif p.suffix.lower() == ".safetensors":
            found[p] = None
    entries = [ModelEntry(str(p.relative_to(folder)) if p != folder else p.name, p, find_style(p)) for p in found]
    return sorted(entries, key=lambda e: e.label)


def shipped_entries(taken: set[str]) -> list[ModelEntry]:
    """The models that ship with the package, by name (a --models entry of the same label wins)."""
    from infer.models.shipped import shipped_models

    return [ModelEntry(m.name, m.path, m.style_image) for m in shipped_models() if m.name not in taken]


class ModelCatalogue:
    """The offered models (``--models``, then the shipped ones by name), and their Stylizers, each built on
    first use and kept (one at a time: a lock)."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        found = scan_models(folder)
        self.entries = found + shipped_entries({e.label for e in found})
        self._by_key = {e.label: e for e in self.entries}
        self._loaded: dict[str, Stylizer] = {}
        self._lock = threading.Lock()

    def choices(self) -> list[str]:
        """The dropdown's values: each model's path under the folder, also the stable API argument."""
        return [e.label for e in self.entries]

    def entry(self, key: str | None) -> ModelEntry:
        """The listed model for ``key``; only listed models can be used (an API caller cannot name any file)."""
        if not self.entries:
            raise NSTError(NO_MODEL_HELP)
        if key not in self._by_key:
            raise NSTError(f"unknown model {key!r}; choose one of: {', '.join(self._by_key)}")
        return self._by_key[key]

    def stylizer(self, key: str | None) -> Stylizer:
        """The model's Stylizer, built on first use (onnxruntime loads then) and kept; NSTError if it fails."""
        entry = self.entry(key)
        with self._lock:
            if str(entry.path) not in self._loaded:
                from infer.stylize.stylizer import Stylizer

                try:
                    self._loaded[str(entry.path)] = Stylizer(entry.path)
                except NSTError as e:  # named as the list names it: the server's paths are not the page's business
                    raise NSTError(str(e).replace(str(entry.path), entry.label)) from None
            return self._loaded[str(entry.path)]
