"""Checkpoints of `nst optimize`: a run killed or stopped at --max-time and resumed ends exactly where an
uninterrupted run ends; a checkpoint of other settings is refused with one line."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from nst_core.errors import NSTError
from nst_core.losses.weights import LossWeights
from nst_core.optimize.config import OptimizeConfig
from nst_core.optimize.scales import optimize
from tests.helpers import one_error_line, run_cli

#: Two scales (32 and 64 px), every chunk checkpointed.
FIXED = OptimizeConfig(size=64, scales=2, steps=12, coarse_steps=10, progress=False, checkpoint_every=1e-9)
#: The trainer's weights make L-BFGS overshoot and restart early in a scale: the resumed path crosses a restart.
TRAINER = replace(FIXED, loss=LossWeights(content=1, style=1e5, tv=0))
#: Both scales run until converged (the loss rule reads the restored per-scale losses).
CONVERGING = OptimizeConfig(size=64, scales=2, min_steps=8, window=4, tol=0.05, progress=False, checkpoint_every=1e-9)


class _Killed(Exception):
    pass


def _kill_at(step: int):
    def callback(n: int, seconds: float, image: torch.Tensor, terms: dict[str, float]) -> None:
        if n == step:
            raise _Killed

    return callback


def _run(content: Path, style: Path, cfg: OptimizeConfig, **changes):
    return optimize(content, style, cfg, **changes)


@pytest.mark.parametrize(
    ("cfg", "kill_at"),
    [
        (FIXED, 5),  # within the coarse scale
        (FIXED, 11),  # the first step of the fine scale: resumed from the coarse scale's end
        (FIXED, 17),  # within the fine scale
        (CONVERGING, 6),
        (CONVERGING, 40),
        (OptimizeConfig(size=64, scales=1, steps=9, optimizer="adam", progress=False, checkpoint_every=1e-9), 5),
        (TRAINER, 8),
    ],
    ids=["coarse", "scale-end", "fine", "converging-coarse", "converging-late", "adam", "trainer-loss"],
)
def test_a_killed_run_resumed_equals_an_uninterrupted_one(
    cfg: OptimizeConfig, kill_at: int, content_path: Path, style_path: Path, tmp_path: Path
) -> None:
    whole = _run(content_path, style_path, cfg)
    ckpt = tmp_path / "run.resume.pt"
    with pytest.raises(_Killed):
        _run(content_path, style_path, cfg, checkpoint=str(ckpt), callback=_kill_at(kill_at))
    assert ckpt.is_file()
    resumed = _run(content_path, style_path, cfg, checkpoint=str(ckpt), resume=True)
    assert kill_at < whole.steps  # the kill happened before the end
    assert torch.equal(resumed.tensor, whole.tensor)
    assert resumed.steps == whole.steps and resumed.scales == whole.scales
    assert [h[2] for h in resumed.history] == [h[2] for h in whole.history]
    assert not ckpt.exists()  # a finished run removes its checkpoint


def test_max_time_stops_with_a_checkpoint_and_resume_finishes_the_same_picture(
    content_path: Path, style_path: Path, tmp_path: Path
) -> None:
    ckpt = tmp_path / "run.resume.pt"
    stopped = _run(content_path, style_path, FIXED, checkpoint=str(ckpt), max_time=1e-6)
    assert stopped.out_of_time and ckpt.is_file()
    assert stopped.steps == 2 and stopped.size == (32, 32)  # one L-BFGS chunk of the coarse scale
    resumed = _run(content_path, style_path, FIXED, checkpoint=str(ckpt), resume=True)
    assert not resumed.out_of_time and resumed.size == (64, 64)
    assert torch.equal(resumed.tensor, _run(content_path, style_path, FIXED).tensor)


def test_max_time_counts_this_session_not_the_resumed_run() -> None:
    from nst_core.optimize.run import Run

    run = Run(replace(FIXED, checkpoint="unused", max_time=3600), time.perf_counter(), None, None, None)
    run.restore({"step": 500, "scales": [], "history": [], "elapsed": 7200.0})  # two hours in earlier sessions
    assert run.elapsed() >= 7200 and not run.out_of_time()


def test_a_checkpoint_of_other_settings_or_inputs_is_refused(
    content_path: Path, style_path: Path, style_path2: Path, tmp_path: Path
) -> None:
    ckpt = str(tmp_path / "run.resume.pt")
    _run(content_path, style_path, FIXED, checkpoint=ckpt, max_time=1e-6)
    with pytest.raises(NSTError, match=r"run.resume.pt: made by a run with other settings \(size 64 -> 48\)"):
        _run(content_path, style_path, FIXED, checkpoint=ckpt, resume=True, size=48)
    with pytest.raises(NSTError, match=r"other settings \(styles image changed\)"):
        _run(content_path, style_path2, FIXED, checkpoint=ckpt, resume=True)
    Path(ckpt).write_bytes(b"not a checkpoint")
    with pytest.raises(NSTError, match="not a readable optimize checkpoint"):
        _run(content_path, style_path, FIXED, checkpoint=ckpt, resume=True)


def _cli(content: Path, out: Path, *extra: str) -> list[str]:
    fixed = ["--size", "64", "--scales", "2", "--steps", "12", "--coarse-steps", "10", "--json", "-q"]
    return ["optimize", str(content), "--style", "starry_night", "-o", str(out), *fixed, *extra]


def test_cli_max_time_then_resume_writes_the_uninterrupted_picture(content_path: Path, tmp_path: Path, capsys) -> None:
    out, whole = tmp_path / "out.png", tmp_path / "whole.png"
    code, stdout, _ = run_cli(_cli(content_path, out, "--max-time", "0.001"), capsys)
    summary = json.loads(stdout)
    assert code == 0 and summary["out_of_time"] and summary["output"] is None
    assert not out.exists() and Path(summary["checkpoint"]) == tmp_path / "out.png.resume.pt"
    code, stdout, _ = run_cli(_cli(content_path, out, "--resume"), capsys)
    assert code == 0 and json.loads(stdout)["steps"] == 22
    assert not (tmp_path / "out.png.resume.pt").exists()
    assert run_cli(_cli(content_path, whole), capsys)[0] == 0
    assert out.read_bytes() == whole.read_bytes()


def test_cli_resume_without_a_checkpoint_is_one_line(content_path: Path, tmp_path: Path, capsys) -> None:
    code, stdout, err = run_cli(_cli(content_path, tmp_path / "out.png", "--resume"), capsys)
    assert code == 2 and stdout == ""
    one_error_line(err, "out.png.resume.pt", "no checkpoint to resume")


def test_cli_max_time_must_be_a_duration(content_path: Path, tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as e:
        run_cli(_cli(content_path, tmp_path / "out.png", "--max-time", "soon"), capsys)
    assert e.value.code == 2 and "expected seconds > 0" in capsys.readouterr().err


# ------------------------------------------------------------------------------------ the end of a run (issue 29)


def _stop_in_store(write: Path | None = None):
    """A `store` killed before (``write`` None) or after writing the output: a kill around the output's rename."""

    def store(result) -> None:
        if write is not None:
            result.image.save(write)
        raise _Killed

    return store


