"""Experiment trackers through accelerate: which one (`--report-to`), checked before the run folder exists,
the run's hyperparameters in a form every tracker takes, and sample grids logged as images."""

from __future__ import annotations

from typing import Any

import torch

from nst_core.errors import NSTError
from train.config import TRACKER_PACKAGES, TrainConfig

#: The project name trackers get (wandb's project; TensorBoard's events go to RUN_DIR/tensorboard/nst/).
TRACKER_PROJECT = "nst"


def check_tracker(name: str) -> None:
    """NSTError naming the pip package when ``name`` is a tracker that is not installed (accelerate's own test)."""
    if name in ("all", "none"):
        return
    import accelerate.utils

    if not getattr(accelerate.utils, f"is_{name}_available")():
        raise NSTError(f"--report-to {name}: the tracker is not installed (pip install {TRACKER_PACKAGES[name]})")


def log_with(cfg: TrainConfig) -> str | None:
    """Accelerator's ``log_with``: None for `none`."""
    return None if cfg.report_to == "none" else cfg.report_to


def tracker_config(cfg: TrainConfig) -> dict[str, Any]:
    """Hyperparameters as scalars and strings (TensorBoard's hparams take nothing else); loss.content, loss.style ..."""
    flat = cfg.to_dict()
    flat |= {f"loss.{k}": v for k, v in flat.pop("loss").items()}
    return {k: v if isinstance(v, int | float | str | bool) else str(v) for k, v in flat.items()}


def log_grid(accelerator: Any, grid: torch.Tensor, step: int) -> None:
    """A sample grid (3, H, W in [0, 1]) into every tracker that takes images; main process only.

    TensorBoard through its SummaryWriter (``add_image``), the others through accelerate's ``log_images``.
    """
    from torchvision.transforms.functional import to_pil_image

    for tracker in accelerator.trackers:
        if tracker.name == "tensorboard":
            accelerator.get_tracker("tensorboard", unwrap=True).add_image("samples", grid, global_step=step)
        elif hasattr(tracker, "log_images"):
            tracker.log_images({"samples": [to_pil_image(grid)]}, step=step)
