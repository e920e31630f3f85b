"""`nst train` on CPU: tiny images (48 px), tiny runs (<= 25 steps), real scikit-image photos."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from nst_core.checkpoint_io import load_network
from nst_core.cli import main
from nst_core.errors import NSTError
from nst_core.transformer import TransformerNet
from tests.helpers import tiny_train_config
from train.checkpoint import TRAINING_STATE
from train.config import VARIANTS, TrainConfig, build_config, read_yaml
from train.data import open_source
from train.trainer import make_optimizer, run_training

pytestmark = pytest.mark.usefixtures("one_thread")

ROOT = Path(__file__).resolve().parents[1]
#: Resumed vs. uninterrupted weights: same ops in the same order on the same thread count, so
#: they agree to float32 rounding; the tolerance only absorbs oneDNN's run-to-run reassociation.
RESUME_ATOL = 1e-5


def tiny(tmp_path: Path, photo_dir: Path, style_path: Path, **kw) -> TrainConfig:
    return tiny_train_config(tmp_path / "run", photo_dir, style_path, **kw)


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
    run = Path(cfg.output)
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


def test_resume_after_interruption_matches_uninterrupted_run(tmp_path, photo_dir, style_path, monkeypatch):
    from accelerate import Accelerator

    ended = []
    end_training = Accelerator.end_training
    monkeypatch.setattr(Accelerator, "end_training", lambda self: ended.append(1) or end_training(self))
    straight = tiny(tmp_path / "a", photo_dir, style_path, max_steps=12)
    run_training(straight)

    cut = tiny(tmp_path / "b", photo_dir, style_path, max_steps=12, checkpoint_every=5)

    def crash(step, terms):
        if step == 8:
            raise KeyboardInterrupt  # as if killed: steps 6-8 are lost, checkpoint 5 survives

    with pytest.raises(KeyboardInterrupt):
        run_training(cut, on_step=crash)
    first = torch.load(Path(cut.output) / "checkpoints" / "step-000000005" / TRAINING_STATE, weights_only=True)
    assert first["seconds"] > 0  # the training time is saved with the checkpoint ...
    assert len(ended) == 2  # the interrupted run still closed its trackers (try/finally)
    assert not (Path(cut.output) / "network.safetensors").exists()
    resumed = run_training(cut, resume="latest")
    assert resumed.step == 12 and resumed.history[0][0] == 6  # continued at step 6, not from scratch
    a, b = _weights(Path(straight.output)), _weights(Path(cut.output))
    assert a.keys() == b.keys()
    worst = max((a[k] - b[k]).abs().max().item() for k in a)
    assert worst <= RESUME_ATOL, worst
    state = torch.load(Path(cut.output) / "checkpoints" / "step-000000012" / TRAINING_STATE, weights_only=True)
    assert state["position"] == 12 * 2  # data position: 12 steps of batch 2
    assert state["seconds"] == resumed.seconds > first["seconds"]  # ... and carried on by the resumed run


def test_max_time_checkpoints_and_resume_equals_an_uninterrupted_run(tmp_path, photo_dir, style_path):
    straight = tiny(tmp_path / "a", photo_dir, style_path, max_steps=8)
    run_training(straight)
    cut = tiny(tmp_path / "b", photo_dir, style_path, max_steps=8, max_time=1e-9, log_every=3)
    stopped = run_training(cut)  # out of time at the first step that asks (a log step): step 3
    assert stopped.out_of_time and stopped.step == 3
    assert (Path(cut.output) / "checkpoints" / "step-000000003").is_dir()
    assert load_network(Path(cut.output))[1]["step"] == "3"  # the network of the step reached is written
    resumed = run_training(dataclasses.replace(cut, max_time=None), resume="latest")
    assert not resumed.out_of_time and resumed.step == 8
    a, b = _weights(Path(straight.output)), _weights(Path(cut.output))
    assert max((a[k] - b[k]).abs().max().item() for k in a) <= RESUME_ATOL


@pytest.mark.parametrize(
    ("value", "seconds"), [(90, 90.0), ("90s", 90.0), ("30m", 1800.0), ("2h", 7200.0), ("1.5", 1.5)]
)
def test_max_time_reads_seconds_minutes_and_hours(value, seconds):
    assert TrainConfig(max_time=value).max_time == seconds


@pytest.mark.parametrize("value", ["2d", "soon", 0, "-5m"])
def test_max_time_rejects_what_is_not_a_positive_duration(value):
    with pytest.raises(NSTError, match="max_time"):
        TrainConfig(max_time=value)


def test_corrupt_files_are_skipped_and_reported_on_stderr(tmp_path, photo_dir, style_path, capsys):
    from nst_core.log import configure

    configure("nst train")  # what the `nst` command does; a library caller chooses its own logging
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
    captured = capsys.readouterr()
    err = captured.err
    assert "nst train: warning: skipping unreadable image" in err
    assert f"nst train: warning: skipped {result.skipped} unreadable image(s)" in err
    assert "trained on the other 4 of 6 image files" in err and "data: 6 image files" in err
    assert captured.out == ""


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
    code, err = _cli(capsys, "--style", str(bad_style), "-o", str(tmp_path / "r1"), *common)
    assert code == 2 and "style.png" in err and len(err.splitlines()) == 1

    empty = tmp_path / "empty"
    (empty / "nested").mkdir(parents=True)
    (empty / "notes.txt").write_text("no pictures here")
    code, err = _cli(capsys, "--style", str(style_path), "--data", str(empty), "-o", str(tmp_path / "r2"))
    assert code == 2 and "no images found" in err and "1 other file" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "r2").exists()

    cfg = tmp_path / "bad.yaml"
    cfg.write_text("style_weight: 10\nlearning_rate: 0.1\n")
    code, err = _cli(capsys, "--config", str(cfg), "--style", str(style_path), "-o", str(tmp_path / "r3"), *common)
    assert code == 2 and "unknown config key 'learning_rate'" in err and len(err.splitlines()) == 1

    (tmp_path / "r4").mkdir()
    code, err = _cli(capsys, "--style", str(style_path), "-o", str(tmp_path / "r4"), "--resume", *common)
    assert code == 2 and "no checkpoint" in err and len(err.splitlines()) == 1

    code, err = _cli(capsys, "--style", str(style_path), "-o", str(finished), *common)
    assert code == 2 and "already holds checkpoints" in err and "--resume" in err

    code, err = _cli(
        capsys, "--style", str(style_path), "--data", str(tmp_path / "missing" / "dir"), "-o", str(tmp_path / "r5")
    )
    assert code == 2 and "no such folder" in err and not (tmp_path / "r5").exists()


def test_hub_failure_is_one_line(monkeypatch):
    import datasets
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True, raising=False)
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
    assert set(defaults["loss"]) == set(TrainConfig().loss.to_dict())
    styles = [p for p in (ROOT / "configs").glob("*.yaml") if p.name != "default.yaml"]
    assert len(styles) >= 5
    default = TrainConfig().to_dict()
    for p in styles:
        values = read_yaml(p)
        assert "style" in values or p.stem in ("fast", "cpu", "size512"), p  # recipes for any style (--style)
        cfg = build_config(values).to_dict()
        # nanoGPT style: a preset states only what differs from the defaults
        assert all(cfg[k] != default[k] for k in values if k not in ("style", "loss")), p
        assert all(cfg["loss"][k] != default["loss"][k] for k in values.get("loss", {})), p


def test_variants_match_the_network_module():
    from nst_core.transformer import VARIANTS as NETWORK_VARIANTS

    assert tuple(NETWORK_VARIANTS) == VARIANTS


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
        "-o",
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


# ------------------------------------------------------------------ config: the loss section, old keys, checks


def _yaml(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_yaml_loss_section_merges_onto_defaults_and_old_flat_keys_map_into_it(tmp_path):
    partial = build_config(read_yaml(_yaml(tmp_path, "a.yaml", "loss: {style: 0.5}\n")))
    assert partial.loss.style == 0.5 and partial.loss.content == 1.0
    assert list(partial.loss.style_layers) == ["relu1_2", "relu2_2", "relu3_3", "relu4_3"]
    layered = build_config(read_yaml(tmp_path / "a.yaml"), read_yaml(_yaml(tmp_path, "b.yaml", "loss: {tv: 2}\n")))
    assert (layered.loss.style, layered.loss.tv) == (0.5, 2.0)  # a later file keeps what an earlier one set
    old = "out: runs/x\ncontent_weight: 3\nstyle_weight: 7\ntv_weight: 1\nstyle_layers: relu1_2,relu2_2\n"
    legacy = build_config(read_yaml(_yaml(tmp_path, "old.yaml", old)))
    assert legacy.output == "runs/x"
    assert (legacy.loss.content, legacy.loss.style, legacy.loss.tv) == (3.0, 7.0, 1.0)
    assert list(legacy.loss.style_layers) == ["relu1_2", "relu2_2"]
    saved = tmp_path / "saved.yaml"  # what a run folder's config.yaml now holds reads back the same
    from train.config import save_yaml

    save_yaml(legacy, saved)
    assert build_config(read_yaml(saved)) == legacy and "content_weight" not in saved.read_text()


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("variant: huge\n", "variant must be one of standard, small"),
        ("loss: {style_layers: [relu9_9]}\n", "unknown layer 'relu9_9'"),
        ("style_layers: [relu2_2, relu9_9]\n", "unknown layer 'relu9_9'"),
        ("style_size: 0\n", "style_size must be a positive integer"),
        ("crop_scale: [0.9, 0.5]\n", "crop_scale must be"),
        ("loss: {gram: 1}\n", "unknown loss key 'gram'"),
        ("image_size: big\n", "image_size must be an integer, got 'big'"),
        ("vgg_weights: cafe\n", "vgg_weights must be caffe, torchvision or"),
    ],
)
def test_bad_yaml_value_fails_naming_the_file_before_any_run_folder(
    tmp_path, style_path, photo_dir, capsys, text, needle
):
    bad = _yaml(tmp_path, "bad.yaml", text)
    run = tmp_path / "run"
    code, err = _cli(capsys, "-c", str(bad), "--style", str(style_path), "--data", str(photo_dir), "-o", str(run))
    assert code == 2 and needle in err and "bad.yaml" in err and len(err.splitlines()) == 1, err
    assert not run.exists()


def test_flags_override_config_files_and_out_is_a_deprecated_alias(tmp_path, capsys):
    from nst_core.cli import build_parser
    from train.cli import config_from_args

    cfg_file = _yaml(tmp_path, "c.yaml", "loss: {style: 0.5, tv: 3}\nimage_size: 64\n")
    argv = ["train", "-c", str(cfg_file), "--style-weight", "0.7", "--out", "runs/old", "--crop-scale", "0.5,0.9"]
    cfg = config_from_args(build_parser("train").parse_args(argv))
    assert (cfg.loss.style, cfg.loss.tv, cfg.image_size) == (0.7, 3.0, 64)
    assert cfg.output == "runs/old" and cfg.crop_scale == (0.5, 0.9)
    assert "--out is deprecated" in capsys.readouterr().err
    assert "--out" not in build_parser("train").format_help().split("examples:")[0].replace("--output", "")


def test_train_cli_does_not_import_torch():
    code = "import sys, train.cli, nst_core.cli; nst_core.cli.build_parser('train'); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


# ------------------------------------------------------------------ data: every image, whatever its name


def _tiny_images(folder: Path, names: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in names:
        Image.fromarray(rng.integers(0, 255, (40, 56, 3), dtype=np.uint8)).save(folder / name)


HOLIDAY = [f"holiday_{i:02d}.jpg" for i in range(6)] + ["my_training_photo.jpg", "test_shot.jpg"]


@pytest.mark.parametrize(
    "names", [HOLIDAY, [f"coco_val2017_{i:012d}.jpg" for i in (139, 285, 632)]], ids=["holiday", "coco_val"]
)
def test_local_folder_uses_every_image_whatever_its_name(tmp_path, names):
    """datasets' imagefolder split these by file name (only my_training_photo.jpg trained; no train split)."""
    _tiny_images(tmp_path / "data", names)
    for streaming in (False, True):
        source = open_source(str(tmp_path / "data"), streaming=streaming)
        assert source.length == len(names)
        used = sorted(Path(row[source.column]["path"]).name for row in source.dataset)
        assert used == sorted(names)


