"""The training loop (Johnson et al. 2016): one Accelerator, one loop, each phase a named method.

Speed-ups over the plain pytorch/examples loop (see benchmarks/train_speed.py):
content targets run VGG only up to the content layer (relu2_2), the stylized batch makes a
single VGG pass for content and style, VGG runs channels-last, fused Adam, optional
bf16/fp16 autocast and torch.compile, uint8 batches decoded by DataLoader workers.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.state import AcceleratorState, GradientState
from accelerate.utils import ProjectConfiguration, broadcast, broadcast_object_list, gather_object, set_seed
from torch import nn
from torchvision.utils import make_grid
from tqdm.auto import tqdm

from nst_core.checkpoint_io import unwrap
from nst_core.errors import NSTError
from nst_core.files import clean_stale_temporaries
from nst_core.image_io import save_image
from nst_core.log import LOG
from nst_core.losses.perceptual import PerceptualLoss
from nst_core.transformer import StyleNorm, TransformerNet
from train.checkpoint import step_dir_name
from train.config import TrainConfig, save_yaml
from train.data import make_loader
from train.inputs import RunInputs, check_inputs, process_state
from train.lock import RunLock
from train.schedule import Schedule, turn_order
from train.state import TrainingState
from train.tracking import TRACKER_PROJECT, log_grid, log_with, tracker_config
from train.work_size import check_work_size

OnStep = Callable[[int, dict[str, torch.Tensor]], None]


@dataclass
class TrainResult:
    """What a finished run reports (also what the tests check)."""

    run_dir: Path
    step: int
    history: list[tuple[int, dict[str, float]]] = field(default_factory=list)  # (step, loss terms) at log steps
    skipped: int = 0  # decode failures (events, all processes, whole run)
    skipped_files: list[str] = field(default_factory=list)
    network: Path | None = None
    data_files: int | None = None  # image files in the data (None: a stream of unknown length)
    mixed_precision: str = "no"  # the precision actually used (the config's, else accelerate's)
    seconds: float = 0.0  # wall-clock time of the training loop, all sessions of the run
    out_of_time: bool = False  # stopped by max_time before max_steps (--resume goes on)


def build_loss(cfg: TrainConfig, style: torch.Tensor, device: torch.device) -> PerceptualLoss:
    """Perceptual loss with the style Gram targets computed once, on the training device."""
    loss = PerceptualLoss.build(cfg.loss, vgg_weights=cfg.vgg_weights).to(device)
    if cfg.channels_last:
        loss.to(memory_format=torch.channels_last)
    loss.set_style([style.to(device)])
    return loss


class StyleTargets:
    """The loss of each style a run learns: one VGG, each painting's Gram targets and style weight, computed once;
    `use` points the loss at one of them (Dumoulin et al.: each batch learns one style)."""

    def __init__(self, cfg: TrainConfig, styles: list[torch.Tensor], weights: list[float], device: torch.device):
        self.loss = build_loss(cfg, styles[0], device)
        self.grams, self.weights = [self.loss.style_grams], [dataclasses.replace(cfg.loss, style=w) for w in weights]
        for style in styles[1:]:
            self.loss.set_style([style.to(device)])
            self.grams.append(self.loss.style_grams)

    def use(self, k: int) -> PerceptualLoss:
        self.loss.style_grams, self.loss.weights = self.grams[k], self.weights[k]
        return self.loss


def forward_loss(
    net: nn.Module,
    loss_fn: PerceptualLoss,
    x: torch.Tensor,
    memory: torch.memory_format = torch.channels_last,
    net_memory: torch.memory_format = torch.contiguous_format,
) -> dict[str, torch.Tensor]:
    """Loss terms of one batch: content targets only as deep as relu2_2 (no grad), then one VGG pass
    over the stylized batch for content and style together."""
    targets = loss_fn.content_targets(x.contiguous(memory_format=memory))
    y = net(x.contiguous(memory_format=net_memory))
    return loss_fn(y.contiguous(memory_format=memory), targets)


def distil_loss(
    net: nn.Module, teacher: nn.Module, x: torch.Tensor, net_memory: torch.memory_format = torch.contiguous_format
) -> dict[str, torch.Tensor]:
    """Mean absolute pixel difference to the teacher's output: a trained style moved into another variant at the
    cost of two transformer passes instead of VGG's (L1: less inclined than L2 to average textures into blur)."""
    x = x.contiguous(memory_format=net_memory)
    with torch.no_grad():
        target = teacher(x)
    error = F.l1_loss(net(x).float(), target.float())
    return {"teacher": error, "total": error}


