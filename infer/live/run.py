"""`nst live`: a webcam (or any video file or stream) stylized frame by frame, shown in a window, optionally recorded.

OpenCV reads the source (``pip install 'nst-toolkit[live]'``: opencv-python-headless and PyAV) and shows
the frames; the network is the `Stylizer` of `nst stylize`, and a recording goes through
`infer.stylize.video.open_writer` (PyAV, temporary file renamed at the end). A window needs an OpenCV built with
a GUI (``opencv-python``, not the headless wheel) and a display; without one, the run says so and needs
``--output``. The loop stops on q or Esc in the window, at the end of the source, after ``max_frames``,
or on Ctrl-C (the recording is still finished and kept). With a network of several styles, n or the space bar
switches to the next style.

The loop never queues frames: each is read when the previous one is shown, and a camera's own buffer is
set to one frame, so what is shown lags the camera by one frame's work, not by a growing queue.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from infer.stylize.stylizer import FrameOptions, frame_temporal
from nst_core.errors import NSTError
from nst_core.log import LOG

if TYPE_CHECKING:
    from infer.stylize.stylizer import Stylizer

#: For a window, the GUI OpenCV wheel replaces the headless one (the two conflict, opencv/opencv-python#467).
WINDOW_SWAP = "pip uninstall -y opencv-python-headless && pip install opencv-python"
INSTALL_HINT = f"pip install 'nst-toolkit[live]' (opencv-python-headless and PyAV; for a window: {WINDOW_SWAP})"
WINDOW = "nst live (q or Esc to stop)"
STOP_KEYS = (ord("q"), ord("Q"), 27)  # 27: Esc
NEXT_STYLE_KEYS = (ord("n"), ord("N"), ord(" "))
CAMERA_FPS = 30.0  # a camera that does not say its frame rate


def _cv2() -> Any:
    """OpenCV, quiet (`infer.temporal.flow.load_cv2`), or one line naming the [live] extra."""
    from infer.temporal.flow import load_cv2

    return load_cv2(INSTALL_HINT)


def display_problem() -> str | None:
    """Why no window can be shown here (None: one can): a headless OpenCV, or no display to show it on."""
    cv2 = _cv2()
    build = cv2.getBuildInformation()
    gui = next((line.split(":", 1)[1].strip() for line in build.splitlines() if line.strip().startswith("GUI:")), "")
    if gui.upper() in ("", "NONE"):
        return f"this OpenCV has no windows (opencv-python-headless); to see one, swap the wheel: {WINDOW_SWAP}"
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return "no display (DISPLAY is not set)"
    return None


@dataclass
class Capture:
    """An opened source: OpenCV's capture, its frame rate, and whether it is a camera (timestamps by the clock)."""

    handle: Any
    name: str
    fps: float
    camera: bool
    longer_side: int = 0  # of the source's frames (0: not known before the first frame)

    def frames(self) -> Iterator[np.ndarray]:
        """(H, W, 3) uint8 RGB frames until the source ends."""
        while True:
            ok, bgr = self.handle.read()
            if not ok or bgr is None:
                return
            yield np.ascontiguousarray(bgr[..., ::-1])

    def close(self) -> None:
        self.handle.release()


