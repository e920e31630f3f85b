"""Fast (feed-forward) vs iterative (optimizer) stylization on the same images: `nst compare`.

The question of Johnson et al. (2016, Fig. 5): after how many iterations, and how many seconds,
does the per-image optimizer reach the loss the feed-forward network gets in one pass?

Both methods stylize the same content images at the same size and every output is scored by one
fixed metric: a `PerceptualLoss` (same VGG, layers and layer weights for all, TV weight 0), its
style Gram target computed once, each output scored against its own content, always as the 8-bit
image that would be saved. The iterative method (`nst optimize`: L-BFGS, one scale, starting from the photo
or, as Johnson et al. did, from noise: `CompareConfig.init`) minimises that same loss, so the comparison is on
its home ground. One run per image goes to the
largest step count; the image after every step is scored (the loss curve), and kept at each
requested count, so "300 steps" is the 300-step point of that run, the image `nst optimize --steps
300` writes. Steps count VGG evaluations as in `nst optimize`: step 1 scores the starting image.

A caller can follow and end a run (the web app's progress bar and Stop): ``should_stop(done, total)`` is
asked at every step (each image's fast pass, then each optimizer step), and once it says yes `compare`
raises `Stopped` within one step instead of running on.

Times are per image, model load and warm-up reported apart: the fast time is the median of a few
inferences after one warm-up call; the iterative time is the optimizer's own clock (style Grams,
content targets and the steps, not the VGG load, a one-step warm-up run, or the scoring).

Here: running both methods and scoring them. Settings: `infer.compare.config`; the fast model:
`infer.compare.model`; the result records: `infer.compare.results`; the files: `infer.compare.report`.
"""

from __future__ import annotations

import datetime as _dt
import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import torch
from PIL import Image
from tqdm.auto import tqdm

from infer.compare.config import DEFAULT_STEPS, MODEL_METRIC, CompareConfig, parse_steps
from infer.compare.model import FastModel, load_fast_model
from infer.compare.report import write_report
from infer.compare.results import (
    CompareReport,
    ImageComparison,
    MethodResult,
    MetricSpec,
    Scores,
    find_reach,
    same_score,
)
from nst_core.errors import NSTError
from nst_core.image_io import display_name, open_image, painting_at, pil_to_tensor, resize_longer, tensor_to_pil
from nst_core.losses.perceptual import LossWeights, PerceptualLoss
from nst_core.machine import machine_info
from nst_core.optimize.scales import OptimizeConfig, optimize, resolve_device

__all__ = ["DEFAULT_STEPS", "CompareConfig", "CompareReport", "Stopped", "compare", "parse_steps", "write_report"]

Targets = dict[str, torch.Tensor]
#: Asked with (steps done, steps in all) at every step and before each image; True ends the run (`Stopped`).
ShouldStop = Callable[[int, int], bool]


class Stopped(NSTError):
    """The caller's ``should_stop`` said yes: the comparison ended early on request, not on bad input."""


@dataclass
class _Steps:
    """The run's step count (each image's fast pass and optimizer steps): the tqdm bar, and the caller's
    ``should_stop``, told how far the run is at every step (the app shows it; Gradio's tqdm tracking would
    also count the inner optimize runs' bars) and able to end it there."""

    bar: tqdm
    should_stop: ShouldStop | None = None
    done: int = 0

    def advance(self, n: int, where: str) -> None:
        """Count ``n`` steps, then raise `Stopped`, saying ``where``, if the caller asks to stop."""
        self.bar.update(n)
        self.done += n
        if self.should_stop is not None and self.should_stop(self.done, int(self.bar.total)):
            raise Stopped(f"compare stopped on request {where}")


