"""What a run has done so far (step, data position, skipped files, losses).

Registered with ``Accelerator.register_for_checkpointing``: saved with every checkpoint as plain ints,
strings and lists, which ``torch.load(..., weights_only=True)`` accepts (train.checkpoint checks that
before accelerate unpickles it). The RNG states are accelerate's (one file per process).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass
class TrainingState:
    """The counters a resumed run continues from; ``history`` is this session's log (not saved)."""

    step: int = 0  # optimizer steps done
    position: int = 0  # global data position: samples consumed, all processes (epoch = position // dataset size)
    skipped: int = 0  # decode failures (events, all processes, whole run)
    skipped_files: list[str] = field(default_factory=list)  # their file names, first seen first
    stream_positions: list[int] = field(default_factory=list)  # streaming: each process's own stream position
    seconds: float = 0.0  # wall-clock time of the training loop, all sessions of the run (for model cards)
    progress: float = 0.0  # fraction of the run's schedule done (train.schedule), where a resumed run goes on
    history: list[tuple[int, dict[str, float]]] = field(default_factory=list)  # (step, loss terms) at log steps

    def note_skipped(self, names: list[str]) -> list[str]:
        """Count unreadable files; returns the names not seen before (to warn about once)."""
        self.skipped += len(names)
        new = [n for n in dict.fromkeys(names) if n not in self.skipped_files]
        self.skipped_files += new
        return new

    def state_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "position": self.position,
            "skipped": self.skipped,
            "skipped_files": list(self.skipped_files),
            "stream_positions": list(self.stream_positions),
            "seconds": self.seconds,
            "progress": self.progress,
        }

    def load_state_dict(self, d: Mapping[str, Any]) -> None:
        self.step = int(d["step"])
        self.position = int(d["position"])
        self.skipped = int(d.get("skipped", 0))
        self.skipped_files = [str(n) for n in d.get("skipped_files", [])]
        self.stream_positions = [int(p) for p in d.get("stream_positions", [])]
        self.seconds = float(d.get("seconds", 0.0))
        self.progress = float(d.get("progress", 0.0))
