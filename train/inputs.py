"""The user's inputs (style images or teachers, data, run folder, tracker, resume point), checked before the run
folder is created: a typo never leaves an empty run behind.

A run trains one network of one style or of several (`nst_core.transformer.StyleNorm`): several ``--style`` images
(each batch learns one of them in turn), several ``--teacher`` networks (one per style), or ``--add-style``, which
appends the run's styles to the ``--init-from`` network and trains only their norm rows."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from accelerate import PartialState
from accelerate.utils import parse_flag_from_env
from torch import nn

from nst_core.errors import NSTError
from nst_core.files import check_output_dir
from nst_core.image_io import display_name, load_image, resolve_name
from nst_core.transformer import TransformerNet, with_styles
from train.checkpoint import Checkpointer
from train.config import TrainConfig, missing_path_hint
from train.data import ImageSource, open_source, sample_photos
from train.teacher import load_start, load_teacher
from train.tracking import check_tracker


@dataclass
class RunInputs:
    """The user's inputs, checked before the run folder is created (a typo never leaves an empty run)."""

    cfg: TrainConfig  # the config the run uses: the style weight resolved (``style_weight_rule``)
    styles: list[torch.Tensor]  # the style images the run learns (none in a distillation)
    source: ImageSource
    checkpointer: Checkpointer
    resume_from: Path | None
    photos: torch.Tensor  # the sample-grid photos: the data is known to decode
    large_photos: torch.Tensor | None  # the same at twice the crop size: the work-size check (train.work_size)
    unreadable: list[str]  # files that failed to decode while looking for them
    init_weights: dict[str, torch.Tensor] | None = None  # --init-from's network (not used on --resume)
    teachers: list[nn.Module] = dataclasses.field(default_factory=list)  # --teacher's networks, frozen (train.teacher)
    style_weight_note: str | None = None  # how the energy rule set the style weight
    style_names: list[str] = dataclasses.field(default_factory=list)  # the network's styles, in the order of its rows
    trained: int = 1  # how many of them this run trains: the last ones (all but --add-style's base styles)
    style_weights: list[float] = dataclasses.field(default_factory=list)  # the style loss weight of each trained one

    @property
    def first_trained(self) -> int:
        """The norm row of the first style this run trains."""
        return len(self.style_names) - self.trained


def process_state() -> PartialState:
    """This process's place in the run: the process group the Accelerator will use (it reads ACCELERATE_USE_CPU;
    PartialState alone does not)."""
    return PartialState(cpu=parse_flag_from_env("ACCELERATE_USE_CPU"))


def _load_style(cfg: TrainConfig, name: str) -> torch.Tensor:
    """A style image at its training size; a very elongated one may still be too thin for the loss layers."""
    size = cfg.style_size or cfg.image_size
    if not Path(resolve_name(name)).exists():  # a built-in style or skimage: name resolves to its file
        raise NSTError(f"{name}: no such style image{missing_path_hint(name, '--style')}")
    style = load_image(name, size=size)
    h, w = style.shape[-2:]
    if min(h, w) < cfg.loss.min_side():
        raise NSTError(
            f"{name}: {w}x{h} pixels at style size {size}; the loss layers need at least "
            f"{cfg.loss.min_side()} on each side (raise --style-size)"
        )
    return style


def _style_names(cfg: TrainConfig, teachers: list[nn.Module]) -> list[str]:
    """The names of the styles this run trains: its style images', else its teachers' styles; each once."""
    names = [display_name(s) for s in cfg.styles] or [getattr(t, "style_name", None) or "style" for t in teachers]
    if len(set(names)) != len(names):
        twice = next(n for n in names if names.count(n) > 1)
        raise NSTError(
            f"two styles of the run are named {twice!r}: rename one of the files (a style's name is its own)"
        )
    return names


