"""The `nst app` page: Stylize, Compare and Optimize tabs over one model catalogue, and their API names.

Each button is an API endpoint with a stable name (``/stylize``, ``/compare``, ``/optimize``), so scripts
can call the app with ``gradio_client``. Events are queued one at a time (``default_concurrency_limit=1``):
two users cannot run two optimizations at once on a shared machine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

from infer.app.catalogue import NO_MODEL_HELP, ModelCatalogue
from infer.app.jobs import MAX_SIDE, NO_BLEND, Jobs, compare_stopped, optimize_stopped
from nst_core.log import LOG

TITLE = "nst: neural style transfer"
#: Largest upload accepted by the server (Gradio refuses bigger files with a message in the page).
MAX_FILE_SIZE = "50mb"
#: Gradio's own checks (choices, image decoding) are skipped: the handlers check and name problems themselves.
RAW = {"preprocess": False}
#: Requests the server holds waiting, over all buttons: a burst of users is queued (the page shows each its place
#: and estimated wait), and beyond this many Gradio refuses a request at once ("Queue is full. Max size is 100")
#: rather than let waits grow without bound. Measured on 2 CPU cores (benchmarks/README.md): bursts of 20, 50
#: and 100 `/stylize` requests at 256 px with a `_fast` network were all answered, the last after 19 s.
QUEUE_SIZE = 100
#: Compare and Optimize share one slot: one long job at a time on the whole server, whoever starts it.
LONG_JOB = {"concurrency_id": "long-job", "concurrency_limit": 1}
#: A Stop button: cancels its tab's run and says so at once (outside the queue, not an API endpoint).
STOP = {"queue": False, "api_visibility": "private"}


def _model_picker(catalogue: ModelCatalogue, jobs: Jobs, tab: str) -> gr.Dropdown:
    """The model list with the chosen model's style image beside it."""
    choices = catalogue.choices()
    first = choices[0] if choices else None
    with gr.Row():
        model = gr.Dropdown(choices, value=first, label="model", scale=3, elem_id=f"{tab}-model")
        thumb = gr.Image(jobs.style_preview(first), label="style", height=120, interactive=False, scale=1)
    model.change(jobs.style_preview, model, thumb, api_visibility="private")
    return model


def _style_controls(jobs: Jobs, model: gr.Dropdown) -> list[gr.components.Component]:
    """For a network of several styles: its style, and another blended into it by a slider (hidden otherwise)."""
    names = jobs.style_names(model.value)
    with gr.Row(visible=bool(names)) as row:
        style = gr.Dropdown(names, value=names[0] if names else None, label="style", elem_id="stylize-style")
        other = gr.Dropdown([NO_BLEND, *names], value=NO_BLEND, label="blend with", elem_id="stylize-blend-with")
        blend = gr.Slider(0, 1, value=0, step=0.05, label="blend (0: the style alone, 1: the other alone)")
    model.change(jobs.style_choices, model, [row, style, other], api_visibility="private")
    return [style, other, blend]


def _stylize_tab(catalogue: ModelCatalogue, jobs: Jobs) -> None:
    with gr.Row():
        with gr.Column():
            image = gr.Image(
                label="photo",
                sources=["upload", "webcam", "clipboard"],
                type="filepath",
                height=420,
                elem_id="stylize-photo",
            )
            model = _model_picker(catalogue, jobs, "stylize")
            styles = _style_controls(jobs, model)
            strength = gr.Slider(0, 1, value=1, step=0.05, label="strength (0: the photo, 1: fully stylized)")
            keep = gr.Checkbox(label="keep the photo's colours")
            size = gr.Number(0, label=f"output size, longer side in px (0: the photo's; at most {MAX_SIDE})")
            button = gr.Button("Stylize", variant="primary", elem_id="stylize-button")
        with gr.Column():
            out = gr.Image(label="stylized", format="png", height=420, interactive=False, elem_id="stylized")
            timing = gr.Textbox(label="time", interactive=False, elem_id="stylize-time")
    inputs = [image, model, strength, keep, size, *styles]
    button.click(jobs.stylize, inputs, [out, timing], api_name="stylize", **RAW)
    with gr.Accordion("live webcam", open=False):
        with gr.Row():
            cam = gr.Image(label="webcam", sources=["webcam"], streaming=True, type="numpy")
            live = gr.Image(label="live", interactive=False)
        live_inputs = [cam, model, strength, keep, *styles]
        cam.stream(jobs.stylize_frame, live_inputs, live, api_visibility="private", stream_every=0.2)