class Metric:
    """The fixed loss every output is scored with: a `PerceptualLoss` (TV 0) whose style target is set once."""

    def __init__(self, loss: LossWeights, vgg_weights: str, device: torch.device) -> None:
        t0 = time.perf_counter()
        self.loss_fn = PerceptualLoss.build(loss, vgg_weights=vgg_weights).to(device)
        self.loss_fn = self.loss_fn.to(memory_format=torch.channels_last)
        self.load_seconds = time.perf_counter() - t0
        self.weights, self.device = loss, device
        self.min_side: int = self.loss_fn.encoder.min_side

    def fit(self, sources: Sequence[str | os.PathLike], images: Sequence[Image.Image], size: int) -> list[Image.Image]:
        """The content images resized as `nst optimize` resizes them; NSTError if one is too small for VGG."""
        resized = [resize_longer(img, size) for img in images]
        for src, img in zip(sources, resized):
            if min(img.size) < self.min_side:
                raise NSTError(
                    f"{src}: would be {img.size[0]}x{img.size[1]} px at --size {size}; the metric's VGG "
                    f"layers need at least {self.min_side} px on each side"
                )
        return resized

    def set_style(self, style: Image.Image, size: int) -> None:
        """The style target as `nst optimize` builds it at this size, its shorter side at least what VGG needs."""
        self.loss_fn.set_style([pil_to_tensor(painting_at(style, size, self.min_side)).unsqueeze(0).to(self.device)])

    def as_input(self, img: Image.Image) -> torch.Tensor:
        return pil_to_tensor(img).unsqueeze(0).to(self.device).contiguous(memory_format=torch.channels_last)

    def targets(self, content: Image.Image) -> Targets:
        return self.loss_fn.content_targets(self.as_input(content))

    @torch.no_grad()
    def score(self, image: Image.Image | torch.Tensor, targets: Targets) -> Scores:
        """The weighted terms for ``image`` (a PIL image, or a tensor already quantised as it would be saved)."""
        x = self.as_input(image) if isinstance(image, Image.Image) else image
        terms = self.loss_fn(x.contiguous(memory_format=torch.channels_last), targets)
        return Scores(float(terms["content"]), float(terms["style"]), float(terms["total"]))


@dataclass
class _Recorder:
    """`optimize`'s step callback: scores the image as it would be saved (clamped, 8-bit) after every step and
    keeps it at the wanted counts. Runs outside the optimizer's clock (`optimize` excludes callback time)."""

    metric: Metric
    targets: Targets
    wanted: set[int]
    steps: _Steps
    curve: list[tuple[int, float, float, float]] = field(default_factory=list)  # step, seconds, metric, objective
    snaps: dict[int, tuple[float, Scores, Image.Image]] = field(default_factory=dict)

    def __call__(self, step: int, seconds: float, image: torch.Tensor, values: dict[str, float]) -> None:
        q = image.detach().clamp(0, 1).mul(255).round().div(255)
        scores = self.metric.score(q, self.targets)
        self.curve.append((step, seconds, scores.total, values["total"]))
        if step in self.wanted:
            self.snaps[step] = (seconds, scores, tensor_to_pil(q))
        self.steps.advance(1, f"at optimizer step {step} of {max(self.wanted)}")


class _Runner:
    """Both methods on one content image after another; the model, the metric and the settings stay fixed."""

    def __init__(
        self,
        net: FastModel,
        metric: Metric,
        style: Image.Image,
        cfg: CompareConfig,
        steps: _Steps,
    ) -> None:
        self.net, self.metric, self.style, self.cfg, self.steps = net, metric, style, cfg, steps
        self.bar = steps.bar
        self.optimize_config = OptimizeConfig(
            size=cfg.size,
            steps=cfg.max_steps,
            loss=metric.weights,
            scales=1,
            init=cfg.init,
            device=str(metric.device),
            vgg_weights=cfg.vgg_weights,
            progress=False,
        )
        self.warnings: list[str] = []

    def image(self, source: str | os.PathLike, content: Image.Image) -> ImageComparison:
        name = display_name(source)
        self.steps.advance(0, f"before {name}")
        targets = self.metric.targets(content)
        self.bar.set_postfix_str(f"{name}: fast", refresh=False)
        fast, fast_warmup = self.fast(name, content, targets)
        self.steps.advance(1, f"after {name}'s fast pass")
        self.bar.set_postfix_str(f"{name}: iterative", refresh=False)
        iterative, curve, iter_warmup, ran = self.iterative(name, content, targets)
        return ImageComparison(
            name=name,
            source=str(source),
            size=content.size,
            fast=fast,
            iterative=iterative,
            curve=curve,
            reach=find_reach(curve, fast.loss.total, fast.seconds, ran),
            fast_warmup_seconds=fast_warmup,
            iterative_warmup_seconds=iter_warmup,
            content_image=content,
        )

    def fast(self, name: str, content: Image.Image, targets: Targets) -> tuple[MethodResult, float]:
        """The median of ``repeats`` timed inferences after one warm-up call (first call on this shape)."""
        t0 = time.perf_counter()
        out = self.net.stylize(content)
        warmup = time.perf_counter() - t0
        times = []
        for _ in range(self.cfg.repeats):
            t0 = time.perf_counter()
            out = self.net.stylize(content)
            times.append(time.perf_counter() - t0)
        if out.size != content.size:
            self.warnings.append(
                f"{name}: the model returned {out.size[0]}x{out.size[1]} for a "
                f"{content.size[0]}x{content.size[1]} input; resized back for scoring"
            )
            out = out.resize(content.size, Image.Resampling.LANCZOS)
        return MethodResult("fast", None, statistics.median(times), self.metric.score(out, targets), out), warmup

    def iterative(
        self, name: str, content: Image.Image, targets: Targets
    ) -> tuple[list[MethodResult], list[tuple[int, float, float, float]], float, int]:
        """One run to the largest step count, scored every step; (snapshots, curve, warm-up seconds, steps run)."""
        # Warm-up: a one-step run at this size (lazy imports, oneDNN primitives for these shapes), not counted.
        t0 = time.perf_counter()
        optimize(content, self.style, self.optimize_config, loss_fn=self.metric.loss_fn, steps=1)
        warmup = time.perf_counter() - t0
        steps = self.cfg.steps
        record = _Recorder(self.metric, targets, set(steps), self.steps)
        res = optimize(content, self.style, self.optimize_config, callback=record, loss_fn=self.metric.loss_fn)
        results = []
        for k in steps:
            if k in record.snaps:
                secs, scores, img = record.snaps[k]
            else:  # L-BFGS stopped early (converged): the final image stands for the later counts
                secs, scores, img = res.seconds, self.metric.score(res.image, targets), res.image
            results.append(MethodResult("iterative", k, secs, scores, img))
        if res.steps < steps[-1]:
            self.warnings.append(f"{name}: L-BFGS converged after {res.steps} steps; later columns repeat that image")
            self.steps.advance(steps[-1] - res.steps, f"after {name}")
        return results, record.curve, warmup, res.steps