def test_json_summary_alone_on_stdout_and_data_report_on_stderr(tmp_path, style_path, capsys):
    data = tmp_path / "data"
    _tiny_images(data, HOLIDAY)
    (data / "notes.txt").write_text("not a picture")
    (data / "aaa_corrupt.jpg").write_bytes(b"not a JPEG")  # sorted first: met by the sample photos
    args = ["--style", str(style_path), "--data", str(data), "-o", str(tmp_path / "run"), "--image-size", "32"]
    args += ["--batch-size", "2", "--variant", "small", "--num-workers", "0", "--max-steps", "2"]
    args += ["--num-samples", "2", "--report-to", "none", "--json"]
    code = main(["train", *args])
    captured = capsys.readouterr()
    assert code == 0
    summary = json.loads(captured.out)  # nothing else on stdout
    assert summary["step"] == 2 and Path(summary["network"]).is_file()
    assert [Path(f).name for f in summary["skipped_files"]] == ["aaa_corrupt.jpg"]
    err = captured.err
    assert "data: 9 image files" in err and "1 non-image file(s) ignored (notes.txt)" in err
    assert "trained on the other 8 of 9 image files" in err and "trained 2 steps" in err


# ------------------------------------------------------------------ optimizer and training state


def test_make_optimizer_follows_its_device():
    params = [torch.nn.Parameter(torch.zeros(3))]
    cfg = TrainConfig()
    assert make_optimizer(params, cfg, torch.device("cpu")).defaults["fused"] is True
    assert not make_optimizer(params, cfg, torch.device("meta")).defaults["fused"]  # no fused kernel there
    assert not make_optimizer(params, dataclasses.replace(cfg, fused_adam=False), torch.device("cpu")).defaults["fused"]


