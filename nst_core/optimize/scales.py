"""The classic per-image optimizer (Gatys et al.): minimise content + style (+ TV) loss over pixels.

Speed comes from doing less: VGG runs only to the deepest loss layer, style Grams are computed
once per scale, L-BFGS takes one VGG pass per step (no wasted evaluations), and coarse-to-fine
scales take most steps on 4x cheaper images. Memory is planned (`_plan`): larger images are
computed in VGG tiles. One scale's solver is nst_core.optimize.run.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import torch
from PIL import Image

from nst_core.color import preserve_color
from nst_core.errors import NSTError
from nst_core.image_io import open_image, pil_to_tensor, resize_longer, resize_tensor, scaled_size
from nst_core.losses.perceptual import PerceptualLoss, blend_weights
from nst_core.optimize.checkpoint import OptimizeCheckpointer, fingerprint
from nst_core.optimize.config import OptimizeConfig, auto_scales
from nst_core.optimize.run import HISTORY, MIN_HISTORY, PIXEL_SCALE, OutOfTime, Run, StepCallback
from nst_core.optimize.tiled_loss import TiledLoss, plan_tiles

ImageLike = str | os.PathLike | Image.Image | torch.Tensor
HISTORY_SHARE = 0.25  # of the memory budget for L-BFGS's history (see _plan)
IMAGE_COPIES = 8  # image-sized tensors besides the history: pixels, gradient, best point, L-BFGS's own, content
# An L-BFGS history vector under glibc's largest mmap threshold (32 MiB: images under ~1700 px) lives in the heap,
# which fragments around it: it costs about HISTORY_OVERHEAD times its size (512 px in 2 GiB: the peak grew
# 0.70 GB while a 100-entry history of 0.47 GB filled; 1024 px: 1.1 GB over the model). A fixed mmap threshold
# avoided it but spent 25-100% of the CPU time in the kernel. Larger vectors are mapped apart and cost their size.
HISTORY_OVERHEAD, HEAP_VECTOR_MAX = 1.5, 32 * 2**20
# Plan for this share of --max-memory: whole default runs planned for all of it, before HISTORY_OVERHEAD, peaked
# at 98-101% (512 px in 2 GiB: 1.96; 1024 px in 6 GiB: 5.96; 2048 px: 6.06; tubingen x starry_night, max RSS).
# With both, 1024 and 2048 px peaked at 5.22 and 5.25 GiB. See benchmarks/README.md.
PLAN_SHARE = 0.95


@dataclass
class OptimizeResult:
    """The stylized image plus what a report needs: losses before/after, time, sizes, history."""

    image: Image.Image
    tensor: torch.Tensor  # (1, 3, H, W) in [0, 1], on the CPU
    loss: dict[str, float]
    initial_loss: dict[str, float]
    steps: int
    seconds: float
    size: tuple[int, int]  # (width, height)
    history: list[tuple[int, float, float]] = field(default_factory=list)  # (step, seconds, total) per step
    saved: list[Path] = field(default_factory=list)
    scales: list[dict[str, object]] = field(default_factory=list)  # per scale: size, steps, converged
    out_of_time: bool = False  # stopped at max_time: ``image`` is the best so far (maybe a coarser scale)


def resolve_device(name: str) -> torch.device:
    """'auto' picks cuda, then mps, then cpu; an explicit device that is absent is an NSTError."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise NSTError(f"device {name!r} requested but CUDA is not available")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise NSTError("device 'mps' requested but MPS is not available")
    try:
        return torch.device(name)
    except RuntimeError:
        raise NSTError(f"unknown device {name!r}; use auto, cpu, cuda or mps") from None


def _as_pil(image: ImageLike) -> Image.Image:
    if isinstance(image, torch.Tensor):
        from nst_core.image_io import tensor_to_pil

        return tensor_to_pil(image)
    return open_image(image)


def _resized(img: Image.Image, longer_side: int) -> torch.Tensor:
    return pil_to_tensor(resize_longer(img, longer_side))


