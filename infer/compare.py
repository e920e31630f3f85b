"""Fast (feed-forward) vs iterative (optimizer) stylization on the same images: `nst compare`.

The question of Johnson et al. (2016, Fig. 5): after how many iterations, and how many seconds,
does the per-image optimizer reach the loss the feed-forward network gets in one pass?

Both methods stylize the same content images at the same size and every output is scored by one
fixed metric: a `PerceptualLoss` (same VGG, layers and layer weights for all, TV weight 0), its
style Gram target computed once, each output scored against its own content, always as the 8-bit
image that would be saved. The iterative method (`nst optimize`: L-BFGS, content init, one scale)
minimises that same loss, so the comparison is on its home ground. One run per image goes to the
largest step count; the image after every step is scored (the loss curve), and kept at each
requested count, so "300 steps" is the 300-step point of that run, the image `nst optimize --steps
300` writes. Steps count VGG evaluations as in `nst optimize`: step 1 scores the starting image.

Times are per image, model load and warm-up reported apart: the fast time is the median of a few
inferences after one warm-up call; the iterative time is the optimizer's own clock (style Grams,
content targets and the steps, not the VGG load, a one-step warm-up run, or the scoring).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import re
import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from PIL import Image, ImageDraw, ImageFont
from tqdm.auto import tqdm

from nst_core.errors import NSTError
from nst_core.image_io import (
    BUILTIN_PREFIX,
    atomic_path,
    open_image,
    pil_to_tensor,
    save_image,
    scaled_size,
    tensor_to_pil,
)
from nst_core.losses import LossWeights, PerceptualLoss
from nst_core.machine import cpu_model
from nst_core.optimize import OptimizeConfig, optimize, resolve_device

DEFAULT_STEPS = (50, 100, 300, 500)
FILES = {"grid": "grid.png", "plot": "loss_vs_time.png", "json": "report.json", "markdown": "report.md"}
IMAGES_DIR = "images"
PAD = 8  # pixels between grid cells and around the grid
REPORT_VERSION = 1


# ---------------------------------------------------------------------------------------------- report types


@dataclass
class Scores:
    """The fixed metric's terms for one output (weighted, as `PerceptualLoss` returns them)."""

    content: float
    style: float
    total: float

    @classmethod
    def of(cls, terms: dict[str, torch.Tensor]) -> Scores:
        return cls(float(terms["content"]), float(terms["style"]), float(terms["total"]))


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


@dataclass
class CompareReport:
    """The whole comparison; ``to_dict()`` is report.json, ``summary()`` what ``--json`` prints."""

    style: str
    model: str
    size: int
    steps: list[int]
    metric: dict[str, Any]
    model_info: dict[str, Any]
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
        if not hit:
            return (
                f"Within {self.steps[-1]} iterations the iterative method never reaches the fast network's loss "
                f"on any of the {n} image(s) at {self.size} px; the fast network takes "
                f"{fmt_seconds(fast)} per image."
            )
        its = statistics.median(r.iterations for r in hit)
        secs = statistics.median(r.seconds for r in hit)
        which = "every image" if len(hit) == n else f"{len(hit)} of {n} images"
        medians = " (medians)" if len(hit) > 1 else ""
        return (
            f"At {self.size} px the iterative method reaches the fast network's loss on {which} after "
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
            "metric": self.metric,
            "model_info": self.model_info,
            "load_seconds": {k: round(v, 6) for k, v in self.load_seconds.items()},
            "machine": self.machine,
            "warnings": self.warnings,
            "summary": self.summary(),
            "images": [im.to_dict() for im in self.images],
            "files": dict(FILES),
        }


# ---------------------------------------------------------------------------------------------- helpers


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


def parse_steps(text: str | Sequence[int]) -> list[int]:
    """'50,100,300' (or a sequence) -> sorted distinct positive step counts; NSTError otherwise."""
    items = [t.strip() for t in text.split(",")] if isinstance(text, str) else list(text)
    if not items or any(t == "" for t in items):
        raise NSTError(f"step list {text!r}: expected comma-separated positive integers, e.g. 50,100,300")
    steps = []
    for item in items:
        try:
            value = int(item)
        except (TypeError, ValueError):
            raise NSTError(f"step list {text!r}: {item!r} is not an integer") from None
        if value <= 0:
            raise NSTError(f"step list {text!r}: step counts must be positive, got {value}")
        steps.append(value)
    return sorted(set(steps))


