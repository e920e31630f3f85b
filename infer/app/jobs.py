"""What the app's buttons do: stylize, compare and optimize, with every failure a message in the page.

The handlers receive Gradio's raw payloads (events are wired with ``preprocess=False``), so an upload is
opened here by `nst_core.image_io.open_image`, with its one-line errors and the ``--max-pixels`` limit,
instead of by Gradio (whose errors would reach the page as a bare "Error"). Each handler raises
``gr.Error`` with that line; the server and the other sessions carry on.

Compare and Optimize run in a worker thread (`in_thread`) behind a generator: Gradio's Stop (or a closed
tab) closes the generator, which makes the job's ``should_stop`` true, and the job ends at its next
optimizer step, so the one-at-a-time slot is not held by a run nobody is waiting for.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import queue
import shutil
import tempfile
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gradio as gr
from PIL import Image

from infer.app.catalogue import ModelCatalogue
from nst_core.errors import NSTError
from nst_core.image_io import open_image, save_image
from nst_core.log import LOG

if TYPE_CHECKING:
    from infer.stylize.stylizer import Stylizer

#: Longest output side the app accepts: a bound on one job's memory and time on a shared machine.
MAX_SIDE = 2048
#: Longer side of live webcam frames: small enough to keep up on a CPU.
LIVE_SIDE = 384
#: Most optimizer steps one job may ask for (the page's sliders stop lower; API callers are held to it too).
MAX_STEPS = 2000
#: Seconds between two intermediate images of an optimization shown in the page; also the longest a
#: job's generator goes without yielding (Gradio can only close it, i.e. stop the job, at a yield).
PREVIEW_EVERY = 0.5
#: Seconds a stylized picture stays in the app's own folder: Gradio copies it into its cache as the request ends.
KEEP_RESULTS = 600
#: A job run by `in_thread`: called with (should_stop, report); its return value is the result.
Work = Callable[[Callable[[], bool], Callable[[Any], None]], Any]


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Any failure of a job as one ``gr.Error`` line in the page (NSTError text as is, others with their type)."""
    try:
        yield
    except gr.Error:
        raise
    except NSTError as e:
        raise gr.Error(str(e), print_exception=False) from None
    except Exception as e:  # a bug or an odd file must not take the page down: say what happened
        raise gr.Error(f"{type(e).__name__}: {str(e)[:300]}", print_exception=False) from None


def upload_path(payload: Any, what: str) -> str:
    """The server-side file of an uploaded image payload (a FileData dict, which Gradio has checked is an
    upload); anything else is refused, so an API caller cannot have the server read a file of its choosing."""
    if not payload:
        raise gr.Error(f"no {what}: upload an image first", print_exception=False)
    if not isinstance(payload, dict) or not payload.get("path"):
        raise gr.Error(f"{what}: expected an uploaded file (gradio_client: handle_file(PATH))", print_exception=False)
    return str(payload["path"])


def open_upload(payload: Any, what: str) -> Image.Image:
    """An uploaded image, decoded by the toolkit (format check, pixel limit); named after the user's file."""
    path = upload_path(payload, what)
    name = payload.get("orig_name")
    try:
        return open_image(path)
    except NSTError as e:
        raise gr.Error(f"{what}: {str(e).replace(path, name or 'the upload')}", print_exception=False) from None


#: The "blend with" list's first entry: the chosen style alone.
NO_BLEND = "(none)"


def style_blend(
    stylizer: Stylizer, style: str | None, blend_with: str | None, blend: float | None
) -> dict[str, float] | None:
    """The page's style controls as `Stylizer.stylize`'s ``style``: ``style`` alone, or ``blend`` of ``blend_with``
    mixed into it; None for a network of one style (the controls are hidden). A name the model does not have is
    the Stylizer's one line."""
    if not stylizer.styles or not style:
        return None
    amount = min(max(float(blend or 0.0), 0.0), 1.0)
    if not blend_with or blend_with in (NO_BLEND, style) or amount == 0.0:
        return {style: 1.0}
    return {style: 1.0 - amount, blend_with: amount}


