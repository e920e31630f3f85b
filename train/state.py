"""What a run has done so far (step, data position, skipped files, losses), and the RNG states.

Saved with every checkpoint in a form ``torch.load(..., weights_only=True)`` accepts (ints, strings,
lists, dicts, tensors): resuming never unpickles arbitrary objects.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch


@dataclass
class TrainingState:
    """The counters a resumed run continues from; ``history`` is this session's log (not saved)."""

    step: int = 0  # optimizer steps done
    position: int = 0  # global data position: samples consumed, all processes (epoch = position // dataset size)
    skipped: int = 0  # decode failures (events, all processes, whole run)
    skipped_files: list[str] = field(default_factory=list)  # their file names, first seen first
    history: list[tuple[int, dict[str, float]]] = field(default_factory=list)  # (step, loss terms) at log steps

    def note_skipped(self, names: list[str]) -> list[str]:
        """Count unreadable files; returns the names not seen before (to warn about once)."""
        self.skipped += len(names)
        new = [n for n in dict.fromkeys(names) if n not in self.skipped_files]
        self.skipped_files += new
        return new

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "position": self.position,
            "skipped": self.skipped,
            "skipped_files": self.skipped_files,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrainingState:
        return cls(
            step=int(d["step"]),
            position=int(d["position"]),
            skipped=int(d.get("skipped", 0)),
            skipped_files=list(d.get("skipped_files", [])),
        )


def rng_state() -> dict[str, Any]:
    """Python, NumPy, torch (and CUDA) generator states of this process, as plain lists/ints/tensors."""
    version, mt, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": [version, list(mt), gauss],
        "numpy": [name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Inverse of `rng_state`."""
    version, mt, gauss = state["python"]
    random.setstate((int(version), tuple(int(v) for v in mt), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), int(pos), int(has_gauss), float(cached)))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
