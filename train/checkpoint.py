"""Atomic, rotating training checkpoints: RUN_DIR/checkpoints/step-000001000/ (timm's CheckpointSaver idea).

Each checkpoint folder holds ``network.safetensors`` (read by the exporter through
nst_core.checkpoint_io), ``optimizer.pt`` and ``training_state.pt`` (train.state.TrainingState plus
the RNG states of every process). It is written under a hidden temporary name and renamed into
place, so a kill at any moment leaves either the old set of checkpoints or the new one, never a
half-written ``step-*`` folder. Loading uses ``weights_only=True``: no arbitrary unpickling.
"""

from __future__ import annotations

import os
import pickle
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nst_core.checkpoint_io import CHECKPOINTS_DIR, NETWORK_FILE, checkpoint_dirs, save_network, unwrap
from nst_core.errors import NSTError, first_line
from nst_core.files import pid_alive
from train.state import TrainingState, set_rng_state

TRAINING_STATE = "training_state.pt"
OPTIMIZER_STATE = "optimizer.pt"
#: A checkpoint folder being written (.tmp-) or deleted (.old-), named with its writer's pid.
_HIDDEN = re.compile(r"^\.(tmp|old)-step-\d+(-(?P<pid>\d+))?$")


def step_dir_name(step: int) -> str:
    return f"step-{step:09d}"


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


def _remove(folder: Path, hidden_name: str) -> None:
    """Rename out of sight first (resume never sees a half-deleted checkpoint), then delete."""
    hidden = folder.parent / hidden_name
    os.replace(folder, hidden)
    shutil.rmtree(hidden, ignore_errors=True)


class Checkpointer:
    """Saves, rotates, finds and restores the checkpoints of one run folder."""

    def __init__(self, run_dir: str | os.PathLike, keep: int, metadata: Mapping[str, Any] | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.root = self.run_dir / CHECKPOINTS_DIR
        self.keep = keep
        self.metadata = dict(metadata or {})  # stored in every network.safetensors (style, config ...)

    def clean_temporaries(self) -> None:
        """Remove leftovers of checkpoints that were being written or deleted when a process was killed.

        Their names end in the writer's pid (``.tmp-step-000000010-1234``); a live writer's are kept.
        """
        if self.root.is_dir():
            for p in self.root.iterdir():
                m = _HIDDEN.match(p.name)
                if m and not (m["pid"] and pid_alive(int(m["pid"]))):
                    shutil.rmtree(p, ignore_errors=True)

    def save(
        self, net: nn.Module, optimizer: torch.optim.Optimizer, state: TrainingState, rngs: list[dict[str, Any]]
    ) -> Path:
        """Write checkpoint ``state.step`` atomically, then keep only the newest ``keep``. Main process only.

        ``rngs``: the RNG states of every process (index = rank). A failed write (full disk ...) is an
        NSTError naming the checkpoint, and leaves no temporary folder behind.
        """
        final = self.root / step_dir_name(state.step)
        tmp = self.root / f".tmp-{final.name}-{os.getpid()}"
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir()
            save_network(net, tmp / NETWORK_FILE, {**self.metadata, "step": state.step})
            torch.save(optimizer.state_dict(), tmp / OPTIMIZER_STATE)
            torch.save({**state.to_dict(), "rng": rngs}, tmp / TRAINING_STATE)
            for f in tmp.iterdir():  # data on disk before the rename makes the folder visible
                with open(f, "rb") as fh:
                    os.fsync(fh.fileno())
            if final.exists():  # re-saving a step (e.g. resumed and stopped again at once)
                _remove(final, f".old-{final.name}-{os.getpid()}")
            os.replace(tmp, final)
        except (OSError, RuntimeError, NSTError) as e:  # torch.save reports a full disk as a RuntimeError
            reason = e.strerror if isinstance(e, OSError) and e.strerror else first_line(e)
            raise NSTError(f"{final}: cannot write checkpoint ({reason})") from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        _fsync_dir(self.root)
        for stale in checkpoint_dirs(self.run_dir)[: -self.keep]:
            _remove(stale, f".old-{stale.name}-{os.getpid()}")
        return final

    def save_network(self, net: nn.Module, step: int) -> Path:
        """The final RUN_DIR/network.safetensors."""
        return save_network(net, self.run_dir / NETWORK_FILE, {**self.metadata, "step": step})

    def latest(self) -> Path | None:
        """The newest complete checkpoint folder of the run, or None."""
        complete = [
            d for d in checkpoint_dirs(self.run_dir) if (d / TRAINING_STATE).is_file() and (d / NETWORK_FILE).is_file()
        ]
        return complete[-1] if complete else None

    def resolve(self, resume: str) -> Path:
        """``latest`` -> the run's newest checkpoint; else a checkpoint folder path. NSTError when none."""
        if resume == "latest":
            found = self.latest()
            if found is None:
                raise NSTError(f"{self.run_dir}: --resume given but there is no checkpoint in {self.root}")
            return found
        path = Path(resume)
        if not (path / TRAINING_STATE).is_file():
            raise NSTError(f"{resume}: not a checkpoint folder (no {TRAINING_STATE})")
        return path

    def load(self, ckpt: Path, net: nn.Module, optimizer: torch.optim.Optimizer, rank: int = 0) -> TrainingState:
        """Restore weights, optimizer and this process's RNG; return the saved training state."""
        from safetensors.torch import load_file

        try:
            unwrap(net).load_state_dict(load_file(str(ckpt / NETWORK_FILE)))
            optimizer.load_state_dict(torch.load(ckpt / OPTIMIZER_STATE, map_location="cpu", weights_only=True))
            saved = torch.load(ckpt / TRAINING_STATE, map_location="cpu", weights_only=True)
            state = TrainingState.from_dict(saved)
        except (OSError, RuntimeError, ValueError, KeyError, TypeError, pickle.UnpicklingError) as e:
            raise NSTError(
                f"{ckpt}: cannot restore checkpoint ({type(e).__name__}: {str(e).splitlines()[0][:200]})"
            ) from None
        rngs = saved.get("rng") or []
        if rngs:
            set_rng_state(rngs[rank] if rank < len(rngs) else rngs[0])
        return state