def describe_choice(choice: dict[str, float]) -> str:
    """``udnie`` or ``udnie 70% · starry_night 30%``: the style painted, as the page's time line shows it."""
    if len(choice) == 1:
        return next(iter(choice))
    return " · ".join(f"{name} {weight:.0%}" for name, weight in choice.items() if weight > 0)


def check_side(size: float | None) -> int | None:
    """The output's longer side from the page (0 or empty: the input's), within ``MAX_SIDE``."""
    if size is None or int(size) == 0:
        return None
    if not 16 <= int(size) <= MAX_SIDE:
        raise gr.Error(f"output size must be 0 (the input's) or 16..{MAX_SIDE} px, got {size}", print_exception=False)
    return int(size)


def check_steps(steps: float | None) -> int:
    """An optimizer step count from the page or an API caller, within 1..``MAX_STEPS``."""
    if steps is None or not 1 <= int(steps) <= MAX_STEPS:
        raise gr.Error(f"steps must be 1..{MAX_STEPS}, got {steps}", print_exception=False)
    return int(steps)


class Results:
    """The stylized pictures handed to Gradio, each a PNG of its own in a folder of the app's, removed once
    Gradio has long copied it into its cache (`KEEP_RESULTS` seconds), and the folder with the app."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="nst-app-results-"))
        weakref.finalize(self, shutil.rmtree, self.folder, True)

    def save(self, image: Image.Image) -> Path:
        self._prune()
        return save_image(image, self.folder / f"{uuid.uuid4().hex}.png")

    def _prune(self) -> None:
        old = time.time() - KEEP_RESULTS
        for f in self.folder.glob("*.png"):
            with contextlib.suppress(OSError):
                if f.stat().st_mtime < old:
                    f.unlink()


class Jobs:
    """The three actions over one model catalogue; methods are the event handlers (and the API endpoints)."""

    def __init__(self, catalogue: ModelCatalogue) -> None:
        self.catalogue = catalogue
        self.results = Results()

    def style_preview(self, model: str | None) -> str | None:
        """The chosen model's style image (a thumbnail beside the list), None when it is not known."""
        with contextlib.suppress(NSTError):
            style = self.catalogue.entry(model).style
            return str(style) if style else None
        return None

    def style_names(self, model: str | None) -> list[str]:
        """``model``'s styles when it is a network of several (loading it), else []."""
        with contextlib.suppress(NSTError):
            return list(self.catalogue.stylizer(model).styles)
        return []

    def style_choices(self, model: str | None) -> tuple[Any, Any, Any]:
        """The style controls for ``model``: shown with its styles for a network of several, hidden otherwise."""
        names = self.style_names(model)
        first = names[0] if names else None
        return (
            gr.update(visible=bool(names)),
            gr.update(choices=names, value=first),
            gr.update(choices=[NO_BLEND, *names], value=NO_BLEND),
        )

    def stylize(
        self,
        image: Any,
        model: str,
        strength: float,
        keep_colors: bool,
        size: float | None,
        style: str | None = None,
        blend_with: str | None = None,
        blend: float | None = 0.0,
    ) -> tuple[str, str]:
        """One image through the chosen model; the result's file and its time in ms (model load not counted).

        The result goes back as a file of its own (`Results`), not as a picture for Gradio to encode: Gradio
        writes an encoded picture to a cache file named by its content, in place, so two requests with the same
        result overwrote the file while the first was being sent (cut-off downloads under a burst); a file is
        copied into its cache under a temporary name and renamed.
        """
        with user_errors():
            content = open_upload(image, "image")
            side = check_side(size)
            if side is None and max(content.size) > MAX_SIDE:
                side = MAX_SIDE
                gr.Warning(f"the image is larger than {MAX_SIDE} px; stylized at {MAX_SIDE} px (longer side)")
            stylizer = self.catalogue.stylizer(model)
            chosen = style_blend(stylizer, style, blend_with, blend)
            t0 = time.perf_counter()
            out = stylizer.stylize(
                content, size=side, preserve_color=bool(keep_colors), strength=float(strength), style=chosen
            )
            ms = (time.perf_counter() - t0) * 1000
            file = self.results.save(out)
        painted = f" · {describe_choice(chosen)}" if chosen else ""
        return str(file), f"{ms:.1f} ms · {out.width}x{out.height} px · {stylizer.provider}{painted}"

    def stylize_frame(
        self,
        frame: Any,
        model: str,
        strength: float,
        keep_colors: bool,
        style: str | None = None,
        blend_with: str | None = None,
        blend: float | None = 0.0,
    ) -> Any:
        """A webcam frame (RGB array) at ``LIVE_SIDE``; a frame that fails is shown as is, the stream goes on."""
        if frame is None or not self.catalogue.entries:
            return frame
        try:
            stylizer = self.catalogue.stylizer(model)
            side = LIVE_SIDE if max(frame.shape[:2]) > LIVE_SIDE else None
            chosen = style_blend(stylizer, style, blend_with, blend)
            keep = bool(keep_colors)
            return stylizer.stylize(frame, size=side, preserve_color=keep, strength=float(strength), style=chosen)
        except NSTError:
            return frame

    def compare(
        self, image: Any, model: str, style: Any, steps: float, size: float
    ) -> Iterator[tuple[Any, Any, Any, Any]]:
        """Fast vs optimizer on one image at ``steps`` iterations, scored by one metric (`infer.compare.run`);
        stopping the event stops the comparison at its next optimizer step."""
        from infer.compare.run import compare

        with user_errors():
            open_upload(image, "image")  # checked here first, for a message naming the user's file
            entry = self.catalogue.entry(model)
            if style:
                open_upload(style, "style image")
            elif entry.style is None:
                raise gr.Error("this model's style image was not found: upload it as the style image")
            style_path = upload_path(style, "style image") if style else entry.style
            args = {"steps": [check_steps(steps)], "size": check_side(size) or 256, "repeats": 1}

            def work(should_stop: Callable[[], bool], report: Callable[[Any], None]) -> Any:
                due = every(PREVIEW_EVERY)

                def shown_or_stopped(done: int, total: int) -> bool:
                    if due() or done == total:
                        report(f"{COMPARE_RUNNING} Step {done} of {total}.")
                    return should_stop()

                paths = [upload_path(image, "image")]
                return compare(paths, style_path, entry.path, should_stop=shown_or_stopped, progress=False, **args)

            yield None, None, [], COMPARE_RUNNING
            for done, value in in_thread(work, "nst-app-compare"):
                yield compare_outputs(value) if done else (gr.skip(), gr.skip(), gr.skip(), value or gr.skip())

    def optimize(
        self, content: Any, styles: Any, steps: float, size: float, style_weight: float, keep_colors: bool
    ) -> Iterator[tuple[Image.Image, str]]:
        """The iterative method, yielding the image as it improves; stopping the event stops the optimizer."""
        from nst_core.losses.weights import LossWeights

        with user_errors():
            image = open_upload(content, "content image")
            style_list = styles if isinstance(styles, list) else [styles] if styles else []
            if not style_list:
                raise gr.Error("add one or more style images")
            style_imgs = [open_upload(s, "style image") for s in style_list]
            options = {
                "steps": check_steps(steps),
                "size": check_side(size) or 256,
                "loss": LossWeights(style=float(style_weight)),
                "preserve_color": bool(keep_colors),
                "progress": False,
            }
            yield from _run_optimize(image, style_imgs, options)


