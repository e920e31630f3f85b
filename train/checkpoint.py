"""Atomic, rotating training checkpoints: RUN_DIR/checkpoints/step-000001000/.

Each checkpoint folder holds ``network.safetensors`` (read by the exporter through
nst_core.checkpoint_io), ``optimizer.pt`` and ``training_state.pt`` (step, data position,
skip counts, RNG states of every process). It is written under a hidden temporary name and
renamed into place, so a kill at any moment leaves either the old set of checkpoints or the
new one, never a half-written ``step-*`` folder.
"""

from __future__ import annotations

import os
import random
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from nst_core.checkpoint_io import CHECKPOINTS_DIR, NETWORK_FILE, checkpoint_dirs, save_network, unwrap
from nst_core.errors import NSTError

TRAINING_STATE = "training_state.pt"
OPTIMIZER_STATE = "optimizer.pt"


def step_dir_name(step: int) -> str:
    return f"step-{step:09d}"


def rng_state() -> dict[str, Any]:
    """Python, NumPy, torch (and CUDA) generator states of this process."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def clean_temporaries(run_dir: Path) -> None:
    """Remove leftovers of checkpoints that were being written or deleted when a process was killed."""
    root = run_dir / CHECKPOINTS_DIR
    if root.is_dir():
        for p in root.iterdir():
            if p.name.startswith((".tmp-", ".old-")):
                shutil.rmtree(p, ignore_errors=True)


def save_checkpoint(
    run_dir: Path,
    step: int,
    net: nn.Module,
    optimizer: torch.optim.Optimizer,
    state: Mapping[str, Any],
    metadata: Mapping[str, Any],
    keep: int,
    process_rngs: list[dict[str, Any]],
) -> Path:
    """Write checkpoint ``step`` atomically, then delete all but the newest ``keep``. Main process only."""
    root = run_dir / CHECKPOINTS_DIR
    root.mkdir(parents=True, exist_ok=True)
    final = root / step_dir_name(step)
    tmp = root / f".tmp-{step_dir_name(step)}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_network(net, tmp / NETWORK_FILE, metadata)
    torch.save(optimizer.state_dict(), tmp / OPTIMIZER_STATE)
    torch.save({**state, "step": step, "rng": process_rngs}, tmp / TRAINING_STATE)
    for f in tmp.iterdir():  # data on disk before the rename makes the folder visible
        with open(f, "rb") as fh:
            os.fsync(fh.fileno())
    if final.exists():  # re-saving a step (e.g. resumed and stopped again at once)
        old = root / f".old-{final.name}-{os.getpid()}"
        os.replace(final, old)
        shutil.rmtree(old, ignore_errors=True)
    os.replace(tmp, final)
    _fsync_dir(root)
    for stale in checkpoint_dirs(run_dir)[:-keep]:
        old = root / f".old-{stale.name}"
        os.replace(stale, old)  # invisible to resume before its files go
        shutil.rmtree(old, ignore_errors=True)
    return final


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest complete checkpoint folder of a run, or None."""
    complete = [d for d in checkpoint_dirs(run_dir) if (d / TRAINING_STATE).is_file() and (d / NETWORK_FILE).is_file()]
    return complete[-1] if complete else None


def resolve_resume(resume: str, run_dir: Path) -> Path:
    """``latest`` -> the run's newest checkpoint; else a checkpoint folder path. NSTError when none."""
    if resume == "latest":
        found = latest_checkpoint(run_dir)
        if found is None:
            raise NSTError(f"{run_dir}: --resume given but there is no checkpoint in {run_dir / CHECKPOINTS_DIR}")
        return found
    path = Path(resume)
    if not (path / TRAINING_STATE).is_file():
        raise NSTError(f"{resume}: not a checkpoint folder (no {TRAINING_STATE})")
    return path


def load_checkpoint(ckpt: Path, net: nn.Module, optimizer: torch.optim.Optimizer, rank: int = 0) -> dict[str, Any]:
    """Restore weights, optimizer and this process's RNG; return the saved training state."""
    from safetensors.torch import load_file

    try:
        weights = load_file(str(ckpt / NETWORK_FILE))
        unwrap(net).load_state_dict(weights)
        optimizer.load_state_dict(torch.load(ckpt / OPTIMIZER_STATE, map_location="cpu", weights_only=False))
        state = torch.load(ckpt / TRAINING_STATE, map_location="cpu", weights_only=False)
    except (OSError, RuntimeError, ValueError, KeyError) as e:
        raise NSTError(
            f"{ckpt}: cannot restore checkpoint ({type(e).__name__}: {str(e).splitlines()[0][:200]})"
        ) from None
    rngs = state.get("rng") or []
    if rngs:
        set_rng_state(rngs[rank] if rank < len(rngs) else rngs[0])
    return state