def _scale_sizes(cfg: OptimizeConfig, content: Image.Image, min_side: int) -> list[int]:
    """Longer sides from coarse to fine (halving each time), dropping levels too small for VGG."""
    aspect = min(content.size) / max(content.size)
    levels = cfg.scales or auto_scales(cfg.size)
    sizes = [max(1, round(cfg.size / 2 ** (levels - 1 - i))) for i in range(levels)]
    keep = [s for s in sizes if s * aspect >= min_side] or sizes[-1:]
    w, h = scaled_size(*content.size, keep[-1])
    if min(w, h) < min_side:
        raise NSTError(
            f"content image would be {w}x{h} px at --size {cfg.size}; "
            f"the chosen layers need at least {min_side} px on each side"
        )
    return keep


def optimize(
    content: ImageLike,
    styles: ImageLike | Sequence[ImageLike],
    config: OptimizeConfig | None = None,
    *,
    callback: StepCallback | None = None,
    loss_fn: PerceptualLoss | None = None,
    store: Callable[[OptimizeResult], object] | None = None,
    **overrides: object,
) -> OptimizeResult:
    """Stylize ``content`` with ``styles`` by optimising its pixels; returns an OptimizeResult.

    ``config`` fields can also be passed as keyword arguments (``optimize(c, s, steps=100,
    loss=LossWeights(style=1e3))``).
    ``loss_fn`` lets callers reuse an already-built PerceptualLoss (its weights must match).
    ``store`` receives the finished result (`nst optimize` writes its output with it) while the run's checkpoint
    holds that result, and the checkpoint is removed only once ``store`` returned: a kill before the output is
    in place loses nothing, and resuming such a checkpoint hands its result to ``store`` without optimising.
    """
    start = time.perf_counter()
    unknown = set(overrides) - {f.name for f in fields(OptimizeConfig)}
    if unknown:
        raise TypeError(f"unknown optimize option(s): {', '.join(sorted(unknown))}")
    cfg = replace(config or OptimizeConfig(), **overrides)
    style_list = list(styles) if isinstance(styles, list | tuple) else [styles]
    blend = blend_weights(len(style_list), cfg.style_blend)
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    images = _Images(_as_pil(content), [_as_pil(s) for s in style_list], _init_image(cfg), device)
    sizes = _scale_sizes(cfg, images.content, cfg.loss.min_side())
    histories = _check_plans(cfg, images, sizes)  # before any work: a budget too small for a scale fails now
    checkpointer = _checkpointer(cfg, images, histories)
    state = checkpointer.load() if cfg.resume else None
    if state is not None and "result" in state:  # finished, but its result was not stored yet
        return _finish(_restored(state["result"]), checkpointer, store)
    loss = _build_loss(cfg, loss_fn, device)
    if state is not None and state["level"] >= len(sizes):
        raise checkpointer.damaged(
            "level", state["level"], f"one of this run's {len(sizes)} scales (0-{len(sizes) - 1})"
        )
    run = Run(cfg, start, callback, _total_steps(cfg, len(sizes)), checkpointer)
    if state is not None:
        run.restore(state)

    x: torch.Tensor | None = state["image"] if state else None
    unfinished: dict[str, float] | None = None  # the best loss terms when max_time stopped the run
    try:
        for level, side in enumerate(sizes):
            if state is not None and level < state["level"]:
                continue
            run.level = level
            c, tiled, targets, history = _scale_loss(cfg, images, loss, blend, side)
            # popped: the checkpoint's tensors must not outlive their use (L-BFGS drops old history entries)
            saved = state.pop("scale") if state is not None and level == state["level"] else None
            if saved is not None:
                if saved["p"].shape != c.shape:
                    raise checkpointer.damaged("scale.p", saved["p"], f"the {side} px scale's shape {list(c.shape)}")
                x = saved["p"].to(c) / PIXEL_SCALE  # where the scale stood (solve goes on from saved["p"] itself)
            else:
                x = images.start(cfg, c) if x is None else resize_tensor(x.to(c), tuple(c.shape[-2:])).clamp_(0, 1)
            x = run.solve(x, tiled, targets, final=level == len(sizes) - 1, history=history, saved=saved)
            if checkpointer is not None and level < len(sizes) - 1:
                run.level = level + 1
                run.save(image=x)
    except OutOfTime as stop:
        x, unfinished = stop.image, stop.terms
    run.bar.close()
    result = _result(cfg, run, tiled, x, c, targets, images.start(cfg, c), unfinished)
    return result if result.out_of_time else _finish(result, checkpointer, store)


