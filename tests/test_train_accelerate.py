"""`nst train` as accelerate users expect (issue 12): accelerate's precision and accumulation, checkpoints through
save_state/load_state, two processes on the CPU (gloo), any tracker, stdout for --json only. Tiny runs, 32-48 px."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from nst_core.errors import NSTError
from tests.helpers import one_error_line, run_cli, tiny_train_config
from tests.test_train import _tiny_images
from train.checkpoint import TRAINING_STATE
from train.config import TRACKERS, build_config, read_yaml
from train.data import STREAM_EPOCH
from train.trainer import run_training

pytestmark = pytest.mark.usefixtures("one_thread")

ROOT = Path(__file__).resolve().parents[1]
FAST = ["--image-size", "32", "--batch-size", "2", "--variant", "small", "--num-workers", "0"]
#: Resumed vs uninterrupted weights (as in test_train.py): the same ops in the same order agree to rounding.
RESUME_ATOL = 1e-5


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("data")
    _tiny_images(folder, [f"photo_{i}.jpg" for i in range(6)])
    return folder


def _train(style: Path, data: Path, run: Path, *extra: str) -> list[str]:
    return ["train", "--style", str(style), "--data", str(data), "-o", str(run), *FAST, *extra]


def _state(ckpt: Path) -> dict:
    return torch.load(ckpt / TRAINING_STATE, weights_only=True)


# ------------------------------------------------------------------ precision and accumulation: accelerate's


def test_accelerate_env_sets_precision_and_accumulation_and_the_run_records_them(
    tmp_path, style_path, data, capsys, monkeypatch
):
    """What `accelerate launch --mixed_precision bf16 --gradient_accumulation_steps 2` passes on, honoured."""
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "bf16")
    monkeypatch.setenv("ACCELERATE_GRADIENT_ACCUMULATION_STEPS", "2")
    run = tmp_path / "run"
    code, out, err = run_cli(_train(style_path, data, run, "--max-steps", "2", "--report-to", "none", "--json"), capsys)
    assert code == 0, err
    summary = json.loads(out)  # stdout: the JSON object alone
    assert summary["mixed_precision"] == "bf16" and summary["step"] == 2
    saved = read_yaml(run / "config.yaml")
    assert (saved["mixed_precision"], saved["grad_accum"]) == ("bf16", 2)
    assert _state(run / "checkpoints" / "step-000000002")["position"] == 2 * 2 * 2  # 2 steps of 2 batches of 2
    with safe_open(str(run / "network.safetensors"), "pt") as f:
        assert json.loads(f.metadata()["config"])["mixed_precision"] == "bf16"
    # a flag (or a config file) still wins over accelerate's setting
    code, out, err = run_cli(
        _train(style_path, data, tmp_path / "r2", "--max-steps", "1", "--mixed-precision", "no", "--json"), capsys
    )
    assert code == 0 and json.loads(out)["mixed_precision"] == "no", err


def test_without_accelerate_settings_precision_is_no(tmp_path, style_path, data, monkeypatch):
    for name in ("ACCELERATE_MIXED_PRECISION", "ACCELERATE_GRADIENT_ACCUMULATION_STEPS"):
        monkeypatch.delenv(name, raising=False)
    cfg = tiny_train_config(tmp_path / "run", data, style_path, image_size=32, max_steps=1)
    assert cfg.mixed_precision is None and cfg.grad_accum is None  # not set: left to accelerate
    result = run_training(cfg, progress=False, messages=False)
    assert result.mixed_precision == "no" and read_yaml(tmp_path / "run" / "config.yaml")["grad_accum"] == 1


# ------------------------------------------------------------------ checkpoints: accelerate's save_state / load_state


@pytest.mark.parametrize(
    ("precision", "streaming", "accumulate"),
    [("no", False, 1), ("bf16", False, 1), ("fp16", False, 1), ("no", True, 1), ("no", False, 2)],
    ids=["fp32", "bf16", "fp16-autocast", "fp32-streaming", "fp32-grad-accum"],
)
def test_stop_and_resume_equals_an_uninterrupted_run(tmp_path, style_path, data, precision, streaming, accumulate):
    """fp32, bf16 and fp16 autocast on the CPU. accelerate gives fp16 a GradScaler (saved as scaler.pt) only on
    a GPU: that path needs one to be checked."""
    common = dict(image_size=32, max_steps=6, mixed_precision=precision, streaming=streaming, grad_accum=accumulate)
    straight = tiny_train_config(tmp_path / "a", data, style_path, **common)
    run_training(straight, progress=False, messages=False)
    cut = tiny_train_config(tmp_path / "b", data, style_path, checkpoint_every=3, **common)

    def crash(step: int, terms: dict) -> None:
        if step == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_training(cut, on_step=crash, progress=False, messages=False)
    resumed = run_training(cut, resume="latest", progress=False, messages=False)
    assert resumed.step == 6 and resumed.history[0][0] == 4 and resumed.mixed_precision == precision
    a, b = (load_file(str(tmp_path / name / "network.safetensors")) for name in ("a", "b"))
    worst = max((a[k] - b[k]).abs().max().item() for k in a)
    assert worst <= RESUME_ATOL, worst


def test_a_stream_resumes_only_with_as_many_processes(tmp_path, style_path, data):
    cfg = tiny_train_config(tmp_path / "run", data, style_path, image_size=32, max_steps=1, streaming=True)
    run_training(cfg, progress=False, messages=False)
    ckpt = tmp_path / "run" / "checkpoints" / "step-000000001"
    torch.save({**_state(ckpt), "stream_positions": [2, 2]}, ckpt / TRAINING_STATE)  # as two processes save it
    more = build_config(cfg.to_dict(), {"max_steps": 2})
    with pytest.raises(NSTError, match="saved by 2 process\\(es\\) resumes with as many, not 1"):
        run_training(more, resume="latest", progress=False, messages=False)


def test_checkpoint_folder_is_accelerates_state_with_the_network_for_export(tmp_path, style_path, data):
    from accelerate.utils import load

    cfg = tiny_train_config(tmp_path / "run", data, style_path, image_size=32, max_steps=2, checkpoint_every=2)
    run_training(cfg, progress=False, messages=False)
    ckpt = tmp_path / "run" / "checkpoints" / "step-000000002"
    names = {p.name for p in ckpt.iterdir()}
    assert names == {"network.safetensors", "optimizer.bin", "random_states_0.pkl", TRAINING_STATE}, names
    with safe_open(str(ckpt / "network.safetensors"), "pt") as f:
        assert f.metadata()["step"] == "2" and f.metadata()["variant"] == "small"
    state = _state(ckpt)
    assert state.pop("seconds") > 0  # the training time so far
    assert state.pop("progress") == 1.0  # the schedule's end: 2 of 2 steps
    assert state == {"step": 2, "position": 4, "skipped": 0, "skipped_files": [], "stream_positions": []}
    for name in ("optimizer.bin", "random_states_0.pkl"):  # torch's restricted loader (numpy's RNG allowed)
        load(ckpt / name, weights_only=True)


class _Payload:
    """Unpickling this runs code: it touches a file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_checkpoint_pickle_beyond_weights_only_is_refused_before_accelerate_loads_it(tmp_path, style_path, data):
    """accelerate 1.15 loads registered objects with weights_only=False: the trainer checks them first."""
    cfg = tiny_train_config(tmp_path / "run", data, style_path, image_size=32, max_steps=2, checkpoint_every=2)
    run_training(cfg, progress=False, messages=False)
    ckpt = tmp_path / "run" / "checkpoints" / "step-000000002"
    marker = tmp_path / "pwned"
    torch.save({"step": 2, "position": _Payload(marker)}, ckpt / TRAINING_STATE)
    more = build_config(cfg.to_dict(), {"max_steps": 3})
    with pytest.raises(NSTError, match=r"custom_checkpoint_0\.pkl: refused: it needs more than torch's weights_only"):
        run_training(more, resume="latest", progress=False, messages=False)
    assert not marker.exists()