def open_capture(source: str) -> Capture:
    """A camera index (``0``), a video file or a stream URL, opened with OpenCV; one NSTError line if it does not."""
    cv2 = _cv2()
    camera = source.isdigit()
    if not camera and "://" not in source and not Path(source).exists():
        raise NSTError(f"{source}: no such file (give a camera index such as 0, a video file or a stream URL)")
    handle = cv2.VideoCapture(int(source) if camera else source)
    if not handle.isOpened():
        what = f"camera {source}" if camera else source
        raise NSTError(f"{what}: cannot open (not a camera, video file or stream OpenCV can read)")
    if camera:
        handle.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # the newest frame, not a queue of old ones
    fps = handle.get(cv2.CAP_PROP_FPS)
    fps = fps if 0 < fps < 1000 else CAMERA_FPS
    side = int(max(handle.get(cv2.CAP_PROP_FRAME_WIDTH), handle.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    return Capture(handle, f"camera {source}" if camera else source, fps, camera, side)


@dataclass
class LiveResult:
    """What a live run did, for the stderr line and --json."""

    source: str
    frames: int = 0
    seconds: float = 0.0
    size: tuple[int, int] = (0, 0)
    output: str | None = None
    stopped: str = "end"  # end (of the source), key (q/Esc), max-frames, window (closed), interrupt (Ctrl-C)
    frame_ms: list[float] = field(default_factory=list)
    temporal: dict[str, Any] = field(default_factory=dict)  # `FrameTemporal.summary`: filter cost, warping error
    styles_shown: list[str] = field(default_factory=list)  # a network of several styles: each style shown, in turn

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> dict[str, Any]:
        median = statistics.median(self.frame_ms) if self.frame_ms else None
        return {
            "source": self.source,
            "output": self.output,
            "frames": self.frames,
            "seconds": round(self.seconds, 3),
            "frames_per_second": round(self.frames_per_second, 2),
            "median_ms_per_frame": None if median is None else round(median, 2),
            "size": list(self.size),
            "stopped": self.stopped,
            **({"styles_shown": self.styles_shown} if self.styles_shown else {}),
            **self.temporal,
        }


class Window:
    """The preview window: shows RGB frames, and says when q/Esc was pressed or the window was closed."""

    def __init__(self) -> None:
        self.cv2 = _cv2()
        self.cv2.namedWindow(WINDOW, self.cv2.WINDOW_NORMAL)  # the user can make it bigger than the frames

    def show(self, frame: np.ndarray) -> str | None:
        """Show ``frame``; "key" or "window" when the user asked to stop, "next" for the next style, else None."""
        self.cv2.imshow(WINDOW, np.ascontiguousarray(frame[..., ::-1]))
        key = self.cv2.waitKey(1) & 0xFF
        if key in STOP_KEYS:
            return "key"
        if key in NEXT_STYLE_KEYS:
            return "next"
        if self.cv2.getWindowProperty(WINDOW, self.cv2.WND_PROP_VISIBLE) < 1:
            return "window"
        return None

    def close(self) -> None:
        self.cv2.destroyAllWindows()


def next_style(stylizer: Stylizer) -> str:
    """The style after the one shown (after a blend: the first style)."""
    names = stylizer.styles
    now = stylizer.style_name
    return names[(names.index(now) + 1) % len(names)] if now in names else names[0]


def run_live(
    stylizer: Stylizer,
    capture: Capture,
    options: FrameOptions | None = None,
    *,
    output: Path | None = None,
    window: Window | None = None,
    max_frames: int | None = None,
    quality: int = 95,
) -> LiveResult:
    """Stylize ``capture`` frame by frame: shown in ``window``, written to ``output``. ``options.size``: the longer
    side at most (a smaller source keeps its own); the rest as in `Stylizer.stylize_frames`."""
    from contextlib import nullcontext

    from infer.stylize.video import open_writer

    result = LiveResult(capture.name, output=str(output) if output else None)
    options = options or FrameOptions()
    if options.size and capture.longer_side:
        options = replace(options, size=min(options.size, capture.longer_side))
    temporal = frame_temporal(options)
    styled = stylizer.stylize_frames(capture.frames(), options, temporal)
    recording = open_writer(output, capture.fps, quality) if output else nullcontext()
    t0 = last = time.perf_counter()
    if stylizer.styles:
        result.styles_shown.append(stylizer.style_name or "")
    with recording as writer:
        try:
            for frame in styled:
                if writer is not None:  # a camera's frames at their time; a file's at its own frame rate
                    at = round((time.perf_counter() - t0) * capture.fps) if capture.camera else None
                    writer.write(frame, at)
                result.frames += 1
                result.size = (frame.shape[1], frame.shape[0])
                stop = window.show(frame) if window else None
                if stop == "next":  # the next frame in the next style, nothing of this one carried over
                    switch_style(stylizer, temporal, result)
                    stop = None
                now = time.perf_counter()
                result.frame_ms.append((now - last) * 1000)
                last = now
                if stop or result.frames == max_frames:
                    result.stopped = stop or "max-frames"
                    break
        except KeyboardInterrupt:  # Ctrl-C is how a run without a window ends: the recording is kept
            if result.frames == 0:
                raise  # before the first frame: no empty recording, and the command ends as interrupted
            result.stopped = "interrupt"
        result.seconds = time.perf_counter() - t0
        result.temporal = temporal.summary() if temporal is not None else {}
        if writer is not None and result.frames == 0:
            raise NSTError(f"{capture.name}: no frames came from the source")
    return result


def switch_style(stylizer: Stylizer, temporal: Any, result: LiveResult) -> None:
    """The key for the next style: switch (a network of one style has no other), restart the temporal filter."""
    if not stylizer.styles:
        return
    stylizer.set_style(next_style(stylizer))
    if temporal is not None:
        temporal.restart()
    result.styles_shown.append(stylizer.style_name or "")
    LOG.info(f"nst live: style {stylizer.style_name}")