def test_a_built_in_style_is_named_without_its_prefix(tmp_path, photo_dir) -> None:
    result = run_training(tiny(tmp_path, photo_dir, "skimage:coffee", max_steps=1))
    assert load_network(result.network)[1]["style"] == "coffee"


def test_init_from_starts_at_the_given_network_and_checks_its_variant(tmp_path, photo_dir, style_path, capsys):
    base = run_training(tiny(tmp_path / "a", photo_dir, style_path, max_steps=3), progress=False)
    start = load_file(str(base.network))
    # a learning rate too small to move float32 weights: the run ends where it started
    tuned = run_training(
        tiny(tmp_path / "b", photo_dir, style_path, max_steps=1, lr=1e-30, init_from=str(base.run_dir)),
        progress=False,
    )
    end = load_file(str(tuned.network))
    assert all(torch.equal(start[k], end[k]) for k in start)
    fresh = run_training(tiny(tmp_path / "c", photo_dir, style_path, max_steps=1, lr=1e-30), progress=False)
    assert not torch.equal(start["encoder.0.1.weight"], load_file(str(fresh.network))["encoder.0.1.weight"])

    common = ["--data", str(photo_dir), "--image-size", "48", "--max-steps", "1", "--num-workers", "0"]
    out = tmp_path / "d"
    capsys.readouterr()  # the notes of the runs above
    code, err = _cli(capsys, "--style", str(style_path), "-o", str(out), "--init-from", str(base.run_dir), *common)
    assert code == 2 and "small network" in err and "standard" in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_teacher_distils_into_another_variant(tmp_path, photo_dir, style_path, capsys):
    """--teacher: a fast network learns a trained small one's outputs (L1 falls, the student ends closer to the
    teacher than it started); no VGG is built; a missing teacher is one line before any run folder."""
    teacher = run_training(tiny(tmp_path / "t", photo_dir, style_path, max_steps=3), progress=False)
    cfg = tiny(
        tmp_path / "s", photo_dir, style_path, variant="fast", max_steps=25, lr=3e-3, teacher=str(teacher.network)
    )
    result = run_training(cfg, progress=False)
    errors = [h["teacher"] for _, h in result.history]
    assert set(result.history[0][1]) == {"teacher", "total"}
    assert sum(errors[-5:]) / 5 < 0.7 * sum(errors[:5]) / 5, errors
    student, meta = load_network(result.network)
    assert meta["variant"] == "fast" and '"teacher"' in meta["config"]
    x = (
        torch.stack(
            [
                torch.from_numpy(np.array(Image.open(p).convert("RGB").resize((48, 48)))).permute(2, 0, 1)
                for p in sorted(photo_dir.rglob("*.jpg"))
            ]
        ).float()
        / 255
    )
    with torch.no_grad():
        target = load_network(teacher.network)[0](x)
        fresh = TransformerNet.from_variant("fast").eval()
        assert (student(x) - target).abs().mean() < 0.7 * (fresh(x) - target).abs().mean()

    out = tmp_path / "missing"
    common = ["--data", str(photo_dir), "--image-size", "48", "--max-steps", "1", "--num-workers", "0"]
    capsys.readouterr()
    code, err = _cli(capsys, "--style", str(style_path), "-o", str(out), "--teacher", str(tmp_path / "nope"), *common)
    assert code == 2 and "nope: no such model file" in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_an_onnx_model_or_shipped_name_is_a_teacher(tmp_path, photo_dir, style_path, monkeypatch):
    """The shipped networks have no PyTorch weights: onnxruntime runs them as the teacher, same outputs."""
    from infer.export.exporter import export_onnx
    from train.teacher import OnnxTeacher, load_teacher

    trained = run_training(tiny(tmp_path / "t", photo_dir, style_path, max_steps=2), progress=False)
    models = tmp_path / "models"
    models.mkdir()
    export_onnx(trained.network, models / "tiny_style.onnx")
    monkeypatch.setenv("NST_MODELS_DIR", str(models))
    teacher = load_teacher("tiny_style")
    assert isinstance(teacher, OnnxTeacher)
    x = torch.rand(2, 3, 40, 44)
    with torch.no_grad():
        assert (teacher(x) - load_network(trained.network)[0](x)).abs().max() < 1e-4
    cfg = tiny(tmp_path / "s", photo_dir, style_path, variant="fast", max_steps=3, teacher="tiny_style")
    assert load_network(run_training(cfg, progress=False).network)[1]["variant"] == "fast"