def check_inputs(cfg: TrainConfig, resume: str | None) -> RunInputs:
    """Style image, data, run folder and resume point; NSTError naming the first problem."""
    for value, missing in (
        (cfg.style or cfg.teacher, "no style image: give --style FILE (or a config that sets style)"),
        (cfg.data, "no training data: give --data FOLDER_OR_DATASET"),
        (cfg.output, "no run folder: give -o/--output RUN_DIR"),
    ):
        if not value:
            raise NSTError(missing)
    check_output_dir(cfg.output)
    check_tracker(cfg.report_to)
    styles = [] if cfg.teacher else [_load_style(cfg, name) for name in cfg.styles]
    cfg, weights, weight_note = _resolve_style_weights(cfg, styles)
    teachers = [load_teacher(t) for t in cfg.teachers]
    trained = _style_names(cfg, teachers)
    start = _start_network(cfg)
    base = start[1] if cfg.add_style else []
    if set(base) & set(trained):
        raise NSTError(f"{cfg.init_from} already has the style {sorted(set(base) & set(trained))[0]!r}")
    names = base + trained
    metadata: dict[str, Any] = {"style": "+".join(names), "config": cfg.to_dict()}
    if len(names) > 1:
        metadata["styles"] = names
    checkpointer = Checkpointer(cfg.output, cfg.keep_checkpoints, metadata)
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
    one_painting = not cfg.teacher and len(names) == 1  # the work-size check reads the one painting (train.work_size)
    large = sample_photos(samples, cfg.num_samples, 2 * cfg.image_size)[0] if one_painting else None
    sizes = {getattr(t, "work_size", None) for t in teachers}
    if len(sizes) == 1 and None not in sizes:  # the student paints as its teachers (nst_core.scales)
        checkpointer.metadata["work_size"] = sizes.pop()
    return RunInputs(
        cfg=cfg,
        style_weight_note=weight_note,
        styles=styles,
        style_names=names,
        trained=len(trained),
        style_weights=weights,
        source=source,
        checkpointer=checkpointer,
        resume_from=resume_from,
        photos=photos,
        large_photos=large,
        unreadable=unreadable,
        init_weights=start[0].state_dict() if start and resume_from is None else None,
        teachers=teachers,
    )


def _resolve_style_weights(cfg: TrainConfig, styles: list[torch.Tensor]) -> tuple[TrainConfig, list[float], str | None]:
    """The style loss weight of each painting, and a note saying how the energy rule set them.

    One painting: ``cfg`` with the weight the energy rule gives it and the rule then `fixed`, so a resumed run keeps
    the weight. Several: each painting's weight under the rule (computed again, identically, on --resume); ``cfg``
    unchanged. The fixed rule or a distillation: ``cfg.loss.style`` for every painting.
    """
    if cfg.style_weight_rule == "fixed" or not styles:
        return cfg, [cfg.loss.style] * len(styles), None
    from nst_core.losses.calibrate import REFERENCE_STYLE, energy_scaled_style_weight

    reference = load_image(REFERENCE_STYLE, size=cfg.style_size or cfg.image_size)
    found = [energy_scaled_style_weight(cfg.loss, style, reference, cfg.vgg_weights) for style in styles]
    weights = [float(f"{weight:.4g}") for weight, _, _ in found]
    rule = f"{cfg.loss.style:g} x {REFERENCE_STYLE}'s Gram energy over the painting's"
    if len(styles) > 1:
        listed = ", ".join(f"{display_name(n)} {w:g}" for n, w in zip(cfg.styles, weights))
        return cfg, weights, f"style weights {listed}: {rule} (--style-weight-rule energy)"
    _, mine, ref = found[0]
    loss = dataclasses.replace(cfg.loss, style=weights[0])
    note = f"style weight {loss.style:g}: {rule} ({ref:.3g} / {mine:.3g}; --style-weight-rule energy)"
    return dataclasses.replace(cfg, loss=loss, style_weight_rule="fixed"), weights, note


def _start_network(cfg: TrainConfig) -> tuple[TransformerNet, list[str]] | None:
    """--init-from's network (grown by the run's styles under --add-style) and its style names; None without it.

    Checked to be of the run's variant; loaded on --resume too, where only its style names are used."""
    if not cfg.init_from:
        return None
    net, names = load_start(cfg.init_from)
    if net.variant != cfg.variant:
        raise NSTError(
            f"{cfg.init_from}: a {net.variant} network; --init-from needs one of the run's variant ({cfg.variant})"
        )
    run = len(cfg.styles or cfg.teachers)
    if cfg.add_style:
        return with_styles(net, run), names
    if net.styles == 1 and run > 1:  # one style's network starts each of the run's styles
        return with_styles(net, run - 1), names
    if net.styles != run:
        raise NSTError(
            f"{cfg.init_from}: a network of {net.styles} styles ({', '.join(names)}) cannot start a run of {run}; "
            "--add-style adds the run's styles to it"
        )
    return net, names
