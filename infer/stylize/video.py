"""Video files through a `Stylizer`, sound kept (optional extra: ``pip install 'nst-toolkit[video]'``, PyAV).

PyAV (FFmpeg's libraries, bundled in its wheel) reads and writes: the picture is decoded frame by frame,
turned upright (phone videos carry a rotation), stylized and encoded (libx264 yuv420p unless the
extension asks for another codec, `CODECS`). The sound is copied packet for packet when the output
container accepts its codec (AAC into .mp4, ...), else re-encoded to the container's own default (Opus
for .webm, MP2 for .mpg ...). Timestamps come from the input, so picture and sound stay in step.

The output is written to a temporary file beside the target and renamed at the end, so an interrupted
run leaves no half-written video; a file that does not decode, or a failed write (a full disk ...), is
one line naming the file. `VideoWriter` is shared with `nst live` (`infer.live.run`).

Frames go through the network one at a time: on a 2-core CPU, batches of 2 or 4 frames were no faster
per frame (onnxruntime already uses every core for one frame; benchmarks/README.md).
"""

from __future__ import annotations

import contextlib
import io
import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nst_core.errors import NSTError, first_line
from nst_core.files import atomic_path

if TYPE_CHECKING:
    from infer.stylize.stylizer import FrameOptions, Stylizer

VIDEO_EXTS = frozenset({".mp4", ".m4v", ".mov", ".mkv", ".avi", ".webm", ".mpg", ".mpeg", ".wmv", ".flv"})
#: Video encoder per output extension (default libx264, yuv420p: plays everywhere).
CODECS = {
    ".webm": "libvpx-vp9",
    ".avi": "mpeg4",
    ".mpg": "mpeg2video",
    ".mpeg": "mpeg2video",
    ".wmv": "wmv2",
    ".flv": "flv",
}
INSTALL_HINT = "pip install 'nst-toolkit[video]' (PyAV)"
DEFAULT_FPS = 25
FF_QP2LAMBDA = 118  # FFmpeg's quantizer -> lambda factor, for the encoders without a CRF


def is_video(path: str | os.PathLike) -> bool:
    """By extension (`VIDEO_EXTS`); checked before Pillow's registry, which also claims .mpg/.mpeg."""
    return Path(path).suffix.lower() in VIDEO_EXTS


def _av() -> Any:
    try:
        import av
    except ImportError:
        raise NSTError(f"video files need the optional video dependency: {INSTALL_HINT}") from None
    return av


def check_video_support() -> None:
    """NSTError with the install line when the video extra is missing."""
    _av()


@dataclass
class VideoResult:
    path: Path
    frames: int
    fps: float  # the video's frame rate (kept in the output)
    size: tuple[int, int]  # (width, height) of the output
    seconds: float  # decoding, stylizing and encoding, whole video
    audio: str | None = None  # "aac (copied)", "opus (re-encoded from aac)", None: the input has no sound
    temporal: dict[str, Any] = field(default_factory=dict)  # `FrameTemporal.summary`: filter cost, warping error

    @property
    def ms_per_frame(self) -> float:
        return 1000.0 * self.seconds / max(1, self.frames)

    @property
    def frames_per_second(self) -> float:
        """Frames stylized per second of wall time (compare with `fps` for real time)."""
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def _even(frame: np.ndarray) -> np.ndarray:
    """yuv420p needs even sides: repeat the last row / column when a side is odd."""
    h, w = frame.shape[:2]
    if h % 2 or w % 2:
        frame = np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    return frame


def _upright(frame: Any) -> np.ndarray:
    """A decoded frame as (H, W, 3) uint8 RGB, turned as its display matrix says (FFmpeg's autorotate)."""
    arr = frame.to_ndarray(format="rgb24")
    turns = round((getattr(frame, "rotation", 0) or 0) / 90) % 4  # counterclockwise quarter turns
    return np.ascontiguousarray(np.rot90(arr, turns)) if turns else arr


# ------------------------------------------------------------------------------------------ reading


