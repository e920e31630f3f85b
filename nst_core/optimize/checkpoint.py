"""Checkpoints of an optimize run, so a poster that takes hours outlives its session (`nst optimize --resume`).

A checkpoint is written at the end of every scale but the last (the picture reached: a few MB) and, within a
scale, every ``checkpoint_every`` seconds between optimizer chunks (the pixels, the best point so far and the
optimizer's own state: L-BFGS's history is up to ~1.5 GB at 2048-4096 px). The optimizer runs in chunks with
or without checkpoints, and its state is saved whole, so a resumed run takes exactly the steps the
uninterrupted one takes. Settings that change the result, and the input pictures' pixels, are recorded: a
checkpoint of another run is refused with the settings that differ.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from nst_core.errors import NSTError
from nst_core.files import atomic_path
from nst_core.optimize.config import OptimizeConfig

VERSION = 1
# Settings that do not change the picture or the steps taken (``init`` is recorded as its pixels instead).
_NOT_RESULT = {
    "init",
    "preview",
    "save_every",
    "save_prefix",
    "progress",
    "device",
    "channels_last",
    "checkpoint",
    "checkpoint_every",
    "resume",
    "max_time",
}


def _digest(image: Image.Image) -> str:
    return hashlib.sha256(f"{image.mode}{image.size}".encode() + image.tobytes()).hexdigest()[:16]


def fingerprint(
    cfg: OptimizeConfig, content: Image.Image, styles: list[Image.Image], init: Image.Image | None
) -> dict[str, Any]:
    """What makes one run's checkpoint another's: the result-changing settings and the inputs' pixels."""
    keep = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg) if f.name not in _NOT_RESULT}
    keep |= {"loss": dataclasses.asdict(cfg.loss), "content": _digest(content), "styles": [_digest(s) for s in styles]}
    keep["init"] = f"image {_digest(init)}" if init is not None else cfg.init
    return json.loads(json.dumps(keep, default=list))  # tuples as lists, as they come back from the file


class OptimizeCheckpointer:
    """Saves and loads one run's checkpoint at ``path``, atomically, and says when the next one is due."""

    def __init__(self, path: str | Path, fingerprint: dict[str, Any], every: float) -> None:
        self.path, self.fingerprint, self.every = Path(path), fingerprint, every
        self.last = time.perf_counter()

    def due(self) -> bool:
        return time.perf_counter() - self.last >= self.every

    def save(self, state: dict[str, Any]) -> None:
        """Write ``state`` (tensors, numbers, lists, dicts) with the run's fingerprint, replacing the last one."""
        with atomic_path(self.path) as tmp:
            torch.save({"version": VERSION, "fingerprint": self.fingerprint, **state}, tmp)
        self.last = time.perf_counter()

    def load(self) -> dict[str, Any]:
        """The saved state; NSTError when there is none, it is unreadable, or it belongs to other settings."""
        if not self.path.is_file():
            raise NSTError(f"{self.path}: no checkpoint to resume (a run writes it beside its output as it goes)")
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as e:  # any unreadable file gets the same one line
            raise NSTError(f"{self.path}: not a readable optimize checkpoint ({type(e).__name__})") from None
        if not isinstance(state, dict) or state.get("version") != VERSION:
            raise NSTError(f"{self.path}: not an optimize checkpoint of this version ({VERSION})")
        differ = _differences(state["fingerprint"], self.fingerprint)
        if differ:
            raise NSTError(f"{self.path}: made by a run with other settings ({differ}); drop --resume to start afresh")
        self.last = time.perf_counter()
        return state

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def _differences(saved: dict[str, Any], now: dict[str, Any]) -> str:
    """``size 2048 -> 4096, content changed``: what a user must put back to resume."""
    parts = []
    for key in sorted(set(saved) | set(now)):
        old, new = saved.get(key), now.get(key)
        if old != new:
            pixels = key in ("content", "styles") or all(str(v).startswith("image ") for v in (old, new))
            parts.append(f"{key} image changed" if pixels else f"{key} {old} -> {new}")
    return ", ".join(parts)