def _finish(
    result: OptimizeResult, checkpointer: OptimizeCheckpointer | None, store: Callable[[OptimizeResult], object] | None
) -> OptimizeResult:
    """Hand the finished ``result`` to ``store`` with the checkpoint holding it until then; remove the checkpoint."""
    if store is not None:
        if checkpointer is not None:
            checkpointer.save({"result": _result_state(result)})  # the picture, not the optimizer (150 MB at 4096 px)
        store(result)
    if checkpointer is not None:
        checkpointer.remove()
    return result


_RESULT_FIELDS = ("tensor", "loss", "initial_loss", "steps", "seconds", "size", "history", "scales")


def _result_state(result: OptimizeResult) -> dict[str, object]:
    return {name: getattr(result, name) for name in _RESULT_FIELDS}


def _restored(state: dict[str, object]) -> OptimizeResult:
    """The finished result a checkpoint holds (fields checked by `OptimizeCheckpointer.load`)."""
    values = {name: state[name] for name in _RESULT_FIELDS}
    values |= {"size": tuple(values["size"]), "history": [tuple(h) for h in values["history"]]}
    return OptimizeResult(image=_as_pil(values["tensor"]), **values)


def _scale_loss(
    cfg: OptimizeConfig, images: _Images, loss: PerceptualLoss, blend: list[float], side: int
) -> tuple[torch.Tensor, TiledLoss, dict[str, torch.Tensor], int]:
    """One scale's content image, its (tiled) loss with the style Grams set, content targets and history length.

    The style Grams come from a TiledLoss planned for the style images' own size, which style_scale can
    make larger than the content's.
    """
    c = images.content_at(side)
    styles = images.styles_at(round(side * cfg.style_scale), cfg.loss.min_side())
    TiledLoss(loss, _plan(cfg, *max((s.shape[-2:] for s in styles), key=math.prod))[0]).set_style(styles, blend)
    tile, history = _plan(cfg, *c.shape[-2:])
    tiled = TiledLoss(loss, tile)
    return c, tiled, tiled.content_targets(c), history


def _check_plans(cfg: OptimizeConfig, images: _Images, sizes: list[int]) -> list[int]:
    """Plan every scale's content and style images within ``cfg.max_memory_gb`` (NSTError if one does not fit,
    before any work); returns each scale's L-BFGS history length, which the plan sets and the result depends on."""
    histories = []
    for side in sizes:
        style_side = round(side * cfg.style_scale)
        for style in images.styles:
            _plan(cfg, *reversed(scaled_size(*style.size, images.style_side(style, style_side, cfg.loss.min_side()))))
        histories.append(_plan(cfg, *reversed(scaled_size(*images.content.size, side)))[1])
    return histories


def _checkpointer(cfg: OptimizeConfig, images: _Images, histories: list[int]) -> OptimizeCheckpointer | None:
    if cfg.checkpoint is None:
        return None
    print_ = fingerprint(cfg, images.content, images.styles, images.init) | {"history": histories}
    return OptimizeCheckpointer(cfg.checkpoint, print_, cfg.checkpoint_every)


def _plan(cfg: OptimizeConfig, h: int, w: int) -> tuple[int | None, int]:
    """Tile side (None: whole image) and L-BFGS history length for an h x w image within ``cfg.max_memory_gb``.

    L-BFGS keeps two image-sized vectors per history entry (100 entries of a 4096x3072 image: 30 GB);
    they get at most HISTORY_SHARE of the budget, the VGG evaluation (`plan_tiles`) what is left
    after them and the optimizer's other image-sized copies.
    """
    budget = cfg.max_memory_gb * 2**30 * PLAN_SHARE
    vector = 3 * h * w * 4
    entry = 2 * vector * (HISTORY_OVERHEAD if vector < HEAP_VECTOR_MAX else 1.0)
    history = max(MIN_HISTORY, min(HISTORY, int(budget * HISTORY_SHARE / entry)))
    if cfg.tile is not None:
        return (cfg.tile or None), history
    left = budget - history * entry - IMAGE_COPIES * vector
    return plan_tiles(h, w, int(left)), history