def test_a_checkpoint_of_the_old_format_is_named_not_resumed(tmp_path, style_path, data, capsys):
    old = tmp_path / "run" / "checkpoints" / "step-000000005"
    old.mkdir(parents=True)
    for name in ("network.safetensors", "training_state.pt", "optimizer.pt"):
        (old / name).write_bytes(b"")
    code, _out, err = run_cli(_train(style_path, data, tmp_path / "run", "--resume", "--max-steps", "6"), capsys)
    assert code == 2
    one_error_line(err, "older nst", "cannot be resumed", "nst export")


# ------------------------------------------------------------------ trackers and sample photos


def test_report_to_offers_every_accelerate_tracker():
    from accelerate.utils import LoggerType

    assert set(TRACKERS) == {t.value for t in LoggerType} | {"none"}


def test_a_tracker_that_is_not_installed_is_one_line_naming_its_package(tmp_path, style_path, data, capsys):
    import accelerate.utils

    if accelerate.utils.is_comet_ml_available():
        pytest.skip("comet_ml is installed here")
    run = tmp_path / "run"
    code, _out, err = run_cli(_train(style_path, data, run, "--max-steps", "1", "--report-to", "comet_ml"), capsys)
    assert code == 2 and not run.exists()
    one_error_line(err, "--report-to comet_ml", "pip install comet-ml")


