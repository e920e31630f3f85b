"""Atomic, rotating training checkpoints: RUN_DIR/checkpoints/step-000001000/ (timm's CheckpointSaver idea),
their contents written and read by ``Accelerator.save_state`` / ``load_state``.

accelerate saves what it knows (optimizer ``optimizer.bin``, fp16 GradScaler ``scaler.pt``, each process's
RNG ``random_states_<rank>.pkl``, the registered `TrainingState` ``custom_checkpoint_0.pkl``); a save hook
writes the network as ``network.safetensors`` with its metadata (what `nst export` reads) instead of
accelerate's ``model.safetensors``, and a load hook reads it back. The folder is written under a hidden
temporary name and renamed into place, so a kill at any moment leaves either the old set of checkpoints
or the new one, never a half-written ``step-*`` folder.

Unpickling: accelerate 1.15 loads the optimizer, scaler and RNG files with ``weights_only=True``, but
registered objects (``custom_checkpoint_*.pkl``) with ``weights_only=False``; every pickle of a checkpoint
is therefore first opened with ``weights_only=True`` here, and a file that needs more is refused.
"""

from __future__ import annotations

import os
import pickle
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from accelerate.utils import load
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from nst_core.checkpoint_io import CHECKPOINTS_DIR, NETWORK_FILE, checkpoint_dirs, save_network, unwrap
from nst_core.errors import NSTError, first_line
from nst_core.files import pid_alive
from nst_core.log import LOG

#: The registered TrainingState (accelerate's name for the first registered object).
TRAINING_STATE = "custom_checkpoint_0.pkl"
#: What checkpoints written before accelerate's save_state held instead (not resumable any more).
OLD_TRAINING_STATE = "training_state.pt"
_PICKLES = (".bin", ".pkl", ".pt")
#: A checkpoint folder being written (.tmp-) or deleted (.old-), named with its writer's pid.
_HIDDEN = re.compile(r"^\.(tmp|old)-step-\d+(-(?P<pid>\d+))?$")


def step_dir_name(step: int) -> str:
    return f"step-{step:09d}"


def _fsync(path: Path) -> None:
    """Data (a file) or its entries (a folder) on disk before a rename makes them visible."""
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


def check_pickles(ckpt: Path) -> None:
    """Open every pickle of ``ckpt`` with ``weights_only=True`` (accelerate's numpy allowances included).

    accelerate unpickles registered objects with ``weights_only=False`` and skips RNG files it cannot read
    without a word; both are caught here, before ``load_state`` runs.
    """
    for f in sorted(ckpt.iterdir()):
        if f.suffix in _PICKLES:
            try:
                load(f, map_location="cpu", weights_only=True)
            except pickle.UnpicklingError as e:
                raise NSTError(
                    f"{f}: refused: it needs more than torch's weights_only loader allows ({first_line(e)})"
                ) from None


