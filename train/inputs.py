"""The user's inputs (style image, data, run folder, tracker, resume point), checked before the run folder is
created: a typo never leaves an empty run behind."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from accelerate import PartialState
from accelerate.utils import parse_flag_from_env
from torch import nn

from nst_core.errors import NSTError
from nst_core.files import check_output_dir
from nst_core.image_io import display_name, load_image, resolve_name
from train.checkpoint import Checkpointer
from train.config import TrainConfig, missing_path_hint
from train.data import ImageSource, open_source, sample_photos
from train.teacher import load_teacher
from train.tracking import check_tracker


@dataclass
class RunInputs:
    """The user's inputs, checked before the run folder is created (a typo never leaves an empty run)."""

    style: torch.Tensor
    source: ImageSource
    checkpointer: Checkpointer
    resume_from: Path | None
    photos: torch.Tensor  # the sample-grid photos: the data is known to decode
    unreadable: list[str]  # files that failed to decode while looking for them
    init_weights: dict[str, torch.Tensor] | None = None  # --init-from's network (not used on --resume)
    teacher: nn.Module | None = None  # --teacher's network, frozen (train.teacher)


def process_state() -> PartialState:
    """This process's place in the run: the process group the Accelerator will use (it reads ACCELERATE_USE_CPU;
    PartialState alone does not)."""
    return PartialState(cpu=parse_flag_from_env("ACCELERATE_USE_CPU"))


def _load_style(cfg: TrainConfig) -> torch.Tensor:
    """The style image at its training size; a very elongated one may still be too thin for the loss layers."""
    size = cfg.style_size or cfg.image_size
    if not Path(resolve_name(cfg.style)).exists():  # a built-in style or skimage: name resolves to its file
        raise NSTError(f"{cfg.style}: no such style image{missing_path_hint(cfg.style, '--style')}")
    style = load_image(cfg.style, size=size)
    h, w = style.shape[-2:]
    if min(h, w) < cfg.loss.min_side():
        raise NSTError(
            f"{cfg.style}: {w}x{h} pixels at style size {size}; the loss layers need at least "
            f"{cfg.loss.min_side()} on each side (raise --style-size)"
        )
    return style


def check_inputs(cfg: TrainConfig, resume: str | None) -> RunInputs:
    """Style image, data, run folder and resume point; NSTError naming the first problem."""
    for value, missing in (
        (cfg.style, "no style image: give --style FILE (or a config that sets style)"),
        (cfg.data, "no training data: give --data FOLDER_OR_DATASET"),
        (cfg.output, "no run folder: give -o/--output RUN_DIR"),
    ):
        if not value:
            raise NSTError(missing)
    check_output_dir(cfg.output)
    check_tracker(cfg.report_to)
    checkpointer = Checkpointer(
        cfg.output, cfg.keep_checkpoints, {"style": display_name(cfg.style), "config": cfg.to_dict()}
    )
    style = _load_style(cfg)
    resume_from = checkpointer.resolve(resume) if resume else None
    if resume_from is None and checkpointer.latest() is not None:
        raise NSTError(
            f"{cfg.output} already holds checkpoints of a run: add --resume to continue it, or choose a new --output"
        )
    # A hub dataset is downloaded and prepared by the main process first, then read by the others.
    with process_state().main_process_first():
        source = open_source(cfg.data, cfg.data_split, cfg.streaming)
    photos, unreadable = sample_photos(source, cfg.num_samples, cfg.image_size)
    if cfg.sample_images:  # the data is still proved readable above
        samples = open_source(cfg.sample_images, flag="--sample-images")
        photos = sample_photos(samples, cfg.num_samples, cfg.image_size)[0]
    return RunInputs(
        style=style,
        source=source,
        checkpointer=checkpointer,
        resume_from=resume_from,
        photos=photos,
        unreadable=unreadable,
        init_weights=_init_weights(cfg) if cfg.init_from and resume_from is None else None,
        teacher=load_teacher(cfg.teacher) if cfg.teacher else None,
    )


def _init_weights(cfg: TrainConfig) -> dict[str, torch.Tensor]:
    """The starting weights of --init-from, checked to be a network of the configured variant."""
    from nst_core.checkpoint_io import load_network

    net, _ = load_network(cfg.init_from)
    if net.variant != cfg.variant:
        raise NSTError(
            f"{cfg.init_from}: a {net.variant} network; --init-from needs one of the run's variant ({cfg.variant})"
        )
    return net.state_dict()