def test_sample_grids_go_to_tensorboard_from_the_chosen_photos(tmp_path, style_path, data, capsys):
    from PIL import Image
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    chosen = tmp_path / "chosen"
    _tiny_images(chosen, ["x.png"])
    run = tmp_path / "run"
    extra = ["--max-steps", "2", "--sample-every", "1", "--report-to", "all", "--sample-images", str(chosen), "-q"]
    code, _out, err = run_cli(_train(style_path, data, run, *extra), capsys)
    assert code == 0, err
    grid = Image.open(run / "samples" / "step-000000002.png")
    assert grid.size == (32 + 4, 2 * 32 + 6)  # one photo: the one folder of --sample-images holds one
    folders = {p.parent for p in (run / "tensorboard").rglob("events.out.tfevents.*")}  # hparams: a subfolder
    (acc,) = [a for a in (EventAccumulator(str(f)).Reload() for f in folders) if a.Tags()["images"]]
    assert [e.step for e in acc.Images("samples")] == [1, 2]
    assert "loss/total" in acc.Tags()["scalars"]


# ------------------------------------------------------------------ two processes on the CPU (gloo)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(*argv: str) -> subprocess.CompletedProcess:
    """`ACCELERATE_USE_CPU=true torchrun --nproc_per_node 2 -m train ...`: accelerate's MULTI_CPU mode."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(_free_port())]
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1"}
    for name in ("ACCELERATE_MIXED_PRECISION", "ACCELERATE_GRADIENT_ACCUMULATION_STEPS"):
        env.pop(name, None)
    return subprocess.run([*cmd, "-m", "train", *argv], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_two_processes_train_checkpoint_once_and_resume(tmp_path, style_path, data):
    run = tmp_path / "run"
    args = [*_train(style_path, data, run)[1:], "--checkpoint-every", "2", "--keep-checkpoints", "5"]
    args += ["--report-to", "none", "--num-samples", "1", "--sample-every", "2", "--json"]
    first = _torchrun(*args, "--max-steps", "4", "-v")
    assert first.returncode == 0, first.stderr[-3000:]
    summary = json.loads(first.stdout)  # one object: only the main process reports
    assert summary["step"] == 4
    for step in (2, 4):  # renamed into place by one process (both wrote their RNG state into its folder)
        assert first.stderr.count(f"checkpoint written: {run}/checkpoints/step-00000000{step}\n") == 1
    ckpts = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert ckpts == ["step-000000002", "step-000000004"]  # no temporaries of either process left
    for name in ckpts:
        files = {p.name for p in (run / "checkpoints" / name).iterdir()}
        assert {"random_states_0.pkl", "random_states_1.pkl", "network.safetensors", TRAINING_STATE} <= files
    assert _state(run / "checkpoints" / "step-000000004")["position"] == 4 * 2 * 2  # 4 steps x batch 2 x 2 processes
    assert first.stderr.count("data: 6 image files") == 1  # notes from the main process only

    again = _torchrun(*args, "--max-steps", "6", "--resume")
    assert again.returncode == 0, again.stderr[-3000:]
    assert json.loads(again.stdout)["step"] == 6 and "resuming from" in again.stderr and "(step 4)" in again.stderr
    assert _state(run / "checkpoints" / "step-000000006")["position"] == 6 * 2 * 2


def test_two_processes_stop_together_on_max_time(tmp_path, style_path, data):
    run = tmp_path / "run"
    args = [*_train(style_path, data, run)[1:], "--max-steps", "50", "--max-time", "0.000001", "--log-every", "2"]
    proc = _torchrun(*args, "--report-to", "none", "--num-samples", "1", "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]  # no process left waiting in a collective the other skipped
    summary = json.loads(proc.stdout)
    assert summary["out_of_time"] and summary["step"] == 2  # the first log step, the main process's decision
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step-000000002"]
    assert _state(run / "checkpoints" / "step-000000002")["position"] == 2 * 2 * 2


def test_a_bad_value_under_torchrun_leaves_no_run_folder(tmp_path, style_path, data):
    run = tmp_path / "run"
    proc = _torchrun(*_train(style_path, data, run)[1:], "--image-size", "4")
    assert proc.returncode != 0 and "image_size must be at least 8" in proc.stderr
    assert not run.exists()


@pytest.mark.slow
def test_two_processes_split_a_stream_and_resume_it(tmp_path, style_path, data):
    """`--streaming`: datasets' split_dataset_by_node gives each process its share; each one's position is saved."""
    run = tmp_path / "run"
    args = [*_train(style_path, data, run)[1:], "--streaming", "--checkpoint-every", "2", "--report-to", "none"]
    first = _torchrun(*args, "--max-steps", "2", "--num-samples", "1")
    assert first.returncode == 0, first.stderr[-3000:]
    # one shard (a local folder): each process keeps every other example, 3 of the 6 per epoch; 2 steps of
    # batch 2 are 4 examples each: epoch 1, example 1
    assert _state(run / "checkpoints" / "step-000000002")["stream_positions"] == [STREAM_EPOCH + 1] * 2
    again = _torchrun(*args, "--max-steps", "3", "--num-samples", "1", "--resume")
    assert again.returncode == 0, again.stderr[-3000:]
    assert _state(run / "checkpoints" / "step-000000003")["stream_positions"] == [STREAM_EPOCH + 3] * 2


def test_each_process_streams_its_own_share(data, monkeypatch):
    """split_dataset_by_node: with one shard, process r of 2 reads examples r, r + 2, ...: together, each photo once."""
    import train.data
    from train.data import StreamedImages, decode, open_source

    source = open_source(str(data), streaming=True)
    seen: list[str] = []
    monkeypatch.setattr(train.data, "decode", lambda value, size: seen.append(value["path"]) or decode(value, size))
    shares = []
    for rank in (0, 1):
        seen.clear()
        stream = iter(StreamedImages(source, 32, (0.6, 1.0), seed=7, start=0, rank=rank, world=2))
        positions = [next(stream)[1] for _ in range(3)]
        assert positions == [0, 1, 2]  # this process's own count
        shares.append(set(seen))
    assert not shares[0] & shares[1] and len(shares[0] | shares[1]) == 6


@pytest.mark.parametrize(("level", "shown"), [(logging.INFO, True), (logging.ERROR, False)], ids=["default", "-q"])
def test_a_hub_download_shows_its_progress_unless_quiet(monkeypatch, level, shown):
    import datasets

    from nst_core.log import LOG
    from train.data import open_source

    seen = []

    def load_dataset(*args, **kwargs):
        seen.append(not datasets.are_progress_bars_disabled())
        raise ConnectionError("offline")

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    monkeypatch.setattr(LOG, "level", level)
    with pytest.raises(NSTError, match="offline"):
        open_source("someone/photos")
    assert seen == [shown]
    datasets.disable_progress_bars()