def _fused_devices() -> list[str]:
    try:
        from torch.utils._foreach_utils import _get_fused_kernels_supported_devices

        return list(_get_fused_kernels_supported_devices())
    except ImportError:  # older torch: fused Adam is CUDA-only there
        return ["cuda"]


def make_optimizer(params: Any, cfg: TrainConfig, device: torch.device) -> torch.optim.Optimizer:
    """Adam(lr, betas=(0.9, 0.999)) as in Johnson et al.; the fused kernel when ``device`` has one."""
    fused = cfg.fused_adam and torch.device(device).type in _fused_devices()
    return torch.optim.Adam(params, lr=cfg.lr, fused=True if fused else None)


def total_steps(cfg: TrainConfig, length: int | None, world: int) -> int:
    if cfg.max_steps is not None:
        return cfg.max_steps
    if not length:
        raise NSTError("the dataset length is unknown (streaming); give --max-steps instead of --epochs")
    return max(1, math.ceil(cfg.epochs * length / (cfg.batch_size * world * (cfg.grad_accum or 1))))


def make_accelerator(cfg: TrainConfig, run_dir: Path) -> tuple[Accelerator, TrainConfig]:
    """The Accelerator, and ``cfg`` with the precision and accumulation it actually uses.

    Only values the config sets are passed: the others come from `accelerate launch` / `accelerate config`
    (through ACCELERATE_MIXED_PRECISION, ACCELERATE_GRADIENT_ACCUMULATION_STEPS), else no / 1.
    """
    given = {"mixed_precision": cfg.mixed_precision, "gradient_accumulation_steps": cfg.grad_accum}
    logs = ProjectConfiguration(project_dir=str(run_dir), logging_dir=str(run_dir / "tensorboard"))
    try:
        accelerator = Accelerator(
            **{k: v for k, v in given.items() if v is not None}, log_with=log_with(cfg), project_config=logs
        )
    except (ValueError, RuntimeError) as e:
        raise NSTError(f"cannot set up training ({str(e).splitlines()[0]})") from None
    used = {"mixed_precision": str(accelerator.mixed_precision), "grad_accum": accelerator.gradient_accumulation_steps}
    return accelerator, cfg.updated(used, "accelerate")


@torch.no_grad()
def save_samples(
    net: nn.Module, photos: torch.Tensor, path: Path, autocast: Any, styles: range = range(1)
) -> torch.Tensor:
    """A grid (the photos, then a row per style of ``styles``) written atomically; returned for the trackers."""
    with autocast():
        styled = [net(photos, style=k).float().clamp(0, 1).cpu() for k in styles]
    grid = make_grid(torch.cat([photos.float().cpu(), *styled]), nrow=len(photos), padding=2, pad_value=1.0)
    save_image(grid, path)
    return grid


class Throughput:
    """Images per second since the last reading (for the progress bar and TensorBoard)."""

    def __init__(self) -> None:
        self.images, self.start = 0, time.perf_counter()

    def add(self, images: int) -> None:
        self.images += images

    def rate(self) -> float:
        now = time.perf_counter()
        rate = self.images / max(now - self.start, 1e-9)
        self.images, self.start = 0, now
        return rate


