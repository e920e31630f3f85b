"""Video files, frame by frame, through a `Stylizer` (optional extra: ``pip install 'nst-toolkit[video]'``).

Reading and writing go through imageio's ffmpeg plugin (imageio + imageio-ffmpeg, which bundles an
ffmpeg binary). Audio is not copied. The output is written to a temporary file beside the target and
renamed at the end, so an interrupted run leaves no half-written video; ffmpeg's own messages are
caught, and a failed write (a full disk ...) is one line naming the output.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from nst_core.errors import NSTError
from nst_core.files import atomic_path

if TYPE_CHECKING:
    from infer.stylize import Stylizer

VIDEO_EXTS = frozenset({".mp4", ".m4v", ".mov", ".mkv", ".avi", ".webm", ".mpg", ".mpeg", ".wmv", ".flv"})
#: ffmpeg encoder per output extension (default libx264, yuv420p: plays everywhere).
CODECS = {
    ".webm": "libvpx-vp9",
    ".avi": "mpeg4",
    ".mpg": "mpeg2video",
    ".mpeg": "mpeg2video",
    ".wmv": "wmv2",
    ".flv": "flv",
}
INSTALL_HINT = "pip install 'nst-toolkit[video]' (imageio and imageio-ffmpeg)"


def is_video(path: str | os.PathLike) -> bool:
    """By extension (`VIDEO_EXTS`); checked before Pillow's registry, which also claims .mpg/.mpeg."""
    return Path(path).suffix.lower() in VIDEO_EXTS


def _imageio() -> Any:
    try:
        import imageio.v2 as iio
        import imageio_ffmpeg  # noqa: F401 - the ffmpeg binary imageio's plugin runs
    except ImportError:
        raise NSTError(f"video files need the optional video dependencies: {INSTALL_HINT}") from None
    return iio


def check_video_support() -> None:
    """NSTError with the install line when the video extra is missing."""
    _imageio()


@dataclass
class VideoResult:
    path: Path
    frames: int
    fps: float
    size: tuple[int, int]  # (width, height) of the output
    seconds: float  # stylizing + encoding, whole video

    @property
    def ms_per_frame(self) -> float:
        return 1000.0 * self.seconds / max(1, self.frames)


def _frames(reader: Any, name: str) -> Iterator[np.ndarray]:
    it = iter(reader)
    while True:
        try:
            frame = next(it)
        except StopIteration:
            return
        except (OSError, RuntimeError, ValueError) as e:
            raise NSTError(f"{name}: cannot decode video frame ({str(e).strip().splitlines()[0][:200]})") from None
        yield np.asarray(frame)


def _even(frame: np.ndarray) -> np.ndarray:
    """yuv420p needs even sides: repeat the last row / column when a side is odd."""
    h, w = frame.shape[:2]
    if h % 2 or w % 2:
        frame = np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    return frame


def _open_reader(iio: Any, src: Path) -> tuple[Any, float, int | None]:
    """(reader, frames per second, frame count if known), or one NSTError line."""
    if not src.is_file():
        raise NSTError(f"{src}: no such file")
    try:
        reader = iio.get_reader(str(src), format="FFMPEG")
        meta = reader.get_meta_data()
    except Exception as e:  # imageio/ffmpeg raise OSError, RuntimeError, IndexError ... on unreadable files
        raise NSTError(
            f"{src}: cannot read video ({type(e).__name__}: {str(e).strip().splitlines()[0][:200]})"
        ) from None
    total = meta.get("nframes")
    known = isinstance(total, int | float) and total not in (float("inf"),) and total > 0
    return reader, float(meta.get("fps") or 25.0), int(total) if known else None


def _open_writer(iio: Any, tmp: Path, dest: Path, fps: float, quality: int) -> Any:
    """An ffmpeg writer for ``dest``'s container (yuv420p, the codec of `CODECS`), writing to ``tmp``."""
    return iio.get_writer(
        str(tmp),
        format="FFMPEG",
        fps=fps,
        codec=CODECS.get(dest.suffix.lower(), "libx264"),
        quality=max(1, min(10, round(quality / 10))),
        macro_block_size=1,
        pixelformat="yuv420p",
        ffmpeg_log_level="error",
    )


@contextlib.contextmanager
def _child_stderr(log: IO[bytes] | None) -> Iterator[None]:
    """Point fd 2 at ``log`` while ffmpeg starts: it inherits the fd, so its messages are ours to summarise."""
    if log is None:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    os.dup2(log.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _write_error(dest: Path, log: IO[bytes] | None, error: BaseException) -> NSTError:
    """One line for a failed encode: the OS reason ffmpeg logged (a full disk ...), else its last message."""
    text = ""
    if log is not None:
        log.seek(0)
        text = log.read().decode(errors="replace")
    reasons = [os.strerror(code) for code in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES)]
    lines = [line.strip() for line in text.splitlines() if line.strip()] or str(error).strip().splitlines() or [""]
    reason = next((r for r in reasons if r in text), lines[-1][:200] or type(error).__name__)
    return NSTError(f"{dest}: cannot write ({reason})")


def _encode(writer: Any, styled: Iterator[np.ndarray], dest: Path, bar: Any) -> tuple[int, tuple[int, int]]:
    """Feed every stylized frame to ``writer``: (frames, (width, height)); a failed write: one line naming ``dest``."""
    frames, size = 0, (0, 0)
    with contextlib.ExitStack() as stack:
        try:
            log: IO[bytes] | None = stack.enter_context(tempfile.TemporaryFile())  # anonymous: nothing to clean
        except OSError:
            log = None
        try:
            for out in styled:
                out = _even(out)
                try:
                    with _child_stderr(log if frames == 0 else None):  # ffmpeg starts with the first frame
                        writer.append_data(out)
                except Exception as e:
                    raise _write_error(dest, log, e) from None
                frames += 1
                size = (out.shape[1], out.shape[0])
                bar.update(1)
            try:
                writer.close()
            except Exception as e:
                raise _write_error(dest, log, e) from None
        except BaseException:
            with contextlib.suppress(Exception):
                writer.close()
            raise
    return frames, size


def stylize_video(
    stylizer: Stylizer,
    src: str | os.PathLike,
    dest: str | os.PathLike,
    *,
    size: int | None = None,
    preserve_color: bool = False,
    strength: float = 1.0,
    smooth: float = 0.0,
    tile: int | None = None,
    quality: int = 95,
    progress: bool = True,
) -> VideoResult:
    """Stylize every frame of ``src`` into ``dest`` (same frame rate; ``smooth``: see `Stylizer.stylize_frames`)."""
    from tqdm.auto import tqdm

    iio = _imageio()
    src, dest = Path(src), Path(dest)
    t0 = time.perf_counter()
    reader, fps, total = _open_reader(iio, src)
    bar = tqdm(total=total, desc=src.name, unit="frame", disable=not progress, dynamic_ncols=True, leave=False)
    styled = stylizer.stylize_frames(
        _frames(reader, str(src)), size=size, preserve_color=preserve_color, strength=strength, smooth=smooth, tile=tile
    )
    try:
        with atomic_path(dest) as tmp:
            frames, out_size = _encode(_open_writer(iio, tmp, dest, fps, quality), styled, dest, bar)
            if frames == 0:
                raise NSTError(f"{src}: the video has no frames")
    finally:
        bar.close()
        reader.close()
    return VideoResult(dest, frames, fps, out_size, time.perf_counter() - t0)