@pytest.mark.parametrize("written", [False, True], ids=["before-the-output", "after-the-output"])
def test_a_run_killed_around_its_output_finishes_from_its_checkpoint_without_optimising(
    written: bool, content_path: Path, style_path: Path, tmp_path: Path
) -> None:
    whole = _run(content_path, style_path, FIXED)
    ckpt, out = tmp_path / "run.resume.pt", tmp_path / "out.png"
    with pytest.raises(_Killed):
        _run(content_path, style_path, FIXED, checkpoint=str(ckpt), store=_stop_in_store(out if written else None))
    assert ckpt.is_file() and out.exists() == written  # the checkpoint outlives the output's rename
    stored, steps = [], []
    resumed = _run(
        content_path,
        style_path,
        FIXED,
        checkpoint=str(ckpt),
        resume=True,
        store=stored.append,
        callback=lambda n, *_: steps.append(n),
    )
    assert steps == [] and stored == [resumed] and not ckpt.exists()  # no step taken: the result was in it
    assert torch.equal(resumed.tensor, whole.tensor) and resumed.steps == whole.steps
    assert resumed.loss == whole.loss and resumed.scales == whole.scales and resumed.size == whole.size


def test_cli_resume_of_a_finished_checkpoint_writes_the_output(content_path: Path, tmp_path: Path, capsys) -> None:
    out, whole = tmp_path / "out.png", tmp_path / "whole.png"
    assert run_cli(_cli(content_path, whole), capsys)[0] == 0
    cfg = replace(FIXED, checkpoint=str(tmp_path / "out.png.resume.pt"))
    with pytest.raises(_Killed):  # the run as `nst optimize` makes it, killed before the output's rename
        optimize(content_path, "starry_night", cfg, store=_stop_in_store())
    code, stdout, _ = run_cli(_cli(content_path, out, "--resume"), capsys)
    assert code == 0 and json.loads(stdout)["steps"] == 22 and out.read_bytes() == whole.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png", "whole.png"]


def test_cli_removes_a_dead_run_s_temporaries_and_reads_the_old_checkpoint_name(
    content_path: Path, tmp_path: Path, capsys
) -> None:
    out, whole = tmp_path / "out.png", tmp_path / "whole.png"
    dead = 2**22 + 12345  # above the kernel's pid_max default: no such process
    litter = [tmp_path / f".out.png.resume.pt.{dead}.0123abcd.tmp.pt", tmp_path / f".out.png.{dead}.89abcdef.tmp.png"]
    for path in litter:
        path.write_bytes(b"half")
    optimize(content_path, "starry_night", replace(FIXED, checkpoint=str(tmp_path / "out.resume.pt"), max_time=1e-6))
    code = run_cli(_cli(content_path, out, "--resume"), capsys)[0]
    assert code == 0 and not any(p.exists() for p in litter)
    assert run_cli(_cli(content_path, whole), capsys)[0] == 0
    assert out.read_bytes() == whole.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png", "whole.png"]


