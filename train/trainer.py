"""The training loop (Johnson et al. 2016): one Accelerator, one loop, everything else in helpers.

Speed-ups over the plain pytorch/examples loop (see benchmarks/train_speed.py):
content targets run VGG only up to the content layer (relu2_2), the stylized batch makes a
single VGG pass for content and style, VGG runs channels-last, fused Adam, optional
bf16/fp16 autocast and torch.compile, uint8 batches decoded by DataLoader workers.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from nst_core.checkpoint_io import NETWORK_FILE, save_network
from nst_core.errors import NSTError
from nst_core.image_io import load_image, save_image
from nst_core.losses import LossWeights, PerceptualLoss
from nst_core.transformer import TransformerNet
from train import checkpoint as ckpt
from train.config import TrainConfig, save_yaml
from train.data import make_loader, open_source, sample_photos

TERMS = ("content", "style", "tv", "total")


@dataclass
class TrainResult:
    """What a finished run reports (also what the tests check)."""

    run_dir: Path
    step: int
    history: list[tuple[int, dict[str, float]]] = field(default_factory=list)  # (step, loss terms) at log steps
    skipped: int = 0  # decode failures (events, all processes, whole run)
    skipped_files: list[str] = field(default_factory=list)
    network: Path | None = None


def build_loss(cfg: TrainConfig, style: torch.Tensor, device: torch.device) -> PerceptualLoss:
    """Perceptual loss with the style Gram targets computed once, on the training device."""
    weights = LossWeights(
        content=cfg.content_weight,
        style=cfg.style_weight,
        tv=cfg.tv_weight,
        content_layers=cfg.content_layers,
        style_layers=cfg.style_layers,
    )
    loss = PerceptualLoss.build(weights, vgg_weights=cfg.vgg_weights).to(device)
    if cfg.channels_last:
        loss.to(memory_format=torch.channels_last)
    loss.set_style([style.to(device)])
    return loss


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


def make_optimizer(params: Any, cfg: TrainConfig, device: torch.device) -> torch.optim.Optimizer:
    """Adam(lr, betas=(0.9, 0.999)) as in Johnson et al.; the fused kernel when this torch has it."""
    if cfg.fused_adam:
        try:
            return torch.optim.Adam(params, lr=cfg.lr, fused=True)
        except (RuntimeError, ValueError, TypeError):
            pass  # older torch / unsupported device: fall through to the foreach kernel
    return torch.optim.Adam(params, lr=cfg.lr)


def total_steps(cfg: TrainConfig, length: int | None, world: int) -> int:
    if cfg.max_steps is not None:
        return cfg.max_steps
    if not length:
        raise NSTError("the dataset length is unknown (streaming); give --max-steps instead of --epochs")
    return max(1, math.ceil(cfg.epochs * length / (cfg.batch_size * world * cfg.grad_accum)))


def _tracker_config(cfg: TrainConfig) -> dict[str, Any]:
    """TensorBoard hparams accept only scalars and strings."""
    return {k: v if isinstance(v, int | float | str | bool) else str(v) for k, v in cfg.to_dict().items()}


def _make_accelerator(cfg: TrainConfig, run_dir: Path) -> Any:
    from accelerate import Accelerator

    try:
        return Accelerator(
            mixed_precision=cfg.mixed_precision,
            gradient_accumulation_steps=cfg.grad_accum,
            log_with="tensorboard" if cfg.report_to == "tensorboard" else None,
            project_dir=str(run_dir),
        )
    except (ValueError, RuntimeError) as e:
        raise NSTError(f"cannot set up training ({str(e).splitlines()[0]})") from None


@torch.no_grad()
def save_samples(net: nn.Module, photos: torch.Tensor, path: Path, autocast: Any) -> None:
    """A two-row grid (photos, stylized) written atomically."""
    from torchvision.utils import make_grid

    with autocast():
        styled = net(photos).float().clamp(0, 1)
    grid = make_grid(torch.cat([photos.float().cpu(), styled.cpu()]), nrow=len(photos), padding=2, pad_value=1.0)
    save_image(grid, path)


def run_training(
    cfg: TrainConfig, resume: str | None = None, on_step: Callable[[int, dict[str, torch.Tensor]], None] | None = None
) -> TrainResult:
    """Train a transformation network for ``cfg.style`` on ``cfg.data`` into the run folder ``cfg.out``.

    ``resume``: None, ``"latest"`` or a checkpoint folder. ``on_step(step, terms)`` is called after
    each optimizer step (hooks for custom logging; the tests use it to interrupt a run).
    """
    if not cfg.style:
        raise NSTError("no style image: give --style FILE (or a config that sets style)")
    if not cfg.data:
        raise NSTError("no training data: give --data FOLDER_OR_DATASET")
    if not cfg.out:
        raise NSTError("no run folder: give --out RUN_DIR")
    run_dir = Path(cfg.out)
    style = load_image(cfg.style, size=cfg.style_size or cfg.image_size)  # NSTError when unreadable
    resume_from = ckpt.resolve_resume(resume, run_dir) if resume else None
    if resume_from is None and ckpt.latest_checkpoint(run_dir) is not None:
        raise NSTError(
            f"{run_dir} already holds checkpoints of a run: add --resume to continue it, or choose a new --out"
        )
    run_dir.mkdir(parents=True, exist_ok=True)

    accelerator = _make_accelerator(cfg, run_dir)
    device, main = accelerator.device, accelerator.is_main_process
    rank, world = accelerator.process_index, accelerator.num_processes
    from accelerate.utils import gather_object, set_seed

    set_seed(cfg.seed)
    source = open_source(cfg.data, cfg.data_split, cfg.streaming)
    photos, unreadable = sample_photos(source, cfg.num_samples, cfg.image_size)
    skipped_files = list(dict.fromkeys(unreadable))
    for name in unreadable:
        accelerator.print(f"warning: skipping unreadable image {name}")

    net = TransformerNet.from_variant(cfg.variant).to(device)
    if cfg.net_channels_last:
        net.to(memory_format=torch.channels_last)
    loss_fn = build_loss(cfg, style, device)
    optimizer = make_optimizer(net.parameters(), cfg, device)
    net, optimizer = accelerator.prepare(net, optimizer)

    step, position, skipped = 0, 0, len(unreadable)
    if resume_from is not None:
        state = ckpt.load_checkpoint(resume_from, net, optimizer, rank)
        step, position = int(state["step"]), int(state["position"])
        skipped = int(state.get("skipped", 0))
        skipped_files = list(dict.fromkeys([*state.get("skipped_files", []), *skipped_files]))
        accelerator.print(f"resuming from {resume_from} (step {step})")
    max_steps = total_steps(cfg, source.length, world)
    if main:
        ckpt.clean_temporaries(run_dir)
        save_yaml(cfg, run_dir / "config.yaml")
        (run_dir / "samples").mkdir(exist_ok=True)
    metadata = {"style": Path(cfg.style).stem, "config": json.dumps(cfg.to_dict())}

    def checkpoint() -> None:
        rngs = gather_object([ckpt.rng_state()]) if world > 1 else [ckpt.rng_state()]
        if main:
            state = {"position": position, "skipped": skipped, "skipped_files": skipped_files, "config": cfg.to_dict()}
            ckpt.save_checkpoint(
                run_dir, step, net, optimizer, state, {**metadata, "step": step}, cfg.keep_checkpoints, rngs
            )
        accelerator.wait_for_everyone()

    forward = torch.compile(net) if cfg.compile else net
    memory = torch.channels_last if cfg.channels_last else torch.contiguous_format
    net_memory = torch.channels_last if cfg.net_channels_last else torch.contiguous_format
    photos = photos.to(device)
    if cfg.report_to == "tensorboard":
        accelerator.init_trackers("tensorboard", config=_tracker_config(cfg))

    result = TrainResult(run_dir=run_dir, step=step)
    last_saved = step if resume_from is not None else -1
    if step < max_steps:
        loader = make_loader(
            source,
            cfg.image_size,
            cfg.batch_size,
            cfg.crop_scale,
            cfg.seed,
            position,
            cfg.num_workers,
            rank,
            world,
            pin_memory=device.type == "cuda",
        )
        bar = tqdm(total=max_steps, initial=step, disable=not main, unit="step", dynamic_ncols=True)
        window_images, window_start = 0, time.perf_counter()
        for images, positions, bad in loader:
            for name in bad:
                skipped += 1
                if name not in skipped_files:
                    skipped_files.append(name)
                    tqdm.write(f"warning: skipping unreadable image {name}")
            x = images.to(device, non_blocking=True).float().div_(255.0)
            with accelerator.accumulate(net):
                with accelerator.autocast():
                    terms = forward_loss(forward, loss_fn, x, memory, net_memory)
                accelerator.backward(terms["total"])
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            position = (
                int(accelerator.gather(positions.to(device)).max()) + 1 if world > 1 else int(positions.max()) + 1
            )
            window_images += len(images) * world
            if not accelerator.sync_gradients:
                continue
            step += 1
            bar.update(1)
            if step % cfg.log_every == 0 or step == max_steps:
                values = {k: float(terms[k].detach().float()) for k in TERMS}
                if not math.isfinite(values["total"]):
                    raise NSTError(
                        f"loss became {values['total']} at step {step}; lower --lr, or use bf16 instead of fp16"
                    )
                rate = window_images / max(time.perf_counter() - window_start, 1e-9)
                window_images, window_start = 0, time.perf_counter()
                result.history.append((step, values))
                bar.set_postfix({**{k: f"{v:.3g}" for k, v in values.items()}, "img/s": f"{rate:.1f}"})
                accelerator.log({f"loss/{k}": v for k, v in values.items()} | {"images_per_s": rate}, step=step)
            if on_step is not None:
                on_step(step, terms)
            if main and (step % cfg.sample_every == 0 or step == max_steps):
                save_samples(
                    forward,
                    photos.contiguous(memory_format=net_memory),
                    run_dir / "samples" / f"step-{step:09d}.png",
                    accelerator.autocast,
                )
            if step % cfg.checkpoint_every == 0 or step == max_steps:
                checkpoint()
                last_saved = step
            if step >= max_steps:
                break
        bar.close()
    if last_saved != step:
        checkpoint()
    if main:
        result.network = save_network(net, run_dir / NETWORK_FILE, {**metadata, "step": step})
    accelerator.end_training()
    result.step, result.skipped, result.skipped_files = step, skipped, skipped_files
    if skipped:
        accelerator.print(
            f"skipped {skipped} unreadable image(s) ({len(skipped_files)} file(s)): "
            + ", ".join(skipped_files[:5])
            + (" ..." if len(skipped_files) > 5 else "")
        )
    return result
