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
        self._check(state)
        differ = _differences(state["fingerprint"], self.fingerprint)
        if differ:
            raise NSTError(f"{self.path}: made by a run with other settings ({differ}); drop --resume to start afresh")
        self.last = time.perf_counter()
        return state

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)

    def damaged(self, field: str, value: Any, expected: str) -> NSTError:
        """The one line for a checkpoint field that is not what this code reads (a damaged or foreign file)."""
        shown = f"a tensor of shape {list(value.shape)}" if isinstance(value, torch.Tensor) else repr(value)[:60]
        shown = "missing" if value is _MISSING else shown
        return NSTError(
            f"{self.path}: field {field!r} is {shown}, expected {expected} (a damaged or hand-edited checkpoint; "
            "drop --resume to start afresh)"
        )

    def _check(self, state: dict[str, Any]) -> None:
        """Every field the run reads, of the type it reads it as, before any of it is used."""
        for field, ok, expected in _fields(state):
            if not ok(_get(state, field)):
                raise self.damaged(field, _get(state, field), expected)


_MISSING = object()


def _get(state: dict[str, Any], field: str) -> Any:
    """``state["a"]["b"]`` for ``"a.b"``; `_MISSING` where a level is absent or not a mapping."""
    value: Any = state
    for key in field.split("."):
        value = value.get(key, _MISSING) if isinstance(value, dict) else _MISSING
    return value


def _image(value: Any) -> bool:
    return (
        isinstance(value, torch.Tensor) and value.dim() == 4 and value.shape[:2] == (1, 3) and value.is_floating_point()
    )


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _numbers(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(k, str) and _number(v) for k, v in value.items())


def _history(value: Any) -> bool:
    return isinstance(value, list | tuple) and all(
        isinstance(h, list | tuple) and len(h) == 3 and all(map(_number, h)) for h in value
    )


def _scales(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(s, dict) for s in value)


def _fields(state: dict[str, Any]) -> list[tuple[str, Any, str]]:
    """(field, test, what it must be) for a finished run's checkpoint or one of a run in progress."""
    common = [("fingerprint", lambda v: isinstance(v, dict), "the run's settings (a mapping)")]
    if "result" in state:
        return [
            *common,
            ("result.tensor", _image, "the picture, a float tensor (1, 3, H, W)"),
            ("result.loss", _numbers, "loss terms (a mapping of numbers)"),
            ("result.initial_loss", _numbers, "loss terms (a mapping of numbers)"),
            ("result.steps", _count, "a step count"),
            ("result.seconds", _number, "seconds"),
            ("result.size", lambda v: isinstance(v, list | tuple) and len(v) == 2 and all(map(_count, v)), "[w, h]"),
            ("result.history", _history, "a list of (step, seconds, loss)"),
            ("result.scales", _scales, "a list of scales"),
        ]
    scale = state.get("scale")
    fields = [
        *common,
        ("step", _count, "a step count"),
        ("elapsed", lambda v: _number(v) and v >= 0, "seconds"),
        ("level", _count, "a scale number"),
        ("history", _history, "a list of (step, seconds, loss)"),
        ("scales", _scales, "a list of scales"),
        ("image", lambda v: v is None or _image(v), "none or a float tensor (1, 3, H, W)"),
        ("scale", lambda v: v is None or isinstance(v, dict), "none or the scale in progress (a mapping)"),
    ]
    if isinstance(scale, dict):
        best = ("value", "start", "p", "terms", "norm")
        fields += [
            ("scale.p", _image, "the pixels, a float tensor (1, 3, H, W)"),
            ("scale.best", lambda v: isinstance(v, dict) and set(v) <= set(best), f"a mapping of {', '.join(best)}"),
            ("scale.first", _count, "a step count"),
            ("scale.end", _count, "a step count"),
            ("scale.losses", lambda v: isinstance(v, list) and all(map(_number, v)), "a list of losses"),
            ("scale.optimizer", lambda v: v is None or isinstance(v, dict), "none or the optimizer's state"),
        ]
    return fields


#: The memory plan: VGG in tiles computes the same loss up to float rounding, so a resumed run may plan anew (a
#: larger --max-memory after a run fell short of it) as long as the L-BFGS history lengths it plans
#: (``history``), which do change the picture, stay the same. Rounding is all a new tiling changes: at most 7 of
#: 255 levels, mean 0.8 (astronaut x starry_night, 64 px, 22 steps, whole vs 32 px tiles); the same plan
#: resumes to the very same pixels.
_PLAN = {"max_memory_gb", "tile"}


def _differences(saved: dict[str, Any], now: dict[str, Any]) -> str:
    """``size 2048 -> 4096, content changed``: what a user must put back to resume."""
    parts = []
    # a checkpoint written before the planned history was recorded: the plan's own settings must match
    ignore = {"history"} if "history" not in saved else _PLAN
    for key in sorted((set(saved) | set(now)) - ignore):
        old, new = saved.get(key), now.get(key)
        if old != new:
            pixels = key in ("content", "styles") or all(str(v).startswith("image ") for v in (old, new))
            parts.append(f"{key} image changed" if pixels else f"{key} {old} -> {new}")
    return ", ".join(parts)
