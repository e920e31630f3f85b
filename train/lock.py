"""One trainer per run folder: a second `nst train` on the same folder (a job scheduler starting a job twice) is
refused at once, naming the process that holds the run, instead of both writing checkpoints into one history.

The lock is the operating system's (`filelock`: flock on POSIX, msvcrt on Windows) on ``RUN/.lock``, so a
killed trainer's lock goes with it; ``RUN/.lock.owner`` says who holds it (pid and host) for the message, and
one left by a killed trainer is taken over with a note. Only the main process of a multi-process run locks.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

from filelock import FileLock, Timeout

from nst_core.errors import NSTError
from nst_core.files import atomic_path
from nst_core.log import LOG

LOCK_FILE, OWNER_FILE = ".lock", ".lock.owner"


class RunLock:
    """The lock of one run folder: `acquire` (NSTError when another trainer holds it), `release`."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self._lock = FileLock(str(run_dir / LOCK_FILE), thread_local=False)
        self.held = False

    def acquire(self) -> None:
        """Take the lock now or refuse with one line naming its holder; the run folder must exist."""
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            raise NSTError(
                f"{self.run_dir}: already being trained by {self._holder()}; one trainer per run folder "
                "(wait for it to finish, or stop it and --resume)"
            ) from None
        self.held = True
        previous = self._owner()
        here = {"pid": os.getpid(), "host": socket.gethostname()}
        if previous:  # left by a trainer that was killed (a live one would still hold the lock)
            LOG.info(f"{self.run_dir}: taking over the lock of process {previous.get('pid')}, no longer running")
        with atomic_path(self.run_dir / OWNER_FILE) as tmp:
            tmp.write_text(json.dumps(here), encoding="utf-8")

    def release(self) -> None:
        if self.held:
            (self.run_dir / OWNER_FILE).unlink(missing_ok=True)
            self._lock.release()
            self.held = False

    def _owner(self) -> dict | None:
        try:
            owner = json.loads((self.run_dir / OWNER_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return owner if isinstance(owner, dict) else None

    def _holder(self) -> str:
        owner = self._owner() or {}
        pid, host = owner.get("pid"), owner.get("host")
        return f"process {pid} on {host}" if isinstance(pid, int) else "another process"
