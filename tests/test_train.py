"""`nst train` on CPU: tiny images (48 px), tiny runs (<= 25 steps), real scikit-image photos."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from nst_core.checkpoint_io import load_network
from nst_core.cli import main
from nst_core.errors import NSTError
from tests.conftest import skimage_photo
from train.checkpoint import TRAINING_STATE
from train.config import TrainConfig, build_config, read_yaml
from train.trainer import run_training

pytestmark = pytest.mark.usefixtures("one_thread")

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = ("astronaut.png", "chelsea.png", "rocket.jpg", "motorcycle_left.png")
#: Resumed vs. uninterrupted weights: same ops in the same order on the same thread count, so
#: they agree to float32 rounding; the tolerance only absorbs oneDNN's run-to-run reassociation.
RESUME_ATOL = 1e-5


@pytest.fixture(scope="module")
def photo_dir(tmp_path_factory) -> Path:
    """Four real photos, shrunk to 96 px (decoding stays cheap), one in a subfolder (recursion)."""
    root = tmp_path_factory.mktemp("photos")
    (root / "sub").mkdir()
    for i, name in enumerate(PHOTOS):
        img = Image.open(skimage_photo(name)).convert("RGB")
        img.thumbnail((96, 96))
        img.save(root / ("sub" if i == 3 else ".") / f"{Path(name).stem}.jpg", quality=90)
    return root


def tiny(tmp_path: Path, photo_dir: Path, style_path: Path, **kw) -> TrainConfig:
    base = dict(
        style=str(style_path),
        data=str(photo_dir),
        out=str(tmp_path / "run"),
        image_size=48,
        batch_size=2,
        variant="small",
        num_workers=0,
        max_steps=12,
        checkpoint_every=100,
        sample_every=100,
        num_samples=2,
        log_every=1,
        report_to="none",
    )
    return build_config({**base, **kw})


def test_loss_falls_and_run_folder_is_complete(tmp_path, photo_dir, style_path):
    cfg = tiny(
        tmp_path,
        photo_dir,
        style_path,
        max_steps=25,
        checkpoint_every=10,
        keep_checkpoints=2,
        sample_every=10,
        report_to="tensorboard",
    )
    result = run_training(cfg)
    totals = [h["total"] for _, h in result.history]
    assert len(totals) == 25
    assert sum(totals[-5:]) / 5 < 0.8 * sum(totals[:5]) / 5, totals
    run = Path(cfg.out)
    assert [p.name for p in sorted((run / "checkpoints").iterdir())] == ["step-000000020", "step-000000025"]
    assert sorted(p.name for p in (run / "samples").iterdir()) == [
        "step-000000010.png",
        "step-000000020.png",
        "step-000000025.png",
    ]
    assert Image.open(run / "samples" / "step-000000025.png").size == (2 * 48 + 6, 2 * 48 + 6)
    assert any((run / "tensorboard").rglob("events.out.tfevents.*"))
    assert read_yaml(run / "config.yaml")["max_steps"] == 25
    net, meta = load_network(run)  # the final network, as the exporter reads it
    assert meta["variant"] == "small" and meta["style"] == style_path.stem and meta["step"] == "25"
    assert '"image_size": 48' in meta["config"]
    ckpt_net, ckpt_meta = load_network(run / "checkpoints" / "step-000000020")
    assert ckpt_meta["step"] == "20"
    with torch.no_grad():
        x = torch.rand(1, 3, 40, 52)
        assert net(x).shape == x.shape
        assert not torch.equal(net(x), ckpt_net(x))


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run / "network.safetensors"))


def test_resume_after_interruption_matches_uninterrupted_run(tmp_path, photo_dir, style_path):
    straight = tiny(tmp_path / "a", photo_dir, style_path, max_steps=12)
    run_training(straight)

    cut = tiny(tmp_path / "b", photo_dir, style_path, max_steps=12, checkpoint_every=5)

    def crash(step, terms):
        if step == 8:
            raise KeyboardInterrupt  # as if killed: steps 6-8 are lost, checkpoint 5 survives

    with pytest.raises(KeyboardInterrupt):
        run_training(cut, on_step=crash)
    assert not (Path(cut.out) / "network.safetensors").exists()
    resumed = run_training(cut, resume="latest")
    assert resumed.step == 12 and resumed.history[0][0] == 6  # continued at step 6, not from scratch
    a, b = _weights(Path(straight.out)), _weights(Path(cut.out))
    assert a.keys() == b.keys()
    worst = max((a[k] - b[k]).abs().max().item() for k in a)
    assert worst <= RESUME_ATOL, worst
    state = torch.load(Path(cut.out) / "checkpoints" / "step-000000012" / TRAINING_STATE, weights_only=False)
    assert state["position"] == 12 * 2  # data position: 12 steps of batch 2


def test_corrupt_files_are_skipped_and_reported(tmp_path, photo_dir, style_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    for p in photo_dir.rglob("*.jpg"):
        (data / p.name).write_bytes(p.read_bytes())
    (data / "garbage.jpg").write_bytes(b"this is not a JPEG at all")
    good = (data / "chelsea.jpg").read_bytes()
    (data / "truncated.jpg").write_bytes(good[: len(good) // 3])
    cfg = tiny(tmp_path, data, style_path, max_steps=8, num_samples=1)
    result = run_training(cfg)
    assert result.step == 8
    assert {Path(f).name for f in result.skipped_files} == {"garbage.jpg", "truncated.jpg"}
    assert result.skipped >= 2
    out = capsys.readouterr().out
    assert "skipping unreadable image" in out and f"skipped {result.skipped} unreadable image(s)" in out


def test_streaming_local_folder_trains(tmp_path, photo_dir, style_path):
    result = run_training(tiny(tmp_path, photo_dir, style_path, max_steps=3, streaming=True))
    assert result.step == 3 and (Path(result.run_dir) / "network.safetensors").is_file()


def _cli(capsys, *argv: str) -> tuple[int, str]:
    code = main(["train", *argv])
    err = capsys.readouterr().err.strip()
    return code, err


def test_bad_inputs_exit_2_with_one_line(tmp_path, photo_dir, style_path, capsys):
    finished = tmp_path / "finished" / "checkpoints" / "step-000000001"
    finished.mkdir(parents=True)
    for name in ("network.safetensors", "training_state.pt"):
        (finished / name).write_bytes(b"")
    finished = finished.parents[1]
    common = ["--data", str(photo_dir), "--image-size", "48", "--max-steps", "1", "--num-workers", "0"]
    bad_style = tmp_path / "style.png"
    bad_style.write_bytes(b"\x89PNG not really")
    code, err = _cli(capsys, "--style", str(bad_style), "--out", str(tmp_path / "r1"), *common)
    assert code == 2 and "style.png" in err and len(err.splitlines()) == 1

    empty = tmp_path / "empty"
    (empty / "nested").mkdir(parents=True)
    (empty / "notes.txt").write_text("no pictures here")
    code, err = _cli(capsys, "--style", str(style_path), "--data", str(empty), "--out", str(tmp_path / "r2"))
    assert code == 2 and "no images found" in err and len(err.splitlines()) == 1

    cfg = tmp_path / "bad.yaml"
    cfg.write_text("style_weight: 10\nlearning_rate: 0.1\n")
    code, err = _cli(capsys, "--config", str(cfg), "--style", str(style_path), "--out", str(tmp_path / "r3"), *common)
    assert code == 2 and "unknown config key 'learning_rate'" in err and len(err.splitlines()) == 1

    (tmp_path / "r4").mkdir()
    code, err = _cli(capsys, "--style", str(style_path), "--out", str(tmp_path / "r4"), "--resume", *common)
    assert code == 2 and "no checkpoint" in err and len(err.splitlines()) == 1

    code, err = _cli(capsys, "--style", str(style_path), "--out", str(finished), *common)
    assert code == 2 and "already holds checkpoints" in err and "--resume" in err

    code, err = _cli(
        capsys, "--style", str(style_path), "--data", str(tmp_path / "missing" / "dir"), "--out", str(tmp_path / "r5")
    )
    assert code == 2 and "no such folder" in err


def test_hub_failure_is_one_line(monkeypatch):
    import datasets
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True, raising=False)
    from train.data import open_source

    with pytest.raises(NSTError, match="not a local folder, and loading it as a hub dataset failed") as e:
        open_source("nobody-here/no-such-dataset")
    assert "\n" not in str(e.value)


def test_load_network_rejects_non_networks(tmp_path):
    with pytest.raises(NSTError, match="no such file"):
        load_network(tmp_path / "nope")
    with pytest.raises(NSTError, match="not a training run folder"):
        load_network(tmp_path)
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(NSTError, match=r"not a \.safetensors"):
        load_network(tmp_path / "x.txt")


def test_configs_are_valid_and_default_yaml_matches_code():
    defaults = read_yaml(ROOT / "configs" / "default.yaml")
    assert build_config(defaults).to_dict() == TrainConfig().to_dict()
    assert set(defaults) == {f.name for f in dataclasses.fields(TrainConfig)}
    styles = [p for p in (ROOT / "configs").glob("*.yaml") if p.name != "default.yaml"]
    assert len(styles) >= 5
    for p in styles:
        values = read_yaml(p)
        assert "style" in values and "style_weight" in values, p
        build_config(values)


@pytest.mark.slow
def test_sigkill_never_corrupts_the_run_folder(tmp_path, photo_dir, style_path):
    """A real `python -m train` killed with SIGKILL mid-run: the folder stays loadable and resumable."""
    run = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "train",
        "--style",
        str(style_path),
        "--data",
        str(photo_dir),
        "--out",
        str(run),
        "--image-size",
        "48",
        "--batch-size",
        "2",
        "--variant",
        "small",
        "--max-steps",
        "500",
        "--checkpoint-every",
        "2",
        "--keep-checkpoints",
        "2",
        "--num-workers",
        "0",
        "--report-to",
        "none",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while time.time() < deadline and len(list((run / "checkpoints").glob("step-*"))) < 2:
            time.sleep(0.2)
        time.sleep(0.3)  # most likely in the middle of a step or of writing the next checkpoint
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    steps = sorted(p.name for p in (run / "checkpoints").glob("step-*"))
    assert steps, "no checkpoint was written before the kill"
    _net, meta = load_network(run)  # latest complete checkpoint
    last = int(meta["step"])
    cfg = build_config(read_yaml(run / "config.yaml"), {"max_steps": last + 2, "log_every": 1})
    result = run_training(cfg, resume="latest")
    assert result.step == last + 2 and result.history[0][0] == last + 1
    assert not list((run / "checkpoints").glob(".tmp-*"))