class VideoSource:
    """An input video: its frames (upright RGB arrays) in order, and its audio packets handed to a sink on the way.

    ``times`` holds the presentation time (seconds from the start) of every frame yielded and not yet
    claimed, so a consumer that reads ahead (a stylizer) still pairs each output with its time.
    """

    def __init__(self, src: str | os.PathLike) -> None:
        av = _av()
        self.src = Path(src)
        if not self.src.is_file():
            raise NSTError(f"{self.src}: no such file")
        try:
            self.container = av.open(str(self.src))
        except (av.FFmpegError, OSError) as e:
            raise NSTError(f"{self.src}: cannot read video ({first_line(e)})") from None
        if not self.container.streams.video:
            self.container.close()
            raise NSTError(f"{self.src}: no video stream in this file")
        self.video = self.container.streams.video[0]
        self.video.thread_type = "AUTO"  # frame and slice threads in the decoder
        self.audio = self.container.streams.audio[0] if self.container.streams.audio else None
        rate = self.video.average_rate or self.video.guessed_rate or DEFAULT_FPS
        self.rate = Fraction(rate).limit_denominator(65535)  # MPEG-4 allows no larger time-base denominator
        self.total: int | None = self.video.frames or None
        starts = [s.start_time * s.time_base for s in (self.video, self.audio) if s is not None and s.start_time]
        self.start = float(min(starts)) if starts else 0.0  # output timestamps begin at 0
        self.times: deque[float] = deque()

    @property
    def fps(self) -> float:
        return float(self.rate)

    def frames(self, on_audio: Callable[[Any], None] | None = None) -> Iterator[np.ndarray]:
        """Every video frame; audio packets (timestamps moved to start at 0) go to ``on_audio`` as they come."""
        av = _av()
        streams = [self.video] + ([self.audio] if self.audio is not None and on_audio else [])
        index = 0
        try:
            for packet in self.container.demux(streams):
                if packet.stream is self.audio:
                    assert on_audio is not None
                    on_audio(self._shifted(packet))
                    continue
                for frame in packet.decode():
                    t = frame.time if frame.time is not None else index / self.fps
                    self.times.append(float(t) - self.start)
                    index += 1
                    yield _upright(frame)
        except (av.FFmpegError, OSError) as e:
            raise NSTError(f"{self.src}: cannot decode video ({first_line(e)})") from None

    def _shifted(self, packet: Any) -> Any:
        """``packet`` with its timestamps moved by the input's start time (their time base's units)."""
        if self.start and packet.time_base:
            offset = round(self.start / packet.time_base)
            if packet.pts is not None:
                packet.pts -= offset
            if packet.dts is not None:
                packet.dts -= offset
        return packet

    def close(self) -> None:
        self.container.close()


# ------------------------------------------------------------------------------------------ writing


def _set_quality(cc: Any, codec: str, quality: int) -> None:
    """--quality 1..100 on the encoder's own scale: x264/VP9 constant quality (95 -> CRF 3), else a quantizer."""
    loss = (100 - quality) / 100
    if codec == "libx264":
        cc.options = {"crf": str(round(51 * loss))}
    elif codec == "libvpx-vp9":
        cc.bit_rate = 0
        cc.options = {"crf": str(round(63 * loss)), "row-mt": "1"}
    else:
        cc.qscale = True
        cc.global_quality = (1 + round(30 * loss)) * FF_QP2LAMBDA


def _copy_accepted(container: Any, audio: Any) -> bool:
    """Whether ``container``'s format takes ``audio``'s packets as they are: a trial header written in memory."""
    av = _av()
    try:
        with av.open(io.BytesIO(), "w", format=container.format.name) as trial:
            trial.add_stream_from_template(audio)
            trial.start_encoding()
    except (av.FFmpegError, ValueError, OSError):
        return False
    return True


def _audio_rate(codec: str, rate: int) -> int:
    """``rate`` when the encoder takes it, else its nearest rate (Opus: 8-48 kHz, MP2: no 11 kHz ...)."""
    rates = _av().Codec(codec, "w").audio_rates
    return rate if not rates or rate in rates else min(rates, key=lambda r: abs(r - rate))