def test_two_outputs_of_one_stem_keep_their_own_checkpoints(content_path: Path, tmp_path: Path, capsys) -> None:
    code, stdout, _ = run_cli(_cli(content_path, tmp_path / "out.jpg", "--max-time", "0.001"), capsys)
    assert code == 0 and json.loads(stdout)["out_of_time"]
    assert run_cli(_cli(content_path, tmp_path / "out.png"), capsys)[0] == 0  # a whole run of the other output
    assert (tmp_path / "out.jpg.resume.pt").is_file()  # the unfinished run's checkpoint is still there
    code, stdout, _ = run_cli(_cli(content_path, tmp_path / "out.jpg", "--resume"), capsys)
    assert code == 0 and json.loads(stdout)["steps"] == 22 and not (tmp_path / "out.jpg.resume.pt").exists()


@pytest.mark.parametrize(
    ("edit", "field", "shown"),
    [
        (lambda s: {"version": s["version"]}, "fingerprint", "missing"),
        (lambda s: s | {"fingerprint": 5}, "fingerprint", "5"),
        (lambda s: {k: s[k] for k in ("version", "fingerprint")}, "step", "missing"),
        (lambda s: s | {"level": 7}, "level", "7"),
        (lambda s: s | {"scale": s["scale"] | {"p": torch.zeros(1, 3, 5, 5)}}, "scale.p", "[1, 3, 5, 5]"),
        (lambda s: s | {"scale": s["scale"] | {"p": torch.zeros(3, 32, 32)}}, "scale.p", "[3, 32, 32]"),
        (lambda s: s | {"history": [[1, "x"]]}, "history", "[[1, 'x']]"),
        (lambda s: s | {"scale": s["scale"] | {"best": {"bogus": 1}}}, "scale.best", "{'bogus': 1}"),
        (lambda s: {k: s[k] for k in ("version", "fingerprint")} | {"result": {}}, "result.tensor", "missing"),
    ],
    ids=[
        "only-version",
        "fingerprint-int",
        "no-state",
        "no-such-scale",
        "image-shape",
        "image-rank",
        "history",
        "best",
        "empty-result",
    ],
)
def test_a_hand_edited_checkpoint_is_one_line_naming_the_field(
    edit, field: str, shown: str, content_path: Path, tmp_path: Path, capsys
) -> None:
    out, ckpt = tmp_path / "out.png", tmp_path / "out.png.resume.pt"
    assert run_cli(_cli(content_path, out, "--max-time", "0.001"), capsys)[0] == 0
    torch.save(edit(torch.load(ckpt, weights_only=True)), ckpt)
    code, stdout, err = run_cli(_cli(content_path, out, "--resume"), capsys)
    assert code == 2 and stdout == "" and not out.exists()
    one_error_line(err, "out.png.resume.pt", f"field {field!r} is", shown, "drop --resume")


def test_a_budget_too_small_for_a_later_scale_fails_before_any_work(
    content_path: Path, style_path: Path, tmp_path: Path
) -> None:
    """1.1 GiB plans the 64 px scale but not the 128 px one: the run fails at once, not after the first scale."""
    steps, ckpt = [], tmp_path / "run.resume.pt"
    cfg = OptimizeConfig(size=128, scales=2, steps=3, progress=False, max_memory_gb=1.1, checkpoint=str(ckpt))
    with pytest.raises(NSTError, match=r"image does not fit 1\.0 GiB"):
        optimize(content_path, style_path, cfg, callback=lambda n, *_: steps.append(n))
    assert steps == [] and not ckpt.exists()


def test_resume_may_plan_the_memory_anew_but_not_the_history(content_path: Path, tmp_path: Path, capsys) -> None:
    from nst_core.optimize.checkpoint import _differences

    out, whole = tmp_path / "out.png", tmp_path / "whole.png"
    assert run_cli(_cli(content_path, out, "--max-time", "0.001", "--max-memory", "2"), capsys)[0] == 0
    assert run_cli(_cli(content_path, out, "--resume", "--max-memory", "3"), capsys)[0] == 0
    assert run_cli(_cli(content_path, whole, "--max-memory", "2"), capsys)[0] == 0
    assert out.read_bytes() == whole.read_bytes()
    saved = {"history": [100, 100], "max_memory_gb": 2.0, "tile": None, "size": 64}
    assert _differences(saved, saved | {"max_memory_gb": 3.0, "tile": 32}) == ""
    planned_anew = saved | {"history": [100, 40], "max_memory_gb": 0.5}
    assert _differences(saved, planned_anew) == "history [100, 100] -> [100, 40]"
    legacy = {"max_memory_gb": 2.0, "tile": None, "size": 64}  # before the planned history was recorded
    assert _differences(legacy, legacy | {"history": [100, 100], "max_memory_gb": 3.0}) == "max_memory_gb 2.0 -> 3.0"