def display_name(source: str | os.PathLike) -> str:
    s = str(source)
    return s[len(BUILTIN_PREFIX) :] if s.startswith(BUILTIN_PREFIX) else Path(s).stem


def machine_info(device: torch.device) -> dict[str, Any]:
    """CPU model, core count, library versions and the device the iterative method ran on."""
    info: dict[str, Any] = {
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "device": str(device),
    }
    try:
        import onnxruntime

        info["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        info["onnxruntime"] = None
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def machine_line(m: dict[str, Any]) -> str:
    gpu = f", GPU {m['gpu']}" if m.get("gpu") else ""
    ort = f", onnxruntime {m['onnxruntime']}" if m.get("onnxruntime") else ""
    return (
        f"{m['cpu']} ({m['cpu_count']} cores, {m['torch_threads']} torch threads){gpu}; device {m['device']}; "
        f"torch {m['torch']}{ort}; Python {m['python']}; {m['platform']}"
    )


# ---------------------------------------------------------------------------------------------- fast models


class _TorchModel:
    """A trained network (.safetensors / checkpoint / run folder) behind the Stylizer interface."""

    def __init__(self, path: str | os.PathLike, device: torch.device) -> None:
        from nst_core.checkpoint_io import load_network

        t0 = time.perf_counter()
        self.net, self.metadata = load_network(path, device)
        self.device = device
        self.provider = f"torch:{device}"
        self.load_seconds = time.perf_counter() - t0

    @torch.inference_mode()
    def stylize(self, image: Image.Image, *, tile: int | None = None) -> Image.Image:
        y = self.net(pil_to_tensor(image).unsqueeze(0).to(self.device))
        return tensor_to_pil(y)


def load_fast_model(
    model: str | os.PathLike, device: torch.device, device_name: str = "auto"
) -> tuple[Any, str | None]:
    """The fast model and the style name its metadata gives (None if it names none).

    The model has ``stylize(PIL image) -> PIL image`` and ``provider``, ``metadata``, ``load_seconds``.
    """
    path = Path(model)
    if not path.exists():
        raise NSTError(f"{model}: no such model file")
    if path.suffix.lower() == ".onnx":
        if not path.is_file():
            raise NSTError(f"{model}: not a file")
        from infer.stylize import Stylizer

        # An explicit device picks the matching provider; "auto" lets onnxruntime choose (TensorRT, CUDA, CPU).
        provider = {"cpu": "cpu", "cuda": "cuda"}.get(device.type) if device_name != "auto" else None
        t0 = time.perf_counter()
        net = Stylizer(path, provider=provider)
        if not getattr(net, "load_seconds", None):
            net.load_seconds = time.perf_counter() - t0
        meta = dict(getattr(net, "metadata", {}) or {})
        return net, meta.get("nst.style") or meta.get("style")
    net = _TorchModel(path, device)
    return net, net.metadata.get("style")


def training_loss(metadata: dict[str, str], model: str | os.PathLike) -> LossWeights:
    """The content/style weights and layers the model was trained with, from its metadata's training config."""
    raw = next((v for k, v in (metadata or {}).items() if k in ("config", "nst.config", "nst.train_config")), None)
    try:
        cfg = json.loads(raw) if raw else None
        if not isinstance(cfg, dict):
            raise ValueError
        return LossWeights(
            content=float(cfg["content_weight"]),
            style=float(cfg["style_weight"]),
            tv=0.0,
            content_layers=cfg["content_layers"],
            style_layers=cfg["style_layers"],
        )
    except (ValueError, KeyError, TypeError):
        raise NSTError(
            f"{model}: its metadata holds no training config (nst.config) to take the metric from; "
            "use the default metric"
        ) from None


def _fast_stylize(net: Any, image: Image.Image) -> Image.Image:
    out = net.stylize(image, tile=0)  # the whole image in one pass, never tiled
    if not isinstance(out, Image.Image):
        out = tensor_to_pil(out) if isinstance(out, torch.Tensor) else Image.fromarray(out)
    return out.convert("RGB")


# ---------------------------------------------------------------------------------------------- compare


def _resize(img: Image.Image, longer_side: int) -> Image.Image:
    """The same resize `nst optimize` applies (Lanczos, aspect kept)."""
    target = scaled_size(*img.size, longer_side)
    return img if target == img.size else img.resize(target, Image.Resampling.LANCZOS)


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


def compare(
    contents: Sequence[str | os.PathLike],
    style: str | os.PathLike,
    model: str | os.PathLike,
    *,
    steps: Sequence[int] | str = DEFAULT_STEPS,
    size: int = 512,
    device: str = "auto",
    vgg_weights: str = "caffe",
    weights: LossWeights | str | None = None,
    repeats: int = 3,
    progress: bool = True,
) -> CompareReport:
    """Run the fast model and the iterative optimizer on ``contents``; score and time both.

    ``model``: an ``.onnx`` file (run with onnxruntime via `infer.stylize.Stylizer`), or a
    ``.safetensors`` network / checkpoint / run folder (run with PyTorch). ``weights``: the metric:
    None for `LossWeights()` (the `nst optimize` defaults), ``"model"`` for the loss the model was
    trained with (read from its metadata, as in Johnson et al.), or a `LossWeights`; TV is always 0.
    Raises NSTError on bad input before any time is spent.
    """
    step_list = parse_steps(steps)
    if size <= 0:
        raise NSTError(f"size must be positive, got {size}")
    if repeats <= 0:
        raise NSTError(f"repeats must be positive, got {repeats}")
    if not contents:
        raise NSTError("no content images given")
    dev = resolve_device(device)
    # Read everything first: a missing model or an unreadable image fails before minutes of work.
    content_imgs = [open_image(c) for c in contents]
    style_img = open_image(style)
    net, model_style = load_fast_model(model, dev, device)
    w = training_loss(net.metadata, model) if weights == "model" else weights or LossWeights()
    if not isinstance(w, LossWeights):
        raise NSTError(f"metric must be a LossWeights, 'model' or None, got {weights!r}")
    w = replace(w, tv=0.0)  # the metric never includes TV

    warnings: list[str] = []
    style_name = display_name(style)
    if model_style is None:
        warnings.append("the model's metadata names no style; cannot check it matches the style image")
    elif model_style != style_name:
        warnings.append(
            f"the model was trained on style {model_style!r}, compared here with {style_name!r} "
            "(allowed; the metric uses the given style)"
        )

    t0 = time.perf_counter()
    metric = PerceptualLoss.build(w, vgg_weights=vgg_weights).to(dev).to(memory_format=torch.channels_last)
    vgg_load = time.perf_counter() - t0
    min_side = metric.encoder.min_side
    resized = [_resize(img, size) for img in content_imgs]
    for src, img in zip(contents, resized):
        if min(img.size) < min_side:
            raise NSTError(
                f"{src}: would be {img.size[0]}x{img.size[1]} px at --size {size}; the metric's VGG "
                f"layers need at least {min_side} px on each side"
            )
    # The style target exactly as `nst optimize` builds it at this size, set once.
    metric.set_style([pil_to_tensor(_resize(style_img, max(min_side, size))).unsqueeze(0).to(dev)])

    def as_input(img: Image.Image) -> torch.Tensor:
        return pil_to_tensor(img).unsqueeze(0).to(dev).contiguous(memory_format=torch.channels_last)

    @torch.no_grad()
    def score(img: Image.Image, targets: dict[str, torch.Tensor]) -> Scores:
        return Scores.of(metric(as_input(img), targets))

    cfg = OptimizeConfig(
        size=size,
        steps=step_list[-1],
        content_weight=w.content,
        style_weight=w.style,
        tv_weight=0.0,
        content_layers=w.content_layers,
        style_layers=w.style_layers,
        style_layer_weights=w.style_layer_weights,
        scales=1,
        device=str(dev),
        vgg_weights=vgg_weights,
        progress=False,
    )
    bar = tqdm(
        total=len(resized) * (step_list[-1] + 1), desc="compare", unit="step", disable=not progress, dynamic_ncols=True
    )
    results: list[ImageComparison] = []
    try:
        for src, content in zip(contents, resized):
            name = display_name(src)
            bar.set_postfix_str(f"{name}: fast", refresh=False)
            c = as_input(content)
            targets = metric.content_targets(c)

            t0 = time.perf_counter()
            fast_img = _fast_stylize(net, content)  # warm-up: first call on this shape
            fast_warmup = time.perf_counter() - t0
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                fast_img = _fast_stylize(net, content)
                times.append(time.perf_counter() - t0)
            if fast_img.size != content.size:
                warnings.append(
                    f"{name}: the model returned {fast_img.size[0]}x{fast_img.size[1]} for a "
                    f"{content.size[0]}x{content.size[1]} input; resized back for scoring"
                )
                fast_img = fast_img.resize(content.size, Image.Resampling.LANCZOS)
            fast = MethodResult("fast", None, statistics.median(times), score(fast_img, targets), fast_img)
            bar.update(1)

            # Warm-up of the iterative method: a one-step run at this size (first-call costs: lazy imports,
            # oneDNN primitives for these shapes), not counted.
            t0 = time.perf_counter()
            optimize(content, style_img, cfg, loss_fn=metric, steps=1)
            iter_warmup = time.perf_counter() - t0

            bar.set_postfix_str(f"{name}: iterative", refresh=False)
            wanted = set(step_list)
            snaps: dict[int, tuple[float, Scores, Image.Image]] = {}
            curve: list[tuple[int, float, float, float]] = []

            def record(
                step: int,
                seconds: float,
                image: torch.Tensor,
                values: dict[str, float],
                wanted: set[int] = wanted,
                snaps: dict = snaps,
                curve: list = curve,
                targets: dict[str, torch.Tensor] = targets,
            ) -> None:
                """Score the image as it would be saved (clamped, 8-bit) after every step; keep the wanted ones.

                Runs outside the optimizer's clock (`optimize` excludes callback time from its timings).
                """
                with torch.no_grad():
                    q = image.detach().clamp(0, 1).mul(255).round().div(255)
                    scores = Scores.of(metric(q.contiguous(memory_format=torch.channels_last), targets))
                curve.append((step, seconds, scores.total, values["total"]))
                if step in wanted:
                    snaps[step] = (seconds, scores, tensor_to_pil(q))
                bar.update(1)

            res = optimize(content, style_img, cfg, callback=record, loss_fn=metric)
            iterative = []
            for k in step_list:
                if k in snaps:
                    secs, scores, img = snaps[k]
                else:  # L-BFGS stopped early (converged): the final image stands for the later counts
                    secs, scores, img = res.seconds, score(res.image, targets), res.image
                iterative.append(MethodResult("iterative", k, secs, scores, img))
            if res.steps < step_list[-1]:
                warnings.append(f"{name}: L-BFGS converged after {res.steps} steps; later columns repeat that image")
                bar.update(step_list[-1] - res.steps)
            reach = find_reach(curve, fast.loss.total, fast.seconds, res.steps)
            results.append(
                ImageComparison(
                    name=name,
                    source=str(src),
                    size=content.size,
                    fast=fast,
                    iterative=iterative,
                    curve=curve,
                    reach=reach,
                    fast_warmup_seconds=fast_warmup,
                    iterative_warmup_seconds=iter_warmup,
                    content_image=content,
                )
            )
    finally:
        bar.close()

    d = LossWeights()
    default = (w.content, w.style, w.content_layers, w.style_layers, w.layer_weights) == (
        d.content,
        d.style,
        d.content_layers,
        d.style_layers,
        d.layer_weights,
    )
    source = "the model's training loss" if weights == "model" else "nst optimize defaults" if default else "custom"
    metric_info = {
        "source": source,
        "vgg": "vgg19",
        "vgg_weights": vgg_weights,
        "content_layers": list(w.content_layers),
        "style_layers": list(w.style_layers),
        "style_layer_weights": [w.layer_weights[n] for n in w.style_layers],
        "content_weight": w.content,
        "style_weight": w.style,
        "tv_weight": 0.0,
        "note": "iterative = L-BFGS (nst optimize, 1 scale, content init) minimising this same metric",
    }
    try:
        tw = training_loss(net.metadata, model)
        trained_with = {
            "content_weight": tw.content,
            "style_weight": tw.style,
            "content_layers": list(tw.content_layers),
            "style_layers": list(tw.style_layers),
        }
    except NSTError:
        trained_with = None
    model_info = {
        "path": str(model),
        "provider": getattr(net, "provider", None),
        "style": model_style,
        "trained_with": trained_with,
        "metadata": {k: v for k, v in (net.metadata or {}).items() if len(str(v)) < 300},
    }
    return CompareReport(
        style=str(style),
        model=str(model),
        size=size,
        steps=step_list,
        metric=metric_info,
        model_info=model_info,
        load_seconds={"fast_model": float(net.load_seconds), "vgg": vgg_load},
        machine=machine_info(dev),
        images=results,
        warnings=warnings,
        created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        style_image=style_img,
    )


# ---------------------------------------------------------------------------------------------- outputs


def _font(px: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=px)
    except TypeError:  # Pillow < 10.1: a fixed bitmap font
        return ImageFont.load_default()


def label_height(tile: int) -> int:
    """Height of the two label lines under each tile."""
    return 2 * (font_px(tile) + 4) + 4


def font_px(tile: int) -> int:
    return max(10, tile // 17)


def grid_size(rows: int, cols: int, tile: int) -> tuple[int, int]:
    """(width, height) of a grid of ``rows`` x ``cols`` labelled tiles."""
    return cols * tile + (cols + 1) * PAD, rows * (tile + label_height(tile)) + (rows + 1) * PAD


def _fit(text: str, draw: ImageDraw.ImageDraw, font: Any, width: int) -> str:
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


def make_grid(report: CompareReport, tile: int = 256) -> Image.Image:
    """Rows: content images; columns: content, style, fast, iterative at each step count; labelled."""
    cols = 3 + len(report.steps)
    width, height = grid_size(len(report.images), cols, tile)
    grid = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(grid)
    font = _font(font_px(tile))
    line = font_px(tile) + 4
    style_thumb = report.style_image
    for r, im in enumerate(report.images):
        y = PAD + r * (tile + label_height(tile) + PAD)
        cells: list[tuple[Image.Image | None, str, str]] = [
            (im.content_image, im.name, f"content {im.size[0]}x{im.size[1]}"),
            (style_thumb, display_name(report.style), "style"),
            (im.fast.image, f"fast  {fmt_seconds(im.fast.seconds)}", f"loss {im.fast.loss.total:.4g}"),
        ]
        cells += [
            (it.image, f"iterative {it.steps}  {fmt_seconds(it.seconds)}", f"loss {it.loss.total:.4g}")
            for it in im.iterative
        ]
        for col, (img, top, bottom) in enumerate(cells):
            x = PAD + col * (tile + PAD)
            if img is not None:
                thumb = img.copy()
                scale = tile / max(thumb.size)
                thumb = thumb.resize(
                    (max(1, round(thumb.width * scale)), max(1, round(thumb.height * scale))), Image.Resampling.LANCZOS
                )
                grid.paste(thumb, (x + (tile - thumb.width) // 2, y + (tile - thumb.height) // 2))
            draw.text((x, y + tile + 2), _fit(top, draw, font, tile), fill="black", font=font)
            draw.text((x, y + tile + 2 + line), _fit(bottom, draw, font, tile), fill=(90, 90, 90), font=font)
    return grid


def plot_loss_vs_time(report: CompareReport, path: str | os.PathLike) -> Path:
    """The iterative loss curve over time per image (log-log), the fast result as a point and a dashed line."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 4.8), dpi=120)
    ax = fig.add_subplot()
    colors = [f"C{i % 10}" for i in range(len(report.images))]
    for im, color in zip(report.images, colors):
        curve = [(t, v) for _, t, v, _ in im.curve if t > 0 and v > 0]
        if curve:
            ax.plot(*zip(*curve), color=color, lw=1.5, label=f"{im.name}: iterative")
        snaps = [(it.seconds, it.loss.total) for it in im.iterative if it.seconds > 0]
        if snaps:
            ax.plot(*zip(*snaps), "o", color=color, ms=4)
            for it in im.iterative:
                ax.annotate(
                    str(it.steps),
                    (it.seconds, it.loss.total),
                    textcoords="offset points",
                    xytext=(3, 4),
                    fontsize=7,
                    color=color,
                )
        ax.axhline(im.fast.loss.total, color=color, ls="--", lw=1)
        ax.plot(
            [max(im.fast.seconds, 1e-6)],
            [im.fast.loss.total],
            marker="*",
            ms=13,
            color=color,
            ls="none",
            markeredgecolor="black",
            label=f"{im.name}: fast ({fmt_seconds(im.fast.seconds)})",
        )
        if im.reach.reached and im.reach.seconds and im.reach.seconds > 0:
            ax.axvline(im.reach.seconds, color=color, ls=":", lw=1)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("seconds per image (log)")
    ax.set_ylabel("metric loss: content + style (log)")
    ax.set_title(
        f"Fast vs iterative at {report.size} px (dashed: fast network's loss; dotted: iterative reaches it)", fontsize=9
    )
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return Path(path)


def markdown_table(report: CompareReport) -> str:
    rows = [
        "| image | method | steps | seconds | × fast time | content | style | total |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for im in report.images:
        fast = im.fast.seconds
        for r in (im.fast, *im.iterative):
            ratio = "1" if r.method == "fast" else (f"{r.seconds / fast:,.0f}" if fast > 0 else "-")
            rows.append(
                f"| {im.name} | {r.method} | {'-' if r.steps is None else r.steps} | {r.seconds:.4g} | "
                f"{ratio} | {r.loss.content:.4g} | {r.loss.style:.4g} | {r.loss.total:.4g} |"
            )
    return "\n".join(rows)


def _metric_note(report: CompareReport) -> list[str]:
    """A note when the model was trained with another loss than the metric it is scored with."""
    m, t = report.metric, report.model_info.get("trained_with")
    if not t or all(m[k] == t[k] for k in ("content_weight", "style_weight", "content_layers", "style_layers")):
        return []
    return [
        f"The model was trained with another loss (content {', '.join(t['content_layers'])} × "
        f"{t['content_weight']:g}, style {', '.join(t['style_layers'])} × {t['style_weight']:g}), so it is "
        "scored here on a loss it did not minimise; `--metric model` scores both methods on its training loss, "
        "as Johnson et al. did.",
        "",
    ]


def markdown(report: CompareReport) -> str:
    m = report.metric
    load = report.load_seconds
    lines = [
        "# Fast vs iterative stylization",
        "",
        f"Style `{report.style}`, model `{report.model}` ({report.model_info.get('provider')}), "
        f"{len(report.images)} image(s) at {report.size} px, iterative steps {', '.join(map(str, report.steps))}.",
        "",
        f"Machine: {machine_line(report.machine)}.",
        "",
        f"Metric ({m['source']}): VGG19 ({m['vgg_weights']}), content {', '.join(m['content_layers'])} "
        f"× {m['content_weight']:g}, style {', '.join(m['style_layers'])} × {m['style_weight']:g}, TV 0; "
        "the iterative method (L-BFGS, content init, one scale) minimises this same loss; its step k is the image "
        "`nst optimize --steps k` writes (step 1 is the starting image), every image scored as saved (8-bit). "
        "Seconds are per image, excluding model load "
        f"({fmt_seconds(load['fast_model'])} fast model, {fmt_seconds(load['vgg'])} VGG) and warm-up.",
        "",
        *_metric_note(report),
        markdown_table(report),
        "",
        "## After how many iterations does the optimizer catch up?",
        "",
        report.answer(),
        "",
    ]
    lines += [f"- **{im.name}**: {im.reach.text()}." for im in report.images]
    warm = ", ".join(
        f"{im.name} {fmt_seconds(im.fast_warmup_seconds)} / {fmt_seconds(im.iterative_warmup_seconds)}"
        for im in report.images
    )
    lines += ["", f"Warm-up (fast / iterative first pass, not counted): {warm}.", ""]
    if report.warnings:
        lines += ["Warnings:", "", *[f"- {w}" for w in report.warnings], ""]
    lines += [f"![grid]({FILES['grid']})", "", f"![loss vs time]({FILES['plot']})", ""]
    return "\n".join(lines)


def write_report(report: CompareReport, out_dir: str | os.PathLike, tile: int = 256) -> dict[str, Path]:
    """Write grid.png, loss_vs_time.png, report.json, report.md and images/ into ``out_dir`` (created).

    Every file is written to a temporary name and renamed, so none is ever half-written.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise NSTError(f"{out}: exists and is not a folder")
    (out / IMAGES_DIR).mkdir(parents=True, exist_ok=True)
    for old in (out / IMAGES_DIR).glob("[0-9][0-9]_*.png"):  # outputs of an earlier comparison in this folder
        if re.search(r"_(fast|iter\d{5})\.png$", old.name):
            old.unlink()
    for i, im in enumerate(report.images):
        stem = f"{i + 1:02d}_{im.name}"
        for r in (im.fast, *im.iterative):
            rel = f"{IMAGES_DIR}/{stem}_{'fast' if r.steps is None else f'iter{r.steps:05d}'}.png"
            if r.image is not None:
                save_image(r.image, out / rel)
                r.file = rel
    written = {
        "grid": save_image(make_grid(report, tile), out / FILES["grid"]),
        "plot": plot_loss_vs_time(report, out / FILES["plot"]),
    }
    with atomic_path(out / FILES["json"]) as tmp:
        tmp.write_text(json.dumps(report.to_dict(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    written["json"] = out / FILES["json"]
    with atomic_path(out / FILES["markdown"]) as tmp:
        tmp.write_text(markdown(report), encoding="utf-8")
    written["markdown"] = out / FILES["markdown"]
    return written
