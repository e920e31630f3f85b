"""The user's inputs (style image, data, run folder, tracker, resume point), checked before the run folder is
created: a typo never leaves an empty run behind."""

from __future__ import annotations

import dataclasses
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
from train.teacher import load_start, load_teacher
from train.tracking import check_tracker


@dataclass
class RunInputs:
    """The user's inputs, checked before the run folder is created (a typo never leaves an empty run)."""

    cfg: TrainConfig  # the config the run uses: the style weight resolved (``style_weight_rule``)
    style: torch.Tensor
    source: ImageSource
    checkpointer: Checkpointer
    resume_from: Path | None
    photos: torch.Tensor  # the sample-grid photos: the data is known to decode
    large_photos: torch.Tensor | None  # the same at twice the crop size: the work-size check (train.work_size)
    unreadable: list[str]  # files that failed to decode while looking for them
    init_weights: dict[str, torch.Tensor] | None = None  # --init-from's network (not used on --resume)
    teacher: nn.Module | None = None  # --teacher's network, frozen (train.teacher)
    style_weight_note: str | None = None  # how the energy rule set the style weight


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
    style = _load_style(cfg)
    cfg, weight_note = _resolve_style_weight(cfg, style)
    checkpointer = Checkpointer(
        cfg.output, cfg.keep_checkpoints, {"style": display_name(cfg.style), "config": cfg.to_dict()}
    )
    resume_from = checkpointer.resolve(resume) if resume else None
    if resume_from is None and checkpointer.latest() is not None:
        raise NSTError(
            f"{cfg.output} already holds checkpoints of a run: add --resume to continue it, or choose a new --output"
        )
    # A hub dataset is downloaded and prepared by the main process first, then read by the others.
    with process_state().main_process_first():
        source = open_source(cfg.data, cfg.data_split, cfg.streaming)
    photos, unreadable = sample_photos(source, cfg.num_samples, cfg.image_size)
    samples = source
    if cfg.sample_images:  # the data is still proved readable above
        samples = open_source(cfg.sample_images, flag="--sample-images")
        photos = sample_photos(samples, cfg.num_samples, cfg.image_size)[0]
    large = sample_photos(samples, cfg.num_samples, 2 * cfg.image_size)[0] if not cfg.teacher else None
    teacher = load_teacher(cfg.teacher) if cfg.teacher else None
    if teacher is not None and getattr(teacher, "work_size", None) is not None:
        checkpointer.metadata["work_size"] = teacher.work_size  # the student paints as its teacher (nst_core.scales)
    return RunInputs(
        cfg=cfg,
        style_weight_note=weight_note,
        style=style,
        source=source,
        checkpointer=checkpointer,
        resume_from=resume_from,
        photos=photos,
        large_photos=large,
        unreadable=unreadable,
        init_weights=_init_weights(cfg) if cfg.init_from and resume_from is None else None,
        teacher=teacher,
    )


def _resolve_style_weight(cfg: TrainConfig, style: torch.Tensor) -> tuple[TrainConfig, str | None]:
    """``cfg`` with the style weight the energy rule gives this painting (and the rule then `fixed`, so a resumed
    run keeps the weight), and a note saying how; ``cfg`` unchanged under the fixed rule or with a teacher."""
    if cfg.style_weight_rule == "fixed" or cfg.teacher:
        return cfg, None
    from nst_core.losses.calibrate import REFERENCE_STYLE, energy_scaled_style_weight

    reference = load_image(REFERENCE_STYLE, size=cfg.style_size or cfg.image_size)
    weight, mine, ref = energy_scaled_style_weight(cfg.loss, style, reference, cfg.vgg_weights)
    loss = dataclasses.replace(cfg.loss, style=float(f"{weight:.4g}"))
    note = (
        f"style weight {loss.style:g}: {cfg.loss.style:g} x {REFERENCE_STYLE}'s Gram energy over the painting's "
        f"({ref:.3g} / {mine:.3g}; --style-weight-rule energy)"
    )
    return dataclasses.replace(cfg, loss=loss, style_weight_rule="fixed"), note


def _init_weights(cfg: TrainConfig) -> dict[str, torch.Tensor]:
    """The starting weights of --init-from, checked to be a network of the configured variant."""
    net = load_start(cfg.init_from)
    if net.variant != cfg.variant:
        raise NSTError(
            f"{cfg.init_from}: a {net.variant} network; --init-from needs one of the run's variant ({cfg.variant})"
        )
    return net.state_dict()