def compare_outputs(report: Any) -> tuple[Image.Image, Image.Image, list[list[Any]], str]:
    """The Compare tab's outputs from an `infer.compare.run.CompareReport`: both images, the loss table, the answer."""
    result = report.images[0]
    fast, slow = result.fast, result.iterative[-1]
    rows = [
        [m.method, m.steps or "-", round(m.seconds * 1000, 1), m.loss.content, m.loss.style, m.loss.total]
        for m in (fast, slow)
    ]
    notes = "".join(f"\n\n*{w}*" for w in report.warnings)
    return fast.image, slow.image, rows, report.answer() + notes


#: The Compare tab's summary while a run is on (the last run's images and losses are cleared when it starts).
COMPARE_RUNNING = "Comparing: the fast network, then the optimizer (*Stop* cancels)."
COMPARE_STOPPED = "**Stopped.** Nothing was compared; press Compare to run again."
#: The Optimize tab's progress line until the first step is done (then "step N: loss ...").
OPTIMIZE_STARTING = "starting: style targets, then the first step"


def compare_stopped(answer: str | None) -> str | None:
    """The Compare summary after Stop: said when a run was on (Gradio just leaves the page as it was), else as is."""
    return COMPARE_STOPPED if answer and answer.startswith(COMPARE_RUNNING) else answer


