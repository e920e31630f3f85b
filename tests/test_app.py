"""`nst app`: the web app served on a free local port, called through gradio_client and a real browser.

The server runs in this process (Gradio's own thread); the model is the tiny untrained network of the
`tiny_onnx` fixture, so every call takes well under a second. The browser test drives Debian's chromium
through playwright (no browser download) and skips, saying why, when either is missing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.helpers import chromium, photo, skimage_photo

gr = pytest.importorskip("gradio", reason='the [app] extra is not installed (pip install -e ".[app]")')
gradio_client = pytest.importorskip("gradio_client")

#: Where the browser test also saves its screenshot when set (the README's is made this way).
SCREENSHOT_ENV = "NST_APP_SCREENSHOT"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def models(tiny_onnx: Path, multi_onnx: Path, tmp_path_factory) -> Path:
    """A --models folder: the tiny model, its style image beside it (the thumbnail), a network of three styles and a
    broken model."""
    folder = tmp_path_factory.mktemp("models")
    shutil.copy(tiny_onnx, folder / "tiny.onnx")
    shutil.copy(multi_onnx, folder / "multi.onnx")
    shutil.copy(skimage_photo("coffee.png"), folder / "tiny.png")
    (folder / "broken.onnx").write_bytes(b"not a model")
    return folder


@pytest.fixture(scope="module")
def server(models: Path):
    """The app on a free port of 127.0.0.1, its URL; closed after the module."""
    from infer.app.ui import build_app, launch

    demo = build_app(models)
    port = free_port()
    launch(demo, "127.0.0.1", port, False, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}/"
    demo.close()


@pytest.fixture(scope="module")
def client(server: str):
    return gradio_client.Client(server, verbose=False)


@pytest.fixture(scope="module")
def image(tmp_path_factory) -> Path:
    return photo(tmp_path_factory.mktemp("app_photo"), size=80)  # 80x80


def test_models_are_found_with_their_style_images(tmp_path: Path, style_path: Path) -> None:
    from infer.app.catalogue import scan_models

    run = tmp_path / "runs" / "candy"
    (run / "checkpoints" / "step-000000002").mkdir(parents=True)
    (run / "checkpoints" / "step-000000002" / "network.safetensors").write_bytes(b"")
    (run / "network.safetensors").write_bytes(b"")
    (run / "config.yaml").write_text(f"style: {style_path}\n")
    (tmp_path / "mosaic.onnx").write_bytes(b"")
    shutil.copy(style_path, tmp_path / "mosaic.jpg")
    (tmp_path / "loose.safetensors").write_bytes(b"")
    found = {e.label: e.style for e in scan_models(tmp_path)}
    assert found == {"loose.safetensors": None, "mosaic.onnx": tmp_path / "mosaic.jpg", "runs/candy": style_path}


def test_importing_the_command_imports_neither_gradio_nor_torch() -> None:
    import subprocess

    code = "import sys, infer.app.cli; print('gradio' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_the_api_names_are_stable(client) -> None:
    assert set(client.view_api(print_info=False, return_format="dict")["named_endpoints"]) == {
        "/stylize",
        "/compare",
        "/optimize",
    }


def test_stylize_returns_an_image_of_the_requested_size(client, image: Path) -> None:
    out, timing = client.predict(gradio_client.handle_file(image), "tiny.onnx", 1.0, False, 48, api_name="/stylize")
    assert Image.open(out).size == (48, 48)
    assert " ms" in timing
    out, _ = client.predict(gradio_client.handle_file(image), "tiny.onnx", 0.5, True, 0, api_name="/stylize")
    assert Image.open(out).size == (80, 80)  # 0: the input's own size


def test_a_network_of_several_styles_paints_the_chosen_style_and_blends(client, image: Path) -> None:
    """The style picker and blend slider reach the network: each style paints differently, a blend is neither
    style, a blend of 0 is the style alone, and a name the model lacks is a message."""

    def paint(style: str, other: str = "(none)", blend: float = 0.0) -> tuple[np.ndarray, str]:
        args = (gradio_client.handle_file(image), "multi.onnx", 1.0, False, 40, style, other, blend)
        out, timing = client.predict(*args, api_name="/stylize")
        return np.asarray(Image.open(out), dtype=np.float32), timing

    coffee, rocket = paint("coffee")[0], paint("rocket")[0]
    mixed, timing = paint("coffee", "rocket", 0.5)
    assert np.abs(coffee - rocket).mean() > 1 and "coffee 50% · rocket 50%" in timing
    assert np.abs(mixed - coffee).mean() > 0.2 and np.abs(mixed - rocket).mean() > 0.2
    assert np.array_equal(paint("coffee", "rocket", 0.0)[0], coffee)
    with pytest.raises(gradio_client.exceptions.AppError, match="has no style 'monet'"):
        paint("monet")


@pytest.mark.parametrize(
    ("upload", "model", "message"),
    [
        ("text", "tiny.onnx", "not an image"),
        ("photo", "broken.onnx", "not an ONNX model"),
        ("photo", "../../etc/passwd", "unknown model"),
    ],
)
def test_bad_input_is_a_message_and_the_server_goes_on(client, image: Path, tmp_path: Path, upload, model, message):
    bad = tmp_path / "notes.txt"
    bad.write_text("not a picture")
    with pytest.raises(gradio_client.exceptions.AppError, match=message):
        client.predict(
            gradio_client.handle_file(bad if upload == "text" else image), model, 1, False, 0, api_name="/stylize"
        )
    out, _ = client.predict(gradio_client.handle_file(image), "tiny.onnx", 1.0, False, 32, api_name="/stylize")
    assert Image.open(out).size == (32, 32)


@pytest.mark.parametrize("weight", ["NaN", "Infinity", "-1"])
def test_a_non_finite_weight_through_the_http_api_is_the_app_s_message(server: str, image: Path, weight: str) -> None:
    """JSON has no NaN, so gradio_client refuses to send one (httpx: "Out of range float values are not JSON
    compliant"); a raw request carrying one (Python's JSON reads NaN) gets the app's one line naming the field."""
    import httpx

    api = server.rstrip("/") + "/gradio_api"
    with image.open("rb") as f:
        uploaded = httpx.post(f"{api}/upload", files={"files": f}).json()[0]
    photo_data = {"path": uploaded, "meta": {"_type": "gradio.FileData"}, "orig_name": "photo.png"}
    file = json.dumps(photo_data)
    body = f'{{"data": [{file}, [{file}], 2, 64, {weight}, false]}}'
    headers = {"content-type": "application/json"}
    event = httpx.post(f"{api}/call/optimize", content=body, headers=headers).json()["event_id"]
    reply = httpx.get(f"{api}/call/optimize/{event}", timeout=120).text
    assert "event: error" in reply and "style weight must be a finite number >= 0, got" in reply, reply


def test_a_burst_of_identical_requests_is_answered_in_full(server: str, image: Path) -> None:
    """20 users at once asking for the same picture: every one gets all of it. (Gradio wrote each result to a cache
    file named by its content, in place: identical results overwrote one file while it was being sent, and a
    queue of 16 refused the rest.)"""
    n = 20
    clients = [gradio_client.Client(server, verbose=False) for _ in range(n)]
    start, sizes = threading.Barrier(n), []

    def user(client) -> None:
        start.wait()
        out, _ = client.predict(gradio_client.handle_file(image), "tiny.onnx", 1.0, False, 32, api_name="/stylize")
        with Image.open(out) as picture:
            picture.load()  # a cut-off download fails here
            sizes.append(picture.size)

    threads = [threading.Thread(target=user, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sizes == [(32, 32)] * n


def test_an_image_over_the_pixel_limit_is_refused_by_name(client, image: Path) -> None:
    from nst_core.image_io import set_max_pixels

    previous = set_max_pixels(1000)  # the server runs in this process: `nst app --max-pixels 1000`
    try:
        with pytest.raises(gradio_client.exceptions.AppError, match=r"astronaut\.png: .*pixels"):
            client.predict(gradio_client.handle_file(image), "tiny.onnx", 1.0, False, 0, api_name="/stylize")
    finally:
        set_max_pixels(previous)


def test_compare_returns_both_images_and_their_losses(client, image: Path) -> None:
    fast, slow, losses, answer = client.predict(
        gradio_client.handle_file(image), "tiny.onnx", None, 2, 64, api_name="/compare"
    )
    assert Image.open(fast).size == Image.open(slow).size == (64, 64)
    rows = {row[0]: row for row in losses["data"]}
    assert set(rows) == {"fast", "iterative"} and rows["iterative"][1] == 2
    assert all(row[-1] > 0 for row in rows.values())  # total loss under the same metric
    assert "fast network" in answer


def wait_for(condition, seconds: float) -> bool:
    """Poll ``condition`` until it holds or ``seconds`` pass; whether it held."""
    end = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > end:
            return False
        time.sleep(0.05)
    return True


def compare_running() -> bool:
    return any(t.name == "nst-app-compare" and t.is_alive() for t in threading.enumerate())


def test_a_cancelled_compare_stops_its_optimizer_and_frees_the_slot(client, image: Path) -> None:
    """2000 steps take minutes here; cancelled, the worker ends within a step and the next long job runs."""
    job = client.submit(gradio_client.handle_file(image), "tiny.onnx", None, 2000, 64, api_name="/compare")
    assert wait_for(compare_running, 60), "the compare never started"
    time.sleep(1)  # well into the optimizer's steps
    job.cancel()
    assert wait_for(lambda: not compare_running(), 20), "the compare ran on after its cancel"
    style = gradio_client.handle_file(skimage_photo("coffee.png"))
    follow = client.submit(gradio_client.handle_file(image), [style], 2, 64, 100, False, api_name="/optimize")
    _, status = follow.result(timeout=60)  # the one long-job slot is free
    assert status.startswith("done: 2 steps")


def test_stop_says_where_a_running_job_stopped_and_leaves_a_finished_one_alone() -> None:
    from infer.app.jobs import (
        COMPARE_RUNNING,
        COMPARE_STOPPED,
        OPTIMIZE_STARTING,
        compare_stopped,
        optimize_stopped,
    )

    assert compare_stopped(COMPARE_RUNNING) == COMPARE_STOPPED
    assert compare_stopped("At 64 px the iterative method ...") == "At 64 px the iterative method ..."
    assert optimize_stopped("step 12: loss 3e+05") == "stopped at step 12: loss 3e+05"
    assert optimize_stopped(OPTIMIZE_STARTING) == "stopped before the first step"
    assert optimize_stopped("done: 3 steps in 1.0 s, loss 2e+05").startswith("done: 3 steps")


def test_optimize_streams_images_as_it_improves(client, image: Path) -> None:
    style = gradio_client.handle_file(skimage_photo("coffee.png"))
    job = client.submit(gradio_client.handle_file(image), [style], 3, 64, 100, False, api_name="/optimize")
    final, status = job.result()
    assert Image.open(final).size == (64, 64)
    assert status.startswith("done: 3 steps")


def test_no_models_still_starts_and_says_how_to_get_one(tmp_path: Path, monkeypatch) -> None:
    from infer.app.catalogue import NO_MODEL_HELP
    from infer.app.ui import build_app
    from infer.models.shipped import MODELS_ENV

    monkeypatch.setenv(MODELS_ENV, str(tmp_path))  # an installation without shipped models

    demo = build_app(None)
    assert NO_MODEL_HELP in str(demo.config)
    assert "nst train" in NO_MODEL_HELP and "nst export" in NO_MODEL_HELP


@pytest.fixture(scope="module")
def browser():
    """Debian's headless chromium through playwright (skips, saying why, when either is missing)."""
    with chromium() as browser:
        yield browser


def open_page(browser, server: str):
    page = browser.new_page(viewport={"width": 1280, "height": 820})
    page.goto(server)
    return page


def upload(page, elem_id: str, path: Path) -> None:
    page.locator(f"#{elem_id} input[type=file]").set_input_files(str(path))
    page.locator(f"#{elem_id} img").wait_for(timeout=20_000)  # the upload is shown


def choose(page, elem_id: str, option: str) -> None:
    page.locator(f"#{elem_id} input").click()
    page.get_by_role("option", name=option).click()


def set_number(page, elem_id: str, value: int) -> None:
    box = page.locator(f"#{elem_id} input[type=number]")
    box.fill(str(value))
    box.press("Enter")


def test_in_a_real_browser_a_photo_is_stylized(browser, server: str, tmp_path: Path) -> None:
    page = open_page(browser, server)
    upload(page, "stylize-photo", photo(tmp_path, size=256))
    page.locator("#stylize-button").click()  # the first model in the list is the broken one
    page.get_by_text("not an ONNX model").first.wait_for(timeout=20_000)  # said in the page
    choose(page, "stylize-model", "tiny.onnx")
    page.locator("#stylize-button").click()
    page.locator("#stylized img").wait_for(timeout=30_000)
    assert " ms" in page.locator("#stylize-time textarea").input_value()
    shot = Path(os.environ.get(SCREENSHOT_ENV) or tmp_path / "app.png")
    page.screenshot(path=str(shot), full_page=True)
    page.close()
    assert Image.open(shot).size[0] == 1280


def test_in_a_real_browser_a_compare_shows_both_results_and_stop_clears_them(browser, server: str, image: Path) -> None:
    page = open_page(browser, server)
    page.get_by_role("tab", name="Compare").click()
    upload(page, "compare-photo", image)
    choose(page, "compare-model", "tiny.onnx")
    set_number(page, "compare-steps", 2)
    set_number(page, "compare-size", 64)
    page.locator("#compare-button").click()
    for output in ("#compare-fast img", "#compare-slow img"):
        page.locator(output).wait_for(timeout=60_000)
    table = page.locator("#compare-losses").inner_text()
    assert "fast" in table and "iterative" in table
    assert "fast network" in page.locator("#compare-answer").inner_text()
    page.locator("#compare-stop").click()  # nothing running: the results stay
    page.wait_for_timeout(500)
    assert "fast network" in page.locator("#compare-answer").inner_text()
    set_number(page, "compare-steps", 500)  # minutes here: Stop must end it and say so
    page.locator("#compare-button").click()
    assert wait_for(compare_running, 30), "the compare never started"
    shown = re.compile(r"Step (\d+) of 501")  # the fast pass, then one per optimizer step

    def progress_counts() -> bool:
        match = shown.search(page.locator("#compare-answer").inner_text())
        return bool(match) and int(match[1]) >= 3

    assert wait_for(progress_counts, 30), page.locator("#compare-answer").inner_text()
    page.locator("#compare-stop").click()
    page.get_by_text("Stopped.").wait_for(timeout=10_000)
    assert page.locator("#compare-fast img").count() == page.locator("#compare-slow img").count() == 0
    assert "iterative" not in page.locator("#compare-losses").inner_text()  # the last run's losses are gone
    assert wait_for(lambda: not compare_running(), 20), "the compare ran on after Stop"
    page.close()