class VideoWriter:
    """A video written to ``tmp`` (its container from ``dest``'s extension) at ``fps``, with ``audio``'s sound.

    The picture's stream is made by the first frame (its size); audio packets that come before it wait.
    `write` takes a frame and its time in frames (1/fps units; None: the next). Errors name ``dest``.
    """

    def __init__(self, tmp: Path, dest: Path, fps: float | Fraction, quality: int = 95, audio: Any = None) -> None:
        self.av = _av()
        self.dest = dest
        self.rate = Fraction(fps).limit_denominator(65535)
        self.quality = quality
        self.source_audio = audio
        self.container = self._guard(lambda: self.av.open(str(tmp), "w"))
        self.video: Any = None
        self.audio: Any = None
        self.audio_note: str | None = None
        self.copy_audio = False
        self.waiting: list[Any] = []
        self.frames = 0
        self.last_pts = -1
        self.size = (0, 0)

    def _guard(self, step: Callable[[], Any]) -> Any:
        """Run one FFmpeg step; its failure (a full disk, an encoder that refuses the size ...) names ``dest``."""
        try:
            return step()
        except (self.av.FFmpegError, OSError) as e:
            reason = getattr(e, "strerror", None) or first_line(e)
            raise NSTError(f"{self.dest}: cannot write ({reason})") from None

    def _start(self, width: int, height: int) -> None:
        """Make the streams (picture, then sound) once the picture's size is known, then mux the waiting sound."""
        codec = CODECS.get(self.dest.suffix.lower(), "libx264")
        self.video = self._guard(lambda: self.container.add_stream(codec, rate=self.rate))
        self.video.width, self.video.height, self.video.pix_fmt = width, height, "yuv420p"
        _set_quality(self.video.codec_context, codec, self.quality)
        if self.source_audio is not None:
            self._add_audio_stream(self.source_audio)
        for packet in self.waiting:
            self.add_audio(packet)
        self.waiting.clear()

    def _add_audio_stream(self, source: Any) -> None:
        """Copy ``source``'s codec when the container takes it, else encode to the container's default codec."""
        name = source.codec_context.name
        self.copy_audio = _copy_accepted(self.container, source)
        if self.copy_audio:
            self.audio = self._guard(lambda: self.container.add_stream_from_template(source))
            self.audio_note = f"{name} (copied)"
            return
        codec = self.container.default_audio_codec
        layout = source.layout.name if source.channels <= 2 else "stereo"
        rate = _audio_rate(codec, source.rate)
        self.audio = self._guard(lambda: self.container.add_stream(codec, rate=rate, layout=layout))
        self.audio_note = f"{self.audio.codec_context.name} (re-encoded from {name})"

    def add_audio(self, packet: Any) -> None:
        """One packet of the input's sound: muxed as it is, or decoded and encoded again."""
        if self.video is None:
            self.waiting.append(packet)
            return
        if self.copy_audio:
            if packet.dts is not None:  # the demuxer's empty flush packet carries nothing to copy
                packet.stream = self.audio
                self._guard(lambda: self.container.mux(packet))
            return
        for frame in self._guard(packet.decode):
            self._mux(self.audio, frame)

    def _mux(self, stream: Any, frame: Any) -> None:
        self._guard(lambda: self.container.mux(stream.encode(frame)))

    def write(self, frame: np.ndarray, pts: int | None = None) -> None:
        """One (H, W, 3) uint8 RGB frame at ``pts`` frames from the start (None, or not after the last: the next)."""
        frame = _even(frame)
        if self.video is None:
            self._start(frame.shape[1], frame.shape[0])
        pts = self.last_pts + 1 if pts is None or pts <= self.last_pts else pts
        out = self.av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        out.pts = self.last_pts = pts
        self._mux(self.video, out)
        self.frames += 1
        self.size = (frame.shape[1], frame.shape[0])

    def close(self) -> None:
        """Flush the encoders and write the container's index; the file is complete after this."""
        if self.video is not None:
            self._mux(self.video, None)
            if self.audio is not None and not self.copy_audio:
                self._mux(self.audio, None)
        self._guard(self.container.close)

    def abandon(self) -> None:
        """Close after a failure, quietly (the temporary file is removed by `atomic_path`)."""
        with contextlib.suppress(Exception):
            self.container.close()


@contextlib.contextmanager
def open_writer(dest: Path, fps: float | Fraction, quality: int = 95, audio: Any = None) -> Iterator[VideoWriter]:
    """A `VideoWriter` onto a temporary file renamed to ``dest`` when the block ends well; nothing otherwise."""
    with atomic_path(dest) as tmp:
        writer = VideoWriter(tmp, dest, fps, quality, audio)
        try:
            yield writer
            writer.close()
        except BaseException:
            writer.abandon()
            raise


def stylize_video(
    stylizer: Stylizer,
    src: str | os.PathLike,
    dest: str | os.PathLike,
    options: FrameOptions | None = None,
    *,
    quality: int = 95,
    progress: bool = True,
) -> VideoResult:
    """Stylize every frame of ``src`` into ``dest``, frame rate and sound kept (``options``: see
    `Stylizer.stylize_frames`)."""
    from tqdm.auto import tqdm

    from infer.stylize.stylizer import FrameOptions, frame_temporal

    dest = Path(dest)
    t0 = time.perf_counter()
    source = VideoSource(src)
    temporal = frame_temporal(options or FrameOptions())
    show = {"disable": not progress, "dynamic_ncols": True, "leave": False}
    bar = tqdm(total=source.total, desc=source.src.name, unit="frame", **show)
    try:
        with open_writer(dest, source.rate, quality, source.audio) as writer:
            styled = stylizer.stylize_frames(source.frames(writer.add_audio), options, temporal)
            for out in styled:
                writer.write(out, round(source.times.popleft() * source.fps))
                bar.update(1)
            if writer.frames == 0:
                raise NSTError(f"{source.src}: the video has no frames")
    finally:
        bar.close()
        source.close()
    seconds = time.perf_counter() - t0
    summary = temporal.summary() if temporal is not None else {}
    return VideoResult(dest, writer.frames, source.fps, writer.size, seconds, writer.audio_note, summary)