def optimize_stopped(status: str | None) -> str | None:
    """The Optimize progress line after Stop: where a running optimization stopped (the image shown), else as is."""
    if status == OPTIMIZE_STARTING:
        return "stopped before the first step"
    return f"stopped at {status}" if status and status.startswith("step ") else status


def every(seconds: float) -> Callable[[], bool]:
    """A clock for progress shown in the page: True on the first call and then once ``seconds`` have passed."""
    last = [-math.inf]

    def due() -> bool:
        if time.perf_counter() - last[0] < seconds:
            return False
        last[0] = time.perf_counter()
        return True

    return due


class _Stopped(Exception):
    """Raised in optimize()'s callback once the page has stopped listening: ends the run at the next step."""


def in_thread(work: Work, name: str) -> Iterator[tuple[bool, Any]]:
    """``work(should_stop, report)`` in a thread: yields (False, None) first and after each quiet
    ``PREVIEW_EVERY`` s, (False, update) per report, then (True, result); re-raises its error. Closing this
    generator (the page's Stop) makes ``should_stop()`` true. The thread runs in a copy of the caller's context
    (where gr.Warning finds its page)."""
    updates: queue.Queue = queue.Queue()
    stop = threading.Event()

    def run() -> None:
        try:
            updates.put(("done", work(stop.is_set, lambda update: updates.put(("update", update)))))
        except BaseException as e:  # handed to the generator, which raises it in the request's thread
            if stop.is_set():
                LOG.info(f"{name}: stopped ({type(e).__name__}: {e})")
            updates.put(("error", e))

    # Gradio keeps a generator where Stop can close it only once it has yielded: a Stop before that would
    # leave a started thread running on, so the thread starts after a first, empty yield.
    yield False, None
    thread = threading.Thread(target=contextvars.copy_context().run, args=(run,), name=name, daemon=True)
    thread.start()
    try:
        while True:
            try:
                kind, value = updates.get(timeout=PREVIEW_EVERY)
            except queue.Empty:
                yield False, None  # a point where Gradio can close us
                continue
            if kind == "error":
                raise value
            yield kind == "done", value
            if kind == "done":
                return
    finally:
        stop.set()  # the page stopped or left: the job ends at its next step


def _run_optimize(content: Image.Image, styles: list[Image.Image], options: dict[str, Any]) -> Iterator[Any]:
    """optimize() in a thread; its callback hands images over, at most one every ``PREVIEW_EVERY`` s."""
    from nst_core.image_io import tensor_to_pil
    from nst_core.optimize.scales import optimize

    def work(should_stop: Callable[[], bool], report: Callable[[Any], None]) -> Any:
        due = every(PREVIEW_EVERY)

        def callback(step: int, seconds: float, image: Any, values: dict[str, float]) -> None:
            if should_stop():
                raise _Stopped
            if due() or step == options["steps"]:
                report((tensor_to_pil(image.detach().cpu()), f"step {step}: loss {values.get('total', 0):.4g}"))

        return optimize(content, styles, callback=callback, **options)

    yield None, OPTIMIZE_STARTING
    for done, value in in_thread(work, "nst-app-optimize"):
        if done:
            yield value.image, f"done: {value.steps} steps in {value.seconds:.1f} s, loss {value.loss['total']:.4g}"
        else:
            yield value if value is not None else (gr.skip(), gr.skip())
