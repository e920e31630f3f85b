"""Issue 11 for `nst stylize`, `nst export`, `nst compare`: bad destinations, full disks, pipes, kills, limits.

Every failure is one line naming the path, exit status 2 (1 for a batch with per-file errors), and
nothing left behind: no output, no temporary, no folder the run created. A full disk is simulated by
making a writer raise ENOSPC; a read-only folder cannot stop root, so /proc and /sys stand in for it
(the destination check creates a file there, which fails for everyone).
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from nst_core import image_io
from nst_core.checkpoint_io import save_network
from nst_core.files import temporary_name
from tests.helpers import leftovers, one_error_line, photo, run_cli, tiny_net

ROOT = Path(__file__).resolve().parents[1]
PSEUDO = [pytest.param(d, marks=pytest.mark.skipif(not Path(d).is_dir(), reason=f"no {d}")) for d in ("/proc", "/sys")]
UNWRITABLE = [*PSEUDO, "read-only"]


def no_space(*_args: object, **_kwargs: object) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def all_files(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*"))


@pytest.fixture
def network(tmp_path: Path) -> Path:
    """The tiny network as a .safetensors file in its own folder (export's input)."""
    path = tmp_path / "net" / "net.safetensors"
    path.parent.mkdir()
    save_network(tiny_net(), path)
    return path


# ---------------------------------------------------------------------------------------------- destinations


@pytest.fixture
def unwritable(request, tmp_path: Path):
    """/proc, /sys, or a read-only bind mount (refuses even root; skipped where mounting is not allowed)."""
    if request.param != "read-only":
        yield request.param
        return
    ro = tmp_path / "ro"
    ro.mkdir()
    mount = ["mount", "--bind", str(ro), str(ro)]
    if os.geteuid() != 0 or subprocess.run(mount, capture_output=True).returncode != 0:
        pytest.skip("a read-only folder needs a read-only mount, which needs root (chmod does not stop root)")
    try:
        if subprocess.run(["mount", "-o", "remount,bind,ro", str(ro)], capture_output=True).returncode != 0:
            pytest.skip("this system does not allow a read-only bind mount")
        yield str(ro)
    finally:
        subprocess.run(["umount", str(ro)], capture_output=True)


def stylize_argv(kind: str, model: Path, src: Path, out: str) -> list[str]:
    inputs = [str(src)] if kind == "single" else [str(src), str(src.with_name("second.png"))]
    return ["stylize", *inputs, "--model", str(model), "-o", out, "-q"]


@pytest.mark.parametrize("unwritable", UNWRITABLE, indirect=True)
@pytest.mark.parametrize("kind", ["single", "batch", "export"])
def test_unwritable_destinations_are_refused_before_any_work(
    kind: str, unwritable: str, tiny_onnx: Path, network: Path, tmp_path: Path, capsys
) -> None:
    where = unwritable
    if kind == "export":
        argv = ["export", str(network), "-o", f"{where}/m.onnx"]
    else:
        src = photo(tmp_path)
        shutil.copy(src, tmp_path / "second.png")
        argv = stylize_argv(kind, tiny_onnx, src, f"{where}/out.png" if kind == "single" else f"{where}/styled")
    code, out, err = run_cli(argv, capsys)
    assert code == 2 and out == ""
    one_error_line(err, f"cannot write in {where}")


@pytest.mark.parametrize("unwritable", UNWRITABLE, indirect=True)
def test_compare_into_an_unwritable_folder_is_refused_at_once(unwritable: str, tmp_path: Path, capsys) -> None:
    where = unwritable
    argv = ["compare", "skimage:astronaut", "-s", "skimage:coffee", "-m", str(tmp_path / "missing.onnx")]
    code, out, err = run_cli([*argv, "-o", f"{where}/report"], capsys)  # the missing model is never reached
    assert code == 2 and out == ""
    one_error_line(err, f"cannot write in {where}")


def test_export_to_a_folder_says_so(network: Path, tmp_path: Path, capsys) -> None:
    (tmp_path / "models").mkdir()
    code, _, err = run_cli(["export", str(network), "-o", str(tmp_path / "models")], capsys)
    assert code == 2
    one_error_line(err, "models: is a folder")
    (tmp_path / "m.int8.onnx").mkdir()  # a variant's name taken by a folder: refused before the export too
    code, _, err = run_cli(["export", str(network), "-o", str(tmp_path / "m.onnx"), "--int8"], capsys)
    assert code == 2
    one_error_line(err, "m.int8.onnx: is a folder")
    assert not (tmp_path / "m.onnx").exists() and not leftovers(tmp_path)


def test_stylize_onto_a_full_disk(tiny_onnx: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    src = photo(tmp_path)
    shutil.copy(src, tmp_path / "second.png")
    monkeypatch.setattr(Image.Image, "save", no_space)
    before = all_files(tmp_path)
    code, out, err = run_cli(stylize_argv("single", tiny_onnx, src, str(tmp_path / "o.png")), capsys)
    assert code == 2 and out == ""
    one_error_line(err, "o.png: cannot write (No space left on device)")
    code, out, err = run_cli(stylize_argv("batch", tiny_onnx, src, str(tmp_path / "styled")), capsys)
    assert code == 1 and out == ""
    assert err.count("No space left on device") == 2 and "Traceback" not in err
    assert all_files(tmp_path) == before  # no image, no temporary, and not the folder this run made


def test_stylize_to_stdout_on_a_full_disk(tiny_onnx: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    class Full:
        def write(self, data: bytes) -> int:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(sys, "stdout", type("Out", (), {"buffer": Full()})())
    code, _, err = run_cli(["stylize", str(photo(tmp_path)), "--model", str(tiny_onnx), "-o", "-"], capsys)
    assert code == 2
    one_error_line(err, "<stdout>: cannot write (No space left on device)")


@pytest.mark.parametrize("fails", ["fp32", "fp16", "int8"])
def test_export_onto_a_full_disk_leaves_no_file(fails: str, network: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    """Every file of an export is renamed into place together: a failure in any leaves none of them."""
    import infer.export.precision

    real = Path.write_bytes
    target = {"fp32": "m.onnx", "fp16": "m.fp16.onnx", "int8": "m.int8.onnx"}[fails]

    def write_bytes(self: Path, data: bytes) -> int:
        if self.name.startswith(f".{target}."):
            no_space()
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", write_bytes)
    argv = ["export", str(network), "-o", str(tmp_path / "m.onnx"), "--fp16", "--int8", "--exporter", "torchscript"]
    code, out, err = run_cli(argv, capsys)
    assert code == 2 and out == ""
    one_error_line(err, f"{target}: cannot write (No space left on device)")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net"]
    if fails == "int8":  # the quantizer's own work files: beside the output, named as its temporaries
        seen: list[str] = []

        def quantize(model: object, out: str, *args: object, **kwargs: object) -> None:
            seen.append(Path(out).name)
            no_space()

        monkeypatch.setattr(infer.export.precision, "quant_pre_process", quantize)
        code, _, err = run_cli([*argv[:4], "--int8", "--exporter", "torchscript"], capsys)
        assert code == 2
        one_error_line(err, "m.int8.onnx: cannot write (No space left on device)")
        assert seen and seen[0].startswith(f".m.int8.onnx.{os.getpid()}.")  # the next write of m.int8.onnx cleans it
        assert temporary_name(tmp_path / "m.int8.onnx").name.startswith(f".m.int8.onnx.{os.getpid()}.")
        assert sorted(p.name for p in tmp_path.iterdir()) == ["net"]


def test_compare_onto_a_full_disk_removes_its_new_folder(tiny_onnx: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    argv = ["compare", str(photo(tmp_path, size=24)), "-s", "skimage:astronaut", "-m", str(tiny_onnx)]
    monkeypatch.setattr(Image.Image, "save", no_space)
    argv += ["-o", str(tmp_path / "report"), "--steps", "1", "--size", "16", "--repeats", "1", "-q"]
    code, out, err = run_cli(argv, capsys)
    assert code == 2 and out == ""
    one_error_line(err, "cannot write (No space left on device)", str(tmp_path / "report"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["astronaut.png"]


# ---------------------------------------------------------------------------------------------- issue 9


@pytest.mark.parametrize("case", ["missing", "empty", "only_other_files", "corrupt_among_images"])
def test_bad_calibration_writes_no_model(case: str, network: Path, tmp_path: Path, capsys) -> None:
    calib = tmp_path / "calib"
    if case != "missing":
        calib.mkdir()
    if case == "only_other_files":
        (calib / "notes.txt").write_text("x")
    if case == "corrupt_among_images":
        photo(calib)
        (calib / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 cut off")
    needle = {
        "missing": "calib: no such file",
        "empty": "no images to calibrate with",
        "only_other_files": "no images to calibrate with",
        "corrupt_among_images": "broken.jpg",
    }[case]
    before = all_files(tmp_path)
    for flag in ("--int8", "--fp16"):
        code, out, err = run_cli(
            ["export", str(network), "-o", str(tmp_path / "m.onnx"), flag, "--calibration", str(calib)], capsys
        )
        assert code == 2 and out == ""
        one_error_line(err, needle)
        assert all_files(tmp_path) == before  # no m.onnx, no variant, no temporary


# ---------------------------------------------------------------------------------------------- issue 12


def _feed(path: str | int, data: bytes) -> threading.Thread:
    """Write ``data`` into a pipe (a FIFO's path, or a pipe's write fd) from a thread, then close it."""

    def write() -> None:
        with open(path, "wb") as f:
            f.write(data)

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("kind", ["fifo", "dev_fd"])
def test_a_readable_pipe_is_a_single_input(kind: str, tiny_onnx: Path, tmp_path: Path, capsys) -> None:
    """`nst stylize <(cat photo.jpg) ...`: the shell passes /dev/fd/N, a pipe, not a regular file."""
    data = photo(tmp_path).read_bytes()
    for out in (tmp_path / "o.png", tmp_path / "styled"):
        if out.suffix == "":
            out.mkdir()
        if kind == "fifo":
            src = str(tmp_path / f"fifo-{out.name}")
            os.mkfifo(src)
            thread = _feed(src, data)
        else:
            read_fd, write_fd = os.pipe()
            src = f"/dev/fd/{read_fd}"
            thread = _feed(write_fd, data)  # closed by the thread: the reader sees the end
        code, _, err = run_cli(["stylize", src, "--model", str(tiny_onnx), "-o", str(out), "-q"], capsys)
        thread.join(5)
        if kind == "dev_fd":
            os.close(read_fd)
        assert code == 0, err
        written = out if out.suffix else out / f"{Path(src).name}.png"
        assert Image.open(written).size == Image.open(photo(tmp_path)).size


def test_a_missing_single_input_is_still_no_such_file(tiny_onnx: Path, tmp_path: Path, capsys) -> None:
    code, _, err = run_cli(
        ["stylize", str(tmp_path / "nope.jpg"), "-m", str(tiny_onnx), "-o", str(tmp_path / "o.png")], capsys
    )
    assert code == 2
    one_error_line(err, "nope.jpg: no such file")


# ---------------------------------------------------------------------------------------------- issue 13


def test_max_pixels_refuses_in_one_line_and_lets_through(tiny_onnx: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setitem(image_io._limits, "max_pixels", image_io.DEFAULT_MAX_PIXELS)  # restored after the test
    src = photo(tmp_path, size=64)  # 64x64 = 4096 pixels
    argv = ["stylize", str(src), "-m", str(tiny_onnx), "-o", str(tmp_path / "o.png"), "-q"]
    code, _, err = run_cli([*argv, "--max-pixels", "1000"], capsys)
    assert code == 2 and not (tmp_path / "o.png").exists()
    one_error_line(err, "astronaut.png", "--max-pixels 4096")
    assert run_cli([*argv, "--max-pixels", "4096"], capsys)[0] == 0
    compare = ["compare", str(src), "-s", "skimage:coffee", "-m", str(tiny_onnx), "-o", str(tmp_path / "r")]
    code, _, err = run_cli([*compare, "--max-pixels", "1000", "-q"], capsys)
    assert code == 2 and not (tmp_path / "r").exists()
    one_error_line(err, "astronaut.png", "--max-pixels 4096")


# ---------------------------------------------------------------------------------------------- issue 10


def test_in_memory_export_writes_no_file(tmp_path: Path, monkeypatch) -> None:
    """A run folder as --model is exported without a temporary folder a kill could leave behind."""
    import tempfile

    import infer.export.exporter
    from infer.stylize.stylizer import Stylizer

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    monkeypatch.setattr(infer.export.exporter, "atomic_path", no_space)
    run = tmp_path / "run"
    run.mkdir()
    save_network(tiny_net(), run / "network.safetensors")
    assert Stylizer(run).exported
    # torch's own compile cache (torchinductor_USER) lands here when no earlier test in the process set it up
    assert [p for p in scratch.iterdir() if not p.name.startswith("torchinductor_")] == []


# ---------------------------------------------------------------------------------------------- kills and races


def _stylize_process(model: Path, src: Path, out: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "infer", "stylize", str(src), "--model", str(model), "-o", str(out), "-q"]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _all_images_whole(folder: Path) -> int:
    count = 0
    for p in folder.rglob("*.png"):
        if not p.name.startswith("."):
            with Image.open(p) as im:
                im.load()
            count += 1
    return count


def test_killed_stylize_leaves_only_whole_files_and_two_writers_corrupt_nothing(
    tiny_onnx: Path, tmp_path: Path
) -> None:
    src = tmp_path / "in"
    src.mkdir()
    for i in range(12):
        photo(src, size=160).rename(src / f"p{i:02d}.png")
    out = tmp_path / "styled"
    proc = _stylize_process(tiny_onnx, src, out)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(out.glob("*.png")) and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    _all_images_whole(out)  # every file under a final name opens whole
    a, b = _stylize_process(tiny_onnx, src, out), _stylize_process(tiny_onnx, src, out)
    assert a.wait(120) == 0 and b.wait(120) == 0, (a.stderr.read(), b.stderr.read())
    assert _all_images_whole(out) == 12
    assert not leftovers(out)  # the killed run's temporaries went with the next writes of their targets
