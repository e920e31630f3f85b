"""What a comparison measured: scores, times and when the optimizer catches up; ``to_dict()`` is report.json.

No torch import: the records are plain numbers and PIL images, so reports can be read, summarised and
rendered without the loss network.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from PIL import Image

from infer.compare.config import STARTS
from nst_core.losses.weights import LossWeights

REPORT_VERSION = 3  # 2: the metric and the training loss as `loss` sections; 3: the optimizer's start recorded
FILES = {"grid": "grid.png", "plot": "loss_vs_time.png", "json": "report.json", "markdown": "report.md"}


@dataclass
class Scores:
    """The fixed metric's terms for one output (weighted, as `PerceptualLoss` returns them)."""

    content: float
    style: float
    total: float


@dataclass
class MethodResult:
    """One output: `fast` (steps None) or `iterative` after ``steps`` optimizer steps."""

    method: str
    steps: int | None
    seconds: float  # per image, excluding model/VGG load and warm-up
    loss: Scores
    image: Image.Image | None = field(default=None, repr=False, compare=False)
    file: str | None = None  # under the report folder, once written

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "steps": self.steps,
            "seconds": round(self.seconds, 6),
            "loss": asdict(self.loss),
            "file": self.file,
        }


@dataclass
class Reach:
    """When the iterative curve first gets to the fast network's total loss (None: not within the run)."""

    fast_loss: float
    fast_seconds: float
    iterations: int | None
    seconds: float | None
    speedup: float | None  # seconds to reach / fast seconds
    max_steps: int
    max_seconds: float  # iterative time at max_steps
    final_loss: float  # iterative metric at max_steps

    @property
    def reached(self) -> bool:
        return self.iterations is not None

    def text(self) -> str:
        fast = f"the fast network's loss {self.fast_loss:.4g} ({fmt_seconds(self.fast_seconds)} per image)"
        if self.reached:
            return (
                f"the iterative method reaches {fast} after {plural(self.iterations, 'iteration')}, "
                f"{fmt_seconds(self.seconds)}: the fast network is {self.speedup:,.0f}x faster"
            )
        ratio = self.max_seconds / self.fast_seconds if self.fast_seconds > 0 else math.inf
        return (
            f"the iterative method does not reach {fast} within {self.max_steps} iterations "
            f"({fmt_seconds(self.max_seconds)}, loss {self.final_loss:.4g}, "
            f"{100 * (self.final_loss / self.fast_loss - 1):+.1f}%): the fast network is more than "
            f"{ratio:,.0f}x faster"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "reached": self.reached,
            "iterations": self.iterations,
            "seconds": None if self.seconds is None else round(self.seconds, 6),
            "speedup": None if self.speedup is None else round(self.speedup, 3),
            "fast_loss": self.fast_loss,
            "fast_seconds": round(self.fast_seconds, 6),
            "max_steps": self.max_steps,
            "max_seconds": round(self.max_seconds, 6),
            "final_loss": self.final_loss,
            "text": self.text(),
        }


def find_reach(curve: Sequence[Sequence[float]], fast_loss: float, fast_seconds: float, max_steps: int) -> Reach:
    """The first recorded iteration whose metric total (curve rows: iteration, seconds, total, ...) is at or
    below ``fast_loss``."""
    hit = next(((int(row[0]), row[1]) for row in curve if row[2] <= fast_loss), None)
    last = curve[-1] if curve else (0, 0.0, math.inf)
    speed = None if hit is None or fast_seconds <= 0 else hit[1] / fast_seconds
    return Reach(
        fast_loss=fast_loss,
        fast_seconds=fast_seconds,
        iterations=None if hit is None else hit[0],
        seconds=None if hit is None else hit[1],
        speedup=speed,
        max_steps=max_steps,
        max_seconds=last[1],
        final_loss=last[2],
    )


@dataclass
class ImageComparison:
    """Everything measured on one content image."""

    name: str
    source: str
    size: tuple[int, int]  # (width, height) of every output
    fast: MethodResult
    iterative: list[MethodResult]
    curve: list[tuple[int, float, float, float]]  # (iteration, seconds, metric total, objective) every iteration
    reach: Reach
    fast_warmup_seconds: float
    iterative_warmup_seconds: float
    content_image: Image.Image | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "size": list(self.size),
            "warmup_seconds": {
                "fast": round(self.fast_warmup_seconds, 6),
                "iterative": round(self.iterative_warmup_seconds, 6),
            },
            "fast": self.fast.to_dict(),
            "iterative": [r.to_dict() for r in self.iterative],
            "reach": self.reach.to_dict(),
            "curve": {
                "columns": ["iteration", "seconds", "metric_total", "objective_total"],
                "rows": [[s, round(t, 6), v, o] for s, t, v, o in self.curve],
            },
        }