def _compare_tab(catalogue: ModelCatalogue, jobs: Jobs) -> None:
    gr.Markdown("The fast network next to the optimizer on one image, both scored with `nst optimize`'s loss.")
    with gr.Row():
        with gr.Column():
            image = gr.Image(label="photo", type="filepath", elem_id="compare-photo")
            model = _model_picker(catalogue, jobs, "compare")
            style = gr.Image(label="style image (default: the model's own, when found)", type="filepath", height=160)
            steps = gr.Slider(1, 500, value=50, step=1, label="optimizer steps", elem_id="compare-steps")
            size = gr.Slider(64, 1024, value=256, step=32, label="size (longer side, px)", elem_id="compare-size")
            with gr.Row():
                run = gr.Button("Compare", variant="primary", elem_id="compare-button")
                stop = gr.Button("Stop", elem_id="compare-stop")
        with gr.Column():
            with gr.Row():
                fast = gr.Image(label="fast network", format="png", interactive=False, elem_id="compare-fast")
                slow = gr.Image(label="optimizer", format="png", interactive=False, elem_id="compare-slow")
            losses = gr.Dataframe(
                headers=["method", "steps", "ms", "content", "style", "total"],
                label="losses (same metric)",
                elem_id="compare-losses",
            )
            answer = gr.Markdown(elem_id="compare-answer")
    event = run.click(
        jobs.compare,
        [image, model, style, steps, size],
        [fast, slow, losses, answer],
        api_name="compare",
        **RAW,
        **LONG_JOB,
    )
    stop.click(compare_stopped, answer, answer, cancels=[event], **STOP)


def _optimize_tab(jobs: Jobs) -> None:
    with gr.Row():
        with gr.Column():
            content = gr.Image(label="content", type="filepath", elem_id="optimize-content")
            styles = gr.File(
                label="style image(s)", file_count="multiple", file_types=["image"], elem_id="optimize-styles"
            )
            steps = gr.Slider(1, 1000, value=100, step=1, label="steps")
            size = gr.Slider(64, 1024, value=256, step=32, label="size (longer side, px)")
            weight = gr.Number(100, label="style weight (content weight 5)")
            keep = gr.Checkbox(label="keep the content's colours")
            with gr.Row():
                run = gr.Button("Optimize", variant="primary", elem_id="optimize-button")
                stop = gr.Button("Stop")
        with gr.Column():
            out = gr.Image(label="result (updates as it improves)", format="png", interactive=False)
            status = gr.Textbox(label="progress", interactive=False)
    event = run.click(
        jobs.optimize,
        [content, styles, steps, size, weight, keep],
        [out, status],
        api_name="optimize",
        **RAW,
        **LONG_JOB,
    )
    stop.click(optimize_stopped, status, status, cancels=[event], **STOP)


def build_app(models: Path | None = None) -> gr.Blocks:
    """The whole page; ``models`` is the folder searched for models (None: none offered, the page says how)."""
    catalogue = ModelCatalogue(models)
    if models is not None:
        LOG.info(f"{len(catalogue.entries)} model(s) found in {models}")
    jobs = Jobs(catalogue)
    with gr.Blocks(title=TITLE) as demo:
        gr.Markdown(f"# {TITLE}")
        if not catalogue.entries:
            gr.Markdown(f"**{NO_MODEL_HELP}** The Optimize tab needs no model.", elem_id="no-model")
        with gr.Tab("Stylize"):
            _stylize_tab(catalogue, jobs)
        with gr.Tab("Compare"):
            _compare_tab(catalogue, jobs)
        with gr.Tab("Optimize"):
            _optimize_tab(jobs)
    demo.queue(default_concurrency_limit=1, max_size=QUEUE_SIZE)
    return demo


def launch(demo: gr.Blocks, host: str, port: int | None, share: bool, **kwargs: Any) -> None:
    """Serve the page (blocking unless ``prevent_thread_lock=True`` is passed); uploads capped at ``MAX_FILE_SIZE``."""
    demo.launch(server_name=host, server_port=port, share=share, max_file_size=MAX_FILE_SIZE, show_error=True, **kwargs)