class Checkpointer:
    """Saves, rotates, finds and restores the checkpoints of one run folder through an Accelerator."""

    def __init__(self, run_dir: str | os.PathLike, keep: int, metadata: Mapping[str, Any] | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.root = self.run_dir / CHECKPOINTS_DIR
        self.keep = keep
        self.metadata = dict(metadata or {})  # stored in every network.safetensors (style, config ...)
        self.writer_pid = os.getpid()  # the main process's: every process writes into the same temporary folder
        self._step = 0

    def attach(self, accelerator: Any, state: Any) -> None:
        """Register the training state and the network hooks with ``accelerator`` (once, after prepare)."""
        accelerator.register_for_checkpointing(state)
        accelerator.register_save_state_pre_hook(self._save_hook)
        accelerator.register_load_state_pre_hook(self._load_hook)
        self.main = accelerator.is_main_process

    def _save_hook(self, models: list[nn.Module], weights: list[dict], output_dir: str) -> None:
        """network.safetensors (with metadata, for export) instead of accelerate's model.safetensors."""
        if self.main:
            save_network(models[0], Path(output_dir) / NETWORK_FILE, {**self.metadata, "step": self._step})
        weights.pop(0)

    def _load_hook(self, models: list[nn.Module], input_dir: str) -> None:
        unwrap(models[0]).load_state_dict(_network_weights(Path(input_dir)))
        models.pop(0)

    def clean_temporaries(self) -> None:
        """Remove leftovers of checkpoints that were being written or deleted when a process was killed.

        Their names end in the writer's pid (``.tmp-step-000000010-1234``); a live writer's are kept.
        """
        if self.root.is_dir():
            for p in self.root.iterdir():
                m = _HIDDEN.match(p.name)
                if m and not (m["pid"] and pid_alive(int(m["pid"]))):
                    shutil.rmtree(p, ignore_errors=True)

    def save(self, accelerator: Any, step: int) -> Path:
        """Write checkpoint ``step`` atomically, then keep only the newest ``keep``. Every process calls it.

        A failed write (full disk ...) is an NSTError naming the checkpoint, and leaves no temporary folder.
        """
        final = self.root / step_dir_name(step)
        tmp = self.root / f".tmp-{final.name}-{self.writer_pid}"
        self._step = step
        try:
            if self.main:
                self.root.mkdir(parents=True, exist_ok=True)
                shutil.rmtree(tmp, ignore_errors=True)
            accelerator.wait_for_everyone()
            accelerator.save_state(str(tmp), safe_serialization=True)
            accelerator.wait_for_everyone()  # every process's RNG file is in
            if self.main:
                self._publish(tmp, final)
        except (OSError, RuntimeError, NSTError) as e:  # torch.save reports a full disk as a RuntimeError
            reason = e.strerror if isinstance(e, OSError) and e.strerror else first_line(e)
            raise NSTError(f"{final}: cannot write checkpoint ({reason})") from None
        finally:
            if self.main:
                shutil.rmtree(tmp, ignore_errors=True)
        accelerator.wait_for_everyone()
        return final

    def _publish(self, tmp: Path, final: Path) -> None:
        """Rename the written folder into place, then drop all but the newest ``keep``."""
        for f in tmp.iterdir():
            _fsync(f)
        if final.exists():  # re-saving a step (e.g. resumed and stopped again at once)
            _remove(final, f".old-{final.name}-{os.getpid()}")
        os.replace(tmp, final)
        _fsync(self.root)
        LOG.debug(f"checkpoint written: {final}")
        for stale in checkpoint_dirs(self.run_dir)[: -self.keep]:
            _remove(stale, f".old-{stale.name}-{os.getpid()}")

    def save_network(self, net: nn.Module, step: int) -> Path:
        """The final RUN_DIR/network.safetensors."""
        return save_network(net, self.run_dir / NETWORK_FILE, {**self.metadata, "step": step})

    def latest(self) -> Path | None:
        """The newest complete checkpoint folder of the run (of this or an older format), or None."""
        complete = [
            d
            for d in checkpoint_dirs(self.run_dir)
            if (d / NETWORK_FILE).is_file() and any((d / f).is_file() for f in (TRAINING_STATE, OLD_TRAINING_STATE))
        ]
        return complete[-1] if complete else None

    def resolve(self, resume: str) -> Path:
        """``latest`` -> the run's newest checkpoint; else a checkpoint folder path. NSTError when none."""
        path = self.latest() if resume == "latest" else Path(resume)
        if path is None:
            raise NSTError(f"{self.run_dir}: --resume given but there is no checkpoint in {self.root}")
        if (path / OLD_TRAINING_STATE).is_file() and not (path / TRAINING_STATE).is_file():
            raise NSTError(
                f"{path}: a checkpoint of an older nst (before accelerate's save_state), which cannot be resumed; "
                "`nst export` still reads its network"
            )
        if not (path / TRAINING_STATE).is_file():
            raise NSTError(f"{resume}: not a checkpoint folder (no {TRAINING_STATE})")
        return path

    def load(self, ckpt: Path, accelerator: Any) -> None:
        """Restore network, optimizer, scaler, this process's RNG and the registered training state.

        A damaged checkpoint is one line naming it, and the newest older one whose network still reads.
        """
        try:
            check_pickles(ckpt)
            _network_weights(ckpt)  # before accelerate touches the run: a damaged network fails here, named
            accelerator.load_state(str(ckpt))
        except NSTError as e:
            raise NSTError(f"{e}{self._older_hint(ckpt)}") from None
        except (OSError, RuntimeError, ValueError, KeyError, TypeError, pickle.UnpicklingError) as e:
            reason = f"{type(e).__name__}: {first_line(e)[:200]}"
            raise NSTError(f"{ckpt}: cannot restore checkpoint ({reason}){self._older_hint(ckpt)}") from None

    def _older_hint(self, ckpt: Path) -> str:
        """Where to resume from instead of the damaged ``ckpt``: the newest older checkpoint whose network reads."""
        for older in reversed([d for d in checkpoint_dirs(self.run_dir) if d.name < ckpt.name]):
            try:
                _network_weights(older)
            except NSTError:
                continue
            return f"; an older checkpoint reads: --resume {older}"
        return ""


def _network_weights(ckpt: Path) -> dict[str, Any]:
    """The network's weights of checkpoint folder ``ckpt``; NSTError naming the file when it cannot be read."""
    file = ckpt / NETWORK_FILE
    try:
        return load_file(str(file))
    except (OSError, SafetensorError) as e:
        raise NSTError(f"{file}: cannot read the network ({type(e).__name__}: {first_line(e)[:200]})") from None
