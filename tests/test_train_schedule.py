"""The run's schedule (train/schedule.py): learning-rate decay to the end (its last step or the --max-time
deadline), a cheaper first stage of smaller crops, both resumable; and the `cpu` preset built on them."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import pytest
import torch

from tests.helpers import tiny_train_config
from tests.test_train import RESUME_ATOL, _weights
from train.checkpoint import TRAINING_STATE
from train.config import TrainConfig, build_config, config_file, read_yaml
from train.schedule import Schedule
from train.trainer import Trainer, run_training

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("kind", ["cosine", "linear"])
def test_a_decaying_rate_starts_at_lr_falls_steadily_and_ends_at_zero(kind):
    schedule = Schedule(TrainConfig(lr=2e-3, lr_schedule=kind), max_steps=100)
    rates = [schedule.lr(schedule.progress(step, 0.0)) for step in range(101)]
    assert rates[0] == pytest.approx(2e-3) and rates[-1] == pytest.approx(0.0, abs=1e-12)
    assert all(a > b for a, b in itertools.pairwise(rates))
    assert rates[50] == pytest.approx(1e-3)  # both pass half the rate half-way
    assert Schedule(TrainConfig(lr=2e-3), 100).lr(0.9) == 2e-3  # constant: Johnson et al.'s


def test_progress_is_the_further_of_steps_and_clock_and_a_resumed_run_spreads_the_rest():
    schedule = Schedule(TrainConfig(max_time=100), max_steps=1000)
    assert schedule.progress(500, 10.0) == pytest.approx(0.5)  # steps ahead of the clock
    assert schedule.progress(10, 50.0) == pytest.approx(0.5)  # the clock ahead of the steps
    assert schedule.progress(10, 500.0) == 1.0
    schedule.resumed_at = 0.6  # a run stopped at 60% resumes with --max-time 100: the last 40% over 100 s
    assert schedule.progress(10, 0.0) == pytest.approx(0.6) and schedule.progress(10, 50.0) == pytest.approx(0.8)


def test_the_first_stage_trains_on_smaller_crops_until_its_share_of_the_run():
    schedule = Schedule(TrainConfig(image_size=256, first_crop_size=128, first_crop_until=0.25), max_steps=100)
    assert [schedule.crop_size(p) for p in (0.0, 0.24, 0.25, 1.0)] == [128, 128, 256, 256]
    assert Schedule(TrainConfig(image_size=256), 100).crop_size(0.0) == 256


@pytest.mark.parametrize(
    ("key", "value"),
    [("first_crop_until", 1.0), ("lr_schedule", "step"), ("first_crop_size", 0), ("first_crop_size", 256)],
)
def test_bad_schedule_values_are_refused_by_name(key, value):
    from nst_core.errors import NSTError

    with pytest.raises(NSTError, match=key):
        TrainConfig(**{key: value})


def _record(monkeypatch) -> tuple[list[float], list[int]]:
    """The learning rate of every step and the crop size of every batch, as the trainer used them."""
    rates, sizes = [], []
    set_lr, batch_loss = Trainer.set_lr, Trainer.batch_loss
    monkeypatch.setattr(Trainer, "set_lr", lambda self, lr: rates.append(lr) or set_lr(self, lr))
    monkeypatch.setattr(Trainer, "batch_loss", lambda self, x: sizes.append(x.shape[-1]) or batch_loss(self, x))
    return rates, sizes


def test_a_max_time_schedule_ends_its_decay_at_the_deadline(tmp_path, photo_dir, style_path, monkeypatch):
    rates, sizes = _record(monkeypatch)
    cfg = tiny_train_config(
        tmp_path / "run", photo_dir, style_path, max_steps=100_000, max_time=3, lr=2e-3, lr_schedule="cosine",
        first_crop_size=32, first_crop_until=0.5,
    )  # fmt: skip
    result = run_training(cfg)
    assert result.out_of_time and result.step > 10
    assert rates[0] == pytest.approx(2e-3)
    # The last step's rate is the decay's tail: at most what the last step's own share of 3 s leaves.
    assert rates[-1] <= 0.05 * 2e-3, rates[-5:]
    assert sizes[0] == 32 and sizes[-1] == 48 and sizes == sorted(sizes)  # 32 px crops, then 48 px, in one run
    halfway = sizes.index(48) / len(sizes)
    assert 0.2 < halfway < 0.8  # the switch near half the time (the smaller crops' steps are cheaper)


def test_a_scheduled_run_resumed_after_a_crash_equals_an_uninterrupted_one(tmp_path, photo_dir, style_path):
    schedule = dict(max_steps=12, lr_schedule="cosine", first_crop_size=32, first_crop_until=0.5, checkpoint_every=5)
    straight = tiny_train_config(tmp_path / "a", photo_dir, style_path, **schedule)
    run_training(straight)
    cut = tiny_train_config(tmp_path / "b", photo_dir, style_path, **schedule)

    def crash(step, terms):
        if step == 8:  # past the stage switch (step 6); checkpoint 5 survives, before it
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_training(cut, on_step=crash)
    resumed = run_training(cut, resume="latest")
    assert resumed.step == 12
    a, b = _weights(Path(straight.output)), _weights(Path(cut.output))
    worst = max((a[k] - b[k]).abs().max().item() for k in a)
    assert worst <= RESUME_ATOL, worst
    state = torch.load(Path(cut.output) / "checkpoints" / "step-000000012" / TRAINING_STATE, weights_only=True)
    assert state["progress"] == pytest.approx(1.0)


def test_the_cpu_preset_loads_and_trains_on_its_schedule(tmp_path, photo_dir, style_path, monkeypatch):
    preset = build_config(read_yaml(config_file("cpu")))
    shipped = (preset.variant, preset.lr_schedule, preset.first_crop_size, preset.max_time)
    assert shipped == ("standard", "cosine", 128, 1800)
    rates, sizes = _record(monkeypatch)
    # The preset with test-sized crops and budget: its schedule, stages and precision as shipped.
    overrides = dict(image_size=48, first_crop_size=32, style_size=64, max_time=2, checkpoint_every=10_000)
    paths = dict(style=str(style_path), data=str(photo_dir), output=str(tmp_path / "run"))
    quiet = dict(num_workers=0, report_to="none", log_every=1, num_samples=2)
    cfg = build_config(read_yaml(config_file("cpu")), {**paths, **overrides, **quiet})
    result = run_training(cfg)
    assert result.out_of_time and cfg.mixed_precision == "bf16"
    assert rates[0] == pytest.approx(preset.lr) and rates[-1] < 0.1 * preset.lr
    assert sizes[0] == 32 and sizes[-1] == 48
    assert math.isfinite(result.history[-1][1]["total"])


def test_size512_adds_to_a_preset_a_painting_and_photos_seen_at_512_px():
    both = build_config(read_yaml(config_file("cpu")), read_yaml(config_file("size512")))
    assert (both.style_size, both.crop_scale, both.image_size) == (512, (0.3, 0.6), 256)
    assert (both.variant, both.max_time, both.first_crop_size) == ("standard", 1800, 128)  # the rest: the cpu preset's


def test_turn_order_spreads_each_styles_turns_over_the_cycle():
    from train.schedule import turn_order

    assert turn_order([1, 1, 1]) == [0, 1, 2]  # one turn each: the styles in order, as before --style-turns
    assert turn_order([1, 3]) == [1, 0, 1, 1]
    order = turn_order([1, 3, 1, 1, 1, 1])
    assert sorted(order) == [0, 1, 1, 1, 2, 3, 4, 5] and order.count(1) == 3