def metric_spec(cfg: CompareConfig, net: FastModel) -> MetricSpec:
    """The metric's loss (TV dropped) and where it came from; the training loss too, when the metadata has it."""
    try:
        trained = net.training_loss()
    except NSTError:
        if cfg.metric == MODEL_METRIC:
            raise
        trained = None
    if cfg.metric == MODEL_METRIC:
        loss, source = trained, "the model's training loss"
    else:
        loss = cfg.metric
        source = "nst optimize defaults" if same_score(loss, LossWeights()) else "custom"
    return MetricSpec(replace(loss, tv=0.0), source, cfg.vgg_weights, trained)


def style_warnings(model_style: str | None, style_name: str) -> list[str]:
    """A comparison with another style than the model's is allowed, but said."""
    if model_style is None:
        return ["the model's metadata names no style; cannot check it matches the style image"]
    if model_style != style_name:
        return [
            f"the model was trained on style {model_style!r}, compared here with {style_name!r} "
            "(allowed; the metric uses the given style)"
        ]
    return []


def compare(
    contents: Sequence[str | os.PathLike],
    style: str | os.PathLike,
    model: str | os.PathLike,
    config: CompareConfig | None = None,
    *,
    should_stop: ShouldStop | None = None,
    **overrides: object,
) -> CompareReport:
    """Run the fast model and the iterative optimizer on ``contents``; score and time both.

    ``model``: an ``.onnx`` file (run with onnxruntime via `infer.stylize.stylizer.Stylizer`), or a
    ``.safetensors`` network / checkpoint / run folder (run with PyTorch). ``config`` fields can also be
    given as keyword arguments (``compare(c, s, m, steps=[50, 100], size=256, metric="model")``).
    Raises NSTError on bad input before any time is spent, and `Stopped` (an NSTError) within one
    optimizer step of ``should_stop(done, total)`` returning True.
    """
    cfg = replace(config, **overrides) if config else CompareConfig(**overrides)  # type: ignore[arg-type]
    if not contents:
        raise NSTError("no content images given")
    device = resolve_device(cfg.device)
    # Read everything first: a missing model or an unreadable image fails before minutes of work.
    content_imgs = [open_image(c) for c in contents]
    style_img = open_image(style)
    net = load_fast_model(model, device, cfg.device)
    net.choose_style(display_name(style))  # a network of several styles: the one named like the style image
    spec = metric_spec(cfg, net)
    metric = Metric(spec.loss, cfg.vgg_weights, device)
    resized = metric.fit(contents, content_imgs, cfg.size)
    metric.set_style(style_img, cfg.size)

    total = len(resized) * (cfg.max_steps + 1)
    with tqdm(total=total, desc="compare", unit="step", disable=not cfg.progress, dynamic_ncols=True) as bar:
        runner = _Runner(net, metric, style_img, cfg, _Steps(bar, should_stop))
        results = [runner.image(src, img) for src, img in zip(contents, resized)]
    return CompareReport(
        style=str(style),
        model=str(model),
        size=cfg.size,
        steps=list(cfg.steps),
        start=cfg.init,
        metric=spec,
        model_info=net.info(),
        load_seconds={"fast_model": float(net.load_seconds), "vgg": metric.load_seconds},
        machine=machine_info(str(device)),
        images=results,
        warnings=style_warnings(net.style, display_name(style)) + runner.warnings,
        created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        style_image=style_img,
    )
