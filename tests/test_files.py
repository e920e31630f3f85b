"""Output files: destinations checked before any work, atomic writes, stale temporaries, one-line errors."""

from __future__ import annotations

import errno
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from nst_core.errors import NSTError
from nst_core.files import atomic_path, check_output_dir, check_output_folder, clean_stale_temporaries, temporary_name


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_output_checks_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(NSTError, match="is a folder"):
        check_output_folder(tmp_path)
    with pytest.raises(NSTError, match="does not exist"):
        check_output_folder(tmp_path / "no" / "out.png")
    assert check_output_folder(tmp_path / "out.png") == tmp_path / "out.png"
    assert list(tmp_path.iterdir()) == []  # the probe leaves nothing


@pytest.mark.parametrize("where", ["/proc", "/sys"])
def test_pseudo_filesystems_fail_before_any_work(where: str) -> None:
    if not Path(where).is_dir():
        pytest.skip(f"no {where}")
    with pytest.raises(NSTError, match=re.escape(f"cannot write in {where}")):
        check_output_folder(Path(where) / "out.png")
    with pytest.raises(NSTError, match="cannot write in"):
        check_output_dir(Path(where) / "report")


def test_read_only_folder(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        if os.access(ro, os.W_OK) and os.geteuid() == 0:
            pytest.skip("root writes into read-only folders (the /proc test covers the probe)")
        with pytest.raises(NSTError, match="cannot write in"):
            check_output_folder(ro / "out.png")
    finally:
        ro.chmod(0o755)


def test_output_dir_may_be_created_but_not_be_a_file(tmp_path: Path) -> None:
    assert check_output_dir(tmp_path / "new" / "deeper") == tmp_path / "new" / "deeper"
    assert not (tmp_path / "new").exists()  # checked, not created
    (tmp_path / "file").write_text("x")
    with pytest.raises(NSTError, match="exists and is not a folder"):
        check_output_dir(tmp_path / "file")
    with pytest.raises(NSTError, match="is a file, not a folder"):
        check_output_dir(tmp_path / "file" / "sub")


def test_a_failed_write_is_one_line_and_leaves_nothing(tmp_path: Path) -> None:
    message = re.escape(f"{tmp_path / 'out.bin'}: cannot write (No space left on device)")
    with pytest.raises(NSTError, match=message), atomic_path(tmp_path / "out.bin") as tmp:
        tmp.write_bytes(b"partial")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert list(tmp_path.iterdir()) == []


def test_files_follow_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        with atomic_path(tmp_path / "out.txt") as tmp:
            tmp.write_text("hello")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "out.txt").stat().st_mode) == 0o644


def test_stale_temporaries_of_dead_writers_are_removed(tmp_path: Path) -> None:
    target = tmp_path / "out.png"
    mine = temporary_name(target)
    stale = tmp_path / mine.name.replace(f".{os.getpid()}.", f".{dead_pid()}.")
    other_target = tmp_path / temporary_name(tmp_path / "other.png").name.replace(f".{os.getpid()}.", f".{dead_pid()}.")
    for p in (mine, stale, other_target):
        p.write_bytes(b"x")
    with atomic_path(target) as tmp:  # the next writer of out.png removes out.png's stale temporary only
        tmp.write_bytes(b"done")
    assert mine.exists() and not stale.exists() and other_target.exists()
    assert clean_stale_temporaries(tmp_path) == [other_target]  # a live writer's file stays
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([mine.name, "out.png"])


def test_a_killed_writer_leaves_no_final_file_and_the_next_run_cleans_up(tmp_path: Path) -> None:
    code = (
        "import os, sys\nfrom nst_core.files import atomic_path\n"
        f"with atomic_path({str(tmp_path / 'out.bin')!r}) as t:\n"
        "    t.write_bytes(b'half')\n    os._exit(9)  # killed mid-write\n"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 9
    assert next(p.name for p in tmp_path.iterdir()).startswith(".out.bin.")  # the orphan, no out.bin
    with atomic_path(tmp_path / "out.bin") as tmp:
        tmp.write_bytes(b"whole")
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]