class Trainer:
    """One run: accelerator, network, loss, optimizer, training state and checkpointer, built once;
    the loop calls `train_step`, `log`, `save_samples` and `save_checkpoint` as their turn comes."""

    def __init__(
        self,
        cfg: TrainConfig,
        inputs: RunInputs,
        progress: bool = True,
        messages: bool = True,
        lock: RunLock | None = None,
    ) -> None:
        self.inputs, self.progress, self.messages = inputs, progress, messages
        self.run_dir, self.checkpointer = inputs.checkpointer.run_dir, inputs.checkpointer
        self.lock = lock or RunLock(self.run_dir.absolute())  # one trainer per run folder (train.lock)
        self.accelerator, self.cfg = make_accelerator(cfg, self.run_dir)
        cfg = self.cfg  # with the precision and accumulation accelerate settled on
        self.checkpointer.metadata["config"] = cfg.to_dict()
        self.device, self.main = self.accelerator.device, self.accelerator.is_main_process
        self.rank, self.world = self.accelerator.process_index, self.accelerator.num_processes
        set_seed(cfg.seed)
        if self.device.type == "cuda":  # fixed crop size: cuDNN's autotuner picks each conv's fastest kernel once
            torch.backends.cudnn.benchmark = True
        if self.world > 1:  # every process writes into the main process's temporary checkpoint folder
            self.checkpointer.writer_pid = broadcast_object_list([self.checkpointer.writer_pid])[0]
        self.memory = torch.channels_last if cfg.channels_last else torch.contiguous_format
        self.net_memory = torch.channels_last if cfg.net_channels_last else torch.contiguous_format
        net = TransformerNet.from_variant(cfg.variant, styles=len(inputs.style_names))
        if inputs.init_weights is not None:
            net.load_state_dict(inputs.init_weights)
        net = net.to(self.device, memory_format=self.net_memory)
        if cfg.add_style:  # the new styles' norm rows only: the others get exact zero gradients (one-hot style)
            for module in net.modules():
                for p in module.parameters(recurse=False):
                    p.requires_grad_(isinstance(module, StyleNorm))
        self.teachers = [t.to(self.device) for t in inputs.teachers]
        self.targets = StyleTargets(cfg, inputs.styles, inputs.style_weights, self.device) if inputs.styles else None
        self.loss_fn = self.targets.loss if self.targets else None
        trainable = [p for p in net.parameters() if p.requires_grad]
        optimizer = make_optimizer(trainable, cfg, self.device)
        self.net, self.optimizer = self.accelerator.prepare(net, optimizer)
        self.forward = torch.compile(self.net) if cfg.compile else self.net
        self.max_steps = total_steps(cfg, inputs.source.length, self.world)
        self.schedule = Schedule(cfg, self.max_steps)
        self.state, self.last_saved, self.throughput = TrainingState(), -1, Throughput()
        self.out_of_time = False
        self.checkpointer.attach(self.accelerator, self.state)
        self.photos = inputs.photos.to(self.device).contiguous(memory_format=self.net_memory)
        self.turns = turn_order(cfg.style_turns or [1] * inputs.trained)  # whose turn each step of a cycle is

    def note(self, text: str) -> None:
        """A note on stderr (main process, not under -q); stdout is kept for --json."""
        if self.main and self.messages:
            LOG.info(text)

    def warn(self, text: str) -> None:
        if self.main and self.messages:
            LOG.warning(text)

    def note_skipped(self, names: list[str]) -> None:
        for name in self.state.note_skipped(names):
            self.warn(f"skipping unreadable image {name}")

    def start(self) -> None:
        """Restore a checkpoint if resuming, create the run folder (stale temporaries removed), write config.yaml,
        open the tracker: the first writes of a run, once everything that can be checked was checked."""
        if self.inputs.resume_from is not None:
            self.resume(self.inputs.resume_from)
        self.note(self.inputs.source.summary())
        if self.inputs.style_weight_note:
            self.note(self.inputs.style_weight_note)
        if self.inputs.init_weights is not None:
            self.note(f"starting from the network in {self.cfg.init_from}")
        if self.teachers:
            self.note(f"distilling {', '.join(self.cfg.teachers)} (pixel L1; the style loss is not used)")
        if len(self.inputs.style_names) > 1:
            new = self.inputs.style_names[self.inputs.first_trained :]
            kept = self.inputs.style_names[: self.inputs.first_trained]
            adding = f"; only their norm rows train, {', '.join(kept)} stay as they are" if kept else ""
            self.note(f"one network of {len(self.inputs.style_names)} styles: learning {', '.join(new)}{adding}")
        self.note_skipped([n for n in self.inputs.unreadable if n not in self.state.skipped_files])
        if self.main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            if not self.lock.held:  # a new run folder: locked as soon as it exists
                self.lock.acquire()
            for folder in (self.run_dir, self.run_dir / "samples"):  # left by a killed run
                clean_stale_temporaries(folder)
            self.checkpointer.clean_temporaries()
            save_yaml(self.cfg, self.run_dir / "config.yaml")
            (self.run_dir / "samples").mkdir(exist_ok=True)
        if self.cfg.report_to != "none":
            self.accelerator.init_trackers(TRACKER_PROJECT, config=tracker_config(self.cfg))
        self.accelerator.wait_for_everyone()  # the run folder exists for every process

    def resume(self, ckpt: Path) -> None:
        """Weights, optimizer, scaler, RNG and training state from ``ckpt``; the config's learning rate."""
        self.checkpointer.load(ckpt, self.accelerator)
        streams = self.state.stream_positions
        if streams and len(streams) != self.world:
            raise NSTError(
                f"{ckpt}: a streaming run saved by {len(streams)} process(es) resumes with as many, not {self.world}"
            )
        self.schedule.resumed_at = self.state.progress  # the config's --lr and schedule from here, not the saved lr
        self.set_lr(self.schedule.lr(self.state.progress))
        self.last_saved = self.state.step
        self.note(f"resuming from {ckpt} (step {self.state.step})")

    def fit(self, on_step: OnStep | None = None) -> None:
        """Optimizer steps until ``max_steps``; ``on_step(step, terms)`` after each one."""
        if self.state.step >= self.max_steps:
            return
        if self.state.progress >= 1.0 and self.cfg.lr_schedule != "constant":
            self.note(f"the learning-rate schedule ended at step {self.state.step}: nothing left to train")
            return
        cuda = self.device.type == "cuda"
        start = self.state.stream_positions[self.rank] if self.state.stream_positions else self.state.position
        loader = make_loader(self.cfg, self.inputs.source, start, self.rank, self.world, cuda)
        show = self.main and self.progress
        bar = tqdm(total=self.max_steps, initial=self.state.step, disable=not show, unit="step", dynamic_ncols=True)
        last = started = time.perf_counter()
        with bar:
            for images, positions, bad in loader:
                terms = self.train_step(images, positions, bad)
                now = time.perf_counter()
                self.state.seconds, last = self.state.seconds + now - last, now
                self.state.progress = self.schedule.progress(self.state.step, now - started)
                if terms is None:  # accumulating gradients
                    continue
                bar.update(1)
                step = self.state.step
                if self.due(self.cfg.log_every):
                    bar.set_postfix(self.log(terms))
                if on_step is not None:
                    on_step(step, terms)
                if self.main and self.due(self.cfg.sample_every):
                    self.save_samples()
                if self.due(self.cfg.checkpoint_every):
                    self.save_checkpoint()
                if step >= self.max_steps:
                    break
                if self.due(self.cfg.log_every) and self.time_is_up(started):
                    self.note(f"--max-time {self.cfg.max_time:g} s reached at step {step}; {self.what_next()}")
                    self.out_of_time = True
                    if self.main and step % self.cfg.sample_every:  # a grid of where this session ended
                        self.save_samples()
                    break

    def what_next(self) -> str:
        """After the deadline: a constant rate can go on (--resume); a schedule has ended there."""
        if self.cfg.lr_schedule == "constant":
            return "--resume goes on"
        return f"the {self.cfg.lr_schedule} learning-rate schedule ended with it"

    def time_is_up(self, started: float) -> bool:
        """Whether this session's ``max_time`` is spent, as the main process sees it (every process stops at
        the same step; asked at log steps only, so a multi-process run syncs no more often than it logs)."""
        if self.cfg.max_time is None:
            return False
        late = time.perf_counter() - started >= self.cfg.max_time
        if self.world == 1:
            return late
        return bool(broadcast(torch.tensor(float(late), device=self.device), from_process=0))

    def due(self, every: int) -> bool:
        return self.state.step % every == 0 or self.state.step == self.max_steps

    def train_step(
        self, images: torch.Tensor, positions: torch.Tensor, bad: list[str]
    ) -> dict[str, torch.Tensor] | None:
        """Forward, backward and (once ``grad_accum`` batches are in) an optimizer step; None while accumulating."""
        x = self.crop(images.to(self.device, non_blocking=True).float().div_(255.0))
        self.set_lr(self.schedule.lr(self.state.progress))
        with self.accelerator.accumulate(self.net):
            with self.accelerator.autocast():
                terms = self.batch_loss(x)
            total = terms["total"].detach()
            if not torch.isfinite(total):  # stop before a step spreads it into the weights
                raise NSTError(self.diverged(f"loss became {float(total)}", self.state.step + 1))
            self.accelerator.backward(terms["total"])
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
        self.advance(positions, bad)
        self.throughput.add(len(images) * self.world)
        if not self.accelerator.sync_gradients:
            return None
        self.state.step += 1
        return terms

    def crop(self, x: torch.Tensor) -> torch.Tensor:
        """The batch at this stage's crop size (scaled down, antialiased, in a smaller first stage)."""
        size = self.schedule.crop_size(self.state.progress)
        if x.shape[-1] == size:
            return x
        return F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False).clamp_(0, 1)

    def set_lr(self, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def batch_loss(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The loss terms of one batch: the perceptual loss, or with a teacher the distillation loss, for the style
        whose turn it is (the styles take turns by step, so a resumed run takes the same turns)."""
        k = self.turns[self.state.step % len(self.turns)]
        net = functools.partial(self.forward, style=self.inputs.first_trained + k)
        if self.teachers:
            return distil_loss(net, self.teachers[k], x, self.net_memory)
        return forward_loss(net, self.targets.use(k), x, self.memory, self.net_memory)

    def advance(self, positions: torch.Tensor, bad: list[str]) -> None:
        """The data position after this batch, and the unreadable files met, agreed by every process."""
        if self.world > 1:
            bad = [name for names in gather_object([bad]) for name in names]
            positions = self.accelerator.gather(positions.to(self.device)).cpu().view(self.world, -1)
        self.note_skipped(bad)
        if self.inputs.source.streaming:  # each process reads its own split of the stream
            self.state.stream_positions = [int(p) + 1 for p in positions.view(self.world, -1).max(dim=1).values]
        else:
            self.state.position = int(positions.max()) + 1

    def log(self, terms: dict[str, torch.Tensor]) -> dict[str, str]:
        """Record the loss terms (history, trackers). Returns the progress bar's text."""
        step = self.state.step
        values = {k: float(v.detach().float()) for k, v in terms.items()}
        rate = self.throughput.rate()
        self.state.history.append((step, values))
        lr = self.optimizer.param_groups[0]["lr"]
        scalars = {f"loss/{k}": v for k, v in values.items()} | {"images_per_s": rate, "lr": lr}
        self.accelerator.log(scalars | {"progress": self.state.progress}, step=step)
        return {**{k: f"{v:.3g}" for k, v in values.items()}, "img/s": f"{rate:.1f}"}

    def diverged(self, what: str, step: int) -> str:
        """The message of a run that blew up: where, and the likely cause."""
        w = self.cfg.loss
        cause = f"learning rate {self.cfg.lr:g} or loss weights (content {w.content:g}, style {w.style:g}) too large"
        if self.cfg.mixed_precision == "fp16":
            cause += ", or fp16 overflow (try --mixed-precision bf16)"
        return f"{what} at step {step}: {cause}"

    def save_samples(self) -> None:
        """The sample grid on disk and in the trackers (main process): a row per style the run trains."""
        path = self.run_dir / "samples" / f"{step_dir_name(self.state.step)}.png"
        rows = range(self.inputs.first_trained, len(self.inputs.style_names))
        grid = save_samples(self.forward, self.photos, path, self.accelerator.autocast, rows)
        log_grid(self.accelerator, grid, self.state.step)

    def save_checkpoint(self) -> None:
        """Every process takes part (accelerate saves each one's RNG); never a checkpoint of a blown-up network."""
        for name, p in unwrap(self.net).named_parameters():
            if not torch.isfinite(p.detach()).all():
                raise NSTError(self.diverged(f"weights became non-finite ({name})", self.state.step))
        self.checkpointer.save(self.accelerator, self.state.step)
        self.last_saved = self.state.step

    def record_work_size(self, photos: torch.Tensor) -> None:
        """The network's default way to paint larger pictures, by its own loss (train.work_size), in its metadata."""
        check = check_work_size(unwrap(self.net), self.loss_fn, self.cfg, photos)
        self.checkpointer.metadata["work_size"] = check["work_size"]
        self.checkpointer.metadata["work_size_check"] = check
        way = f"through {check['work_size']} px" if check["work_size"] else "in one pass"
        self.note(
            f"at {check['size']} px the network's loss is {check['loss_one_pass']:.4g} in one pass and "
            f"{check['loss_work_size']:.4g} through {self.cfg.style_size or self.cfg.image_size} px: pictures "
            f"of other sizes are painted {way} by default (nst stylize --work-size overrides it)"
        )

    def finish(self) -> TrainResult:
        """Last checkpoint (if the loop did not just write it), the final network, the skip report."""
        if self.last_saved != self.state.step:
            self.save_checkpoint()
        if self.main and self.targets is not None and self.inputs.large_photos is not None:
            self.record_work_size(self.inputs.large_photos)
        network = self.checkpointer.save_network(self.net, self.state.step) if self.main else None
        s = self.state
        if s.skipped:
            names = ", ".join(s.skipped_files[:5]) + (" ..." if len(s.skipped_files) > 5 else "")
            n, total = len(s.skipped_files), self.inputs.source.length
            used = f"; trained on the other {total - n} of {total} image files" if total else ""
            self.warn(f"skipped {s.skipped} unreadable image(s) ({n} file(s)): {names}{used}")
        files, precision = self.inputs.source.length, str(self.cfg.mixed_precision)
        return TrainResult(
            run_dir=self.run_dir,
            step=s.step,
            history=s.history,
            skipped=s.skipped,
            skipped_files=list(s.skipped_files),
            network=network,
            data_files=files,
            mixed_precision=precision,
            seconds=s.seconds,
            out_of_time=self.out_of_time,
        )


def _forget_accelerator_state() -> None:
    """accelerate keeps one precision per process: reset it (not the process group) so that the next run in
    this process takes its own settings (accelerate's tests do the same; a private method)."""

    AcceleratorState._reset_state()
    GradientState._reset_state()


def run_training(
    cfg: TrainConfig,
    resume: str | None = None,
    on_step: OnStep | None = None,
    progress: bool = True,
    messages: bool = True,
) -> TrainResult:
    """Train a transformation network for ``cfg.style`` on ``cfg.data`` into the run folder ``cfg.output``.

    ``resume``: None, ``"latest"`` or a checkpoint folder. ``on_step(step, terms)`` is called after
    each optimizer step (hooks for custom logging; the tests use it to interrupt a run). ``progress``:
    the progress bar on stderr, ``messages``: notes and warnings through the ``nst`` logger (nst_core.log, which
    the `nst` command sends to stderr; stdout is left to --json).
    """
    lock = RunLock(Path(cfg.output).absolute())
    if process_state().is_main_process and lock.run_dir.is_dir():
        lock.acquire()  # before a checkpoint is read: a second trainer of the run stops at once
    try:
        inputs = check_inputs(cfg, resume)  # before anything is written
        run_dir = inputs.checkpointer.run_dir.absolute()
        created = next((p for p in reversed((run_dir, *run_dir.parents)) if not p.exists()), None)  # by this call
        trainer = Trainer(inputs.cfg, inputs, progress, messages, lock=lock)  # network, VGG loss: still nothing written
        started = False
        try:
            trainer.start()
            started = True
            trainer.fit(on_step)
            return trainer.finish()
        finally:
            trainer.accelerator.end_training()  # also on an interrupt: trackers flushed and closed
            _forget_accelerator_state()
            if created is not None and not started and trainer.main:  # the folders this call made hold nothing
                lock.release()
                shutil.rmtree(created, ignore_errors=True)
    finally:
        lock.release()
