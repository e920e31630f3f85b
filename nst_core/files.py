"""Output files: destinations checked before any work, atomic writes, stale temporaries cleaned.

Every file the toolkit writes (images, .onnx, network.safetensors, config.yaml, reports) goes
through `atomic_path`: a temporary file beside the target, renamed over it only when complete. A
temporary's name carries its writer's pid (``.out.png.1234.k3j2.tmp.png``), so the next writer of the
same target, or `clean_stale_temporaries`, can remove what a killed process left without touching a
live writer's file.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from nst_core.errors import NSTError

_TEMP = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[0-9a-f]{8}\.tmp.*$")


def _os_error(path: Path, e: OSError) -> NSTError:
    return NSTError(f"{path}: cannot write ({e.strerror or e})")


def _probe(folder: Path, what: Path) -> None:
    """Create and delete a file in ``folder``: the only check that holds for root, read-only mounts and /proc."""
    probe = folder / f".nst-probe.{os.getpid()}.{secrets.token_hex(4)}"
    try:
        probe.touch(exist_ok=False)
        probe.unlink()
    except OSError as e:
        raise NSTError(f"{what}: cannot write in {folder} ({e.strerror or e})") from None


def check_output_folder(path: str | os.PathLike) -> Path:
    """``path``'s folder must exist and accept new files, and ``path`` must not be a folder. Returns ``path``.

    Called where an output path enters, before any work, so a long run never fails at the end.
    """
    path = Path(path)
    parent = path.parent  # Path("out.png").parent is Path(".")
    if path.is_dir():
        raise NSTError(f"{path}: is a folder; give a file name")
    if not parent.is_dir():
        raise NSTError(f"{path}: output folder {parent} does not exist")
    _probe(parent, path)
    return path


def check_output_dir(path: str | os.PathLike) -> Path:
    """An output folder that may not exist yet: not a file, and it (or its nearest existing parent) accepts files."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise NSTError(f"{path}: exists and is not a folder")
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir():
        raise NSTError(f"{path}: {existing} is a file, not a folder")
    _probe(existing, path)
    return path


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (a temporary's writer still running)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def clean_stale_temporaries(folder: str | os.PathLike, name: str | None = None) -> list[Path]:
    """Remove the atomic-write temporaries in ``folder`` (of target ``name`` only, if given) whose writer is dead."""
    removed = []
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return removed
    for p in entries:
        m = _TEMP.match(p.name)
        if m and (name is None or m["name"] == name) and not pid_alive(int(m["pid"])):
            try:
                p.unlink()
                removed.append(p)
            except OSError:
                pass
    return removed


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def temporary_name(path: Path) -> Path:
    """``.NAME.PID.RANDOM.tmpSUFFIX`` beside ``path`` (the suffix kept so format-by-extension writers work)."""
    return path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp{path.suffix}"


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` only if the block succeeds.

    A crash or an exception leaves no half-written file behind, and never a truncated ``path``; an OS
    error while writing (full disk, permissions) becomes an NSTError naming ``path``. The file gets the
    permissions any program's new file gets (0666 minus the umask), not mkstemp's 0600.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise NSTError(f"{path}: output folder {path.parent} does not exist")
    clean_stale_temporaries(path.parent, path.name)
    tmp = temporary_name(path)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666 & ~_umask())
        os.close(fd)
    except OSError as e:
        raise _os_error(path, e) from None
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # again: writers that replace the file (safetensors) make it 0600
        os.replace(tmp, path)
    except OSError as e:  # a full disk, a vanished folder...: one line naming the path, nothing left behind
        tmp.unlink(missing_ok=True)
        raise _os_error(path, e) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