@dataclass
class _Images:
    """The decoded inputs, resized on demand to each scale and moved to the device."""

    content: Image.Image
    styles: list[Image.Image]
    init: Image.Image | None
    device: torch.device

    def _prepare(self, img: Image.Image, side: int) -> torch.Tensor:
        return _resized(img, side).unsqueeze(0).to(self.device)

    def content_at(self, side: int) -> torch.Tensor:
        return self._prepare(self.content, side)

    def styles_at(self, side: int, min_side: int) -> list[torch.Tensor]:
        return [self._prepare(s, self.style_side(s, side, min_side)) for s in self.styles]

    @staticmethod
    def style_side(style: Image.Image, side: int, min_side: int) -> int:
        """A style's longer side at a scale: ``side``, enlarged where its shorter side would be under ``min_side``."""
        return max(side, math.ceil(min_side * max(style.size) / min(style.size)))

    def start(self, cfg: OptimizeConfig, c: torch.Tensor) -> torch.Tensor:
        """The starting point at the size of ``c``: the content, seeded uniform noise, or a given image."""
        if cfg.init == "content":
            return c.clone()
        if cfg.init == "noise":
            return torch.rand(c.shape, generator=torch.Generator().manual_seed(cfg.seed)).to(c)
        # Clamped like a finer scale's start: bicubic enlarging rings past [0, 1], and the saved image is clamped.
        return resize_tensor(pil_to_tensor(self.init).unsqueeze(0).to(self.device), tuple(c.shape[-2:])).clamp_(0, 1)


def _init_image(cfg: OptimizeConfig) -> Image.Image | None:
    return None if cfg.init in ("content", "noise") else open_image(cfg.init)


def _build_loss(cfg: OptimizeConfig, loss_fn: PerceptualLoss | None, device: torch.device) -> PerceptualLoss:
    loss = (loss_fn or PerceptualLoss.build(cfg.loss, vgg_weights=cfg.vgg_weights)).to(device)
    if cfg.channels_last:  # channels-last weights make every conv run channels-last (faster oneDNN/cuDNN paths)
        loss = loss.to(memory_format=torch.channels_last)
    return loss


def _total_steps(cfg: OptimizeConfig, levels: int) -> int | None:
    """The progress bar's length: known when every scale has a fixed step count."""
    if cfg.steps is None:
        return None
    return cfg.steps + (levels - 1) * (cfg.coarse_steps or cfg.steps)


def _result(
    cfg: OptimizeConfig,
    run: Run,
    tiled: TiledLoss,
    x: torch.Tensor,
    c: torch.Tensor,
    targets: dict[str, torch.Tensor],
    start_image: torch.Tensor,
    unfinished: dict[str, float] | None,
) -> OptimizeResult:
    """The image as saved (clamped, colour kept if asked) and its loss, next to the starting loss.

    A run stopped by max_time is not scored again (two VGG passes, minutes at poster sizes, past the time
    limit): its loss is the best point's as optimised, and its starting loss is left empty.
    """
    with torch.no_grad():
        out = x.detach().clamp(0, 1)
        if cfg.preserve_color:
            out = preserve_color(out, c)
        if unfinished is None:  # scores only: no gradient pass, and no graph kept for one
            scores = (tiled.value_and_grad(i, targets, lambda t: False)[0] for i in (out, start_image))
            final_loss, initial_loss = scores
        else:
            final_loss, initial_loss = unfinished, {}
    out = out.float().cpu().contiguous()
    return OptimizeResult(
        image=_as_pil(out),
        tensor=out,
        loss=final_loss,
        initial_loss=initial_loss,
        steps=run.step,
        seconds=run.elapsed(),
        size=(int(out.shape[-1]), int(out.shape[-2])),
        history=run.history,
        saved=run.saved,
        scales=run.scales,
        out_of_time=unfinished is not None,
    )
