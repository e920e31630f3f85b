"""How far along a run is, and what that sets: the learning rate and the crop size of each stage.

A run's progress runs from 0 to 1 by steps (``step / max_steps``) or, with ``max_time``, by the clock
(whichever is further): a schedule given ``--max-time 30m`` ends its learning-rate decay at the deadline, so
the network at the deadline is the best those minutes give, not one caught at a high learning rate.

The first stage may train on smaller crops (``first_crop_size``) until ``first_crop_until``: a 128 px crop
costs a quarter of a 256 px one, and with the painting kept at ``style_size`` both stages learn strokes of
the same size in pixels. Crops are taken at ``image_size`` and scaled down on the fly, so the data
pipeline is the same in both stages.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from train.config import TrainConfig


@dataclass
class Schedule:
    """The run's schedule; ``resumed_at`` is the progress a resumed run had reached (saved in its state)."""

    cfg: TrainConfig
    max_steps: int
    resumed_at: float = 0.0

    def progress(self, step: int, session_seconds: float) -> float:
        """Fraction of the run done: by steps, or by this session's share of ``max_time`` (a resumed run
        spreads what it had left over its new session), whichever is further."""
        done = step / self.max_steps
        if self.cfg.max_time is not None:
            by_time = self.resumed_at + (1.0 - self.resumed_at) * session_seconds / self.cfg.max_time
            done = max(done, by_time)
        return min(done, 1.0)

    def lr(self, progress: float) -> float:
        """The learning rate at ``progress``."""
        if self.cfg.lr_schedule == "cosine":
            return self.cfg.lr * 0.5 * (1.0 + math.cos(math.pi * progress))
        if self.cfg.lr_schedule == "linear":
            return self.cfg.lr * (1.0 - progress)
        return self.cfg.lr

    def crop_size(self, progress: float) -> int:
        """The side of the crops the network trains on at ``progress``."""
        first = self.cfg.first_crop_size
        if first is not None and progress < self.cfg.first_crop_until:
            return first
        return self.cfg.image_size


def turn_order(turns: list[int]) -> list[int]:
    """Which style learns at each step of one cycle, given each style's number of turns per cycle: every style's
    turns spread evenly over the cycle (``[1, 3]`` -> ``[1, 0, 1, 1]``; one turn each -> ``[0, 1, 2, ...]``). A
    step's style is ``order[step % len(order)]``: a function of the step alone, so a resumed run takes the same turns.
    """
    slots = sorted(((j + 0.5) / count, style) for style, count in enumerate(turns) for j in range(count))
    return [style for _, style in slots]