def same_score(a: LossWeights, b: LossWeights) -> bool:
    """Whether two losses score an image alike: TV aside (the metric has none), unset layer weights as 1s."""

    def scoring(w: LossWeights) -> LossWeights:
        return replace(w, tv=0.0, style_layer_weights=list(w.layer_weights.values()))

    return scoring(a) == scoring(b)


@dataclass
class MetricSpec:
    """The loss every output is scored with (TV 0), where it came from, and the loss the model was trained with."""

    loss: LossWeights
    source: str  # the model's training loss | nst optimize defaults | custom
    vgg_weights: str
    trained_with: LossWeights | None  # None: the model's metadata does not say

    @property
    def differs_from_training(self) -> bool:
        return self.trained_with is not None and not same_score(self.loss, self.trained_with)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "vgg": "vgg19",
            "vgg_weights": self.vgg_weights,
            "loss": self.loss.to_dict(),
            "note": "iterative = L-BFGS (nst optimize, 1 scale) minimising this same metric, from the report's start",
        }


@dataclass
class CompareReport:
    """The whole comparison; ``to_dict()`` is report.json, ``summary()`` what ``--json`` prints."""

    style: str
    model: str
    size: int
    steps: list[int]
    start: str  # the optimizer's starting image: a key of STARTS
    metric: MetricSpec
    model_info: dict[str, Any]  # FastModel.info()
    load_seconds: dict[str, float]
    machine: dict[str, Any]
    images: list[ImageComparison]
    warnings: list[str] = field(default_factory=list)
    created: str = ""
    style_image: Image.Image | None = field(default=None, repr=False, compare=False)

    def answer(self) -> str:
        """The answer to Johnson et al.'s question, over all images (medians)."""
        reaches = [im.reach for im in self.images]
        hit = [r for r in reaches if r.reached]
        fast = statistics.median(r.fast_seconds for r in reaches)
        n = len(reaches)
        start = f"Starting from {STARTS[self.start]}, "
        if not hit:
            return (
                f"{start}within {self.steps[-1]} iterations the iterative method never reaches the fast network's "
                f"loss on any of the {n} image(s) at {self.size} px; the fast network takes "
                f"{fmt_seconds(fast)} per image."
            )
        its = statistics.median(r.iterations for r in hit)
        secs = statistics.median(r.seconds for r in hit)
        which = "every image" if len(hit) == n else f"{len(hit)} of {n} images"
        medians = " (medians)" if len(hit) > 1 else ""
        return (
            f"{start}at {self.size} px the iterative method reaches the fast network's loss on {which} after "
            f"{plural(its, 'iteration')} and {fmt_seconds(secs)}{medians}; the fast network takes "
            f"{fmt_seconds(fast)} per image: a {secs / fast:,.0f}x speed-up."
        )

    def summary(self) -> dict[str, Any]:
        reached = [im.reach for im in self.images if im.reach.reached]
        med = lambda xs: statistics.median(xs) if xs else None  # noqa: E731
        return {
            "images": len(self.images),
            "size": self.size,
            "steps": self.steps,
            "start": self.start,
            "style": self.style,
            "model": self.model,
            "device": self.machine.get("device"),
            "fast_seconds": med([im.fast.seconds for im in self.images]),
            "fast_loss": med([im.fast.loss.total for im in self.images]),
            "reached": len(reached),
            "iterations_to_reach": med([r.iterations for r in reached]),
            "seconds_to_reach": med([r.seconds for r in reached]),
            "speedup": (
                med([r.seconds for r in reached]) / med([im.fast.seconds for im in self.images]) if reached else None
            ),  # median seconds to reach / median fast seconds
            "per_image": [
                {
                    "name": im.name,
                    **{k: im.reach.to_dict()[k] for k in ("reached", "iterations", "seconds", "speedup", "fast_loss")},
                }
                for im in self.images
            ],
            "answer": self.answer(),
            "warnings": self.warnings,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": REPORT_VERSION,
            "created": self.created,
            "style": self.style,
            "model": self.model,
            "size": self.size,
            "steps": self.steps,
            "start": {"init": self.start, "image": STARTS[self.start]},
            "metric": self.metric.to_dict(),
            "model_info": {
                **self.model_info,
                "trained_with": tw.to_dict() if (tw := self.metric.trained_with) else None,
            },
            "load_seconds": {k: round(v, 6) for k, v in self.load_seconds.items()},
            "machine": self.machine,
            "warnings": self.warnings,
            "summary": self.summary(),
            "images": [im.to_dict() for im in self.images],
            "files": dict(FILES),
        }


def plural(n: float, word: str) -> str:
    return f"{n:g} {word}" + ("" if n == 1 else "s")


def fmt_seconds(s: float | None) -> str:
    if s is None:
        return "-"
    if s < 1e-3:
        return f"{s * 1e6:.0f} µs"
    if s < 1:
        return f"{s * 1e3:.1f} ms"
    if s < 100:
        return f"{s:.2f} s"
    return f"{s:.0f} s"
