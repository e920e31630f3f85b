"""`nst web`: the static page on onnxruntime-web, its build, its runtime files, and the page in a real browser.

The browser tests drive Debian's headless chromium (playwright, no browser download) against the page served by
`infer.web.serve`, and compare the page's output pixels with Python onnxruntime's on the same photo. They need
the pinned onnxruntime-web files (this machine's cache, else the npm registry; `.ci/run` fetches them) and skip,
saying why, without them.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from infer.stylize import Stylizer
from infer.web import runtime
from infer.web.serve import ISOLATION_HEADERS, make_server, page_url
from infer.web.site import SiteConfig, build_site, is_site
from nst_core.builtin_photos import builtin_photo_path
from nst_core.errors import NSTError
from tests.helpers import chromium, fake_dist, run_cli, zoo_convention_onnx

#: The page's pixels against Python onnxruntime's on the same file and photo, in 8-bit levels. Float networks,
#: observed (benchmarks/web_speed.py, every shipped network): at most 1 level, mean under 0.01, on WebAssembly and on
#: WebGPU (SwiftShader). int8 networks: the two builds round the quantized activations differently, so pixels differ by
#: up to 17 levels (mean up to 1.9) at 256 px, while each is as far from the float network as the other (mean 1.2-3.3
#: levels). A wrong pixel range, channel order, style vector or padding is off by tens of levels on average.
FLOAT_LEVELS = {"max": 2, "mean": 0.1}
WEBGPU_LEVELS = {"max": 4, "mean": 0.1}
INT8_LEVELS = {"max": 24, "mean": 2.5}
#: A photo small enough that the standard network runs in well under a second on the WebAssembly backend.
PHOTO_SIZE = (96, 64)
#: Chromium's software WebGPU (SwiftShader on Vulkan), for machines without a GPU.
WEBGPU_FLAGS = (
    "--enable-unsafe-webgpu",
    "--enable-features=Vulkan",
    "--use-vulkan=swiftshader",
    "--use-webgpu-adapter=swiftshader",
    "--disable-vulkan-surface",
)
CAMERA_FLAGS = ("--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream")
PAGE_MODELS = ("udnie_fast", "six_styles_fast", "udnie")


# ------------------------------------------------------------------------------------------------ the runtime files


def _tarball(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"package/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _integrity(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def test_integrity_check_refuses_a_changed_download():
    data = _tarball({"dist/ort.wasm.min.mjs": b"export {};"})
    runtime.check_integrity(data, _integrity(data))
    with pytest.raises(NSTError, match="differs from the published one"):
        runtime.check_integrity(data + b"x", _integrity(data))


def test_unpack_takes_every_backend_file(tmp_path):
    names = runtime.needed(list(runtime.BACKENDS))
    files = {f"dist/{n}": n.encode() for n in names} | {"dist/ort.all.min.mjs": b"not needed"}
    runtime.unpack(_tarball(files), tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names)
    assert (tmp_path / names[0]).read_bytes() == names[0].encode()
    with pytest.raises(NSTError, match="the tarball lacks"):
        runtime.unpack(_tarball({"dist/ort.wasm.min.mjs": b""}), tmp_path / "other")


def test_download_through_another_registry_is_checked(tmp_path, monkeypatch):
    """A registry (mirror) serving a different tarball: one line, nothing unpacked into the cache."""
    tarball = tmp_path / "onnxruntime-web" / "-" / f"onnxruntime-web-{runtime.VERSION}.tgz"
    tarball.parent.mkdir(parents=True)
    tarball.write_bytes(_tarball({"dist/ort.wasm.min.mjs": b"tampered"}))
    server = make_server(tmp_path, port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv(runtime.REGISTRY_ENV, page_url(server).rstrip("/"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    try:
        with pytest.raises(NSTError, match="differs from the published one"):
            runtime.runtime_files(["wasm"])
    finally:
        server.shutdown()
    assert not runtime.cache_dir().exists() or not any(runtime.cache_dir().iterdir())


def test_a_local_install_of_another_version_is_refused(tmp_path):
    with pytest.raises(NSTError, match=f"onnxruntime-web 1.20.0; the page is built and tested with {runtime.VERSION}"):
        runtime.from_folder(fake_dist(tmp_path, "1.20.0"), ["wasm"])
    files = runtime.from_folder(fake_dist(tmp_path / "ok"), ["wasm"])
    assert sorted(files) == sorted(runtime.BACKEND_FILES["wasm"])


# ------------------------------------------------------------------------------------------------ the build


def test_build_writes_the_page_the_networks_and_a_float32_copy(tmp_path):
    out = tmp_path / "page"
    manifest = build_site(SiteConfig(out, models=PAGE_MODELS, backends=("wasm",), ort=fake_dist(tmp_path)))
    assert is_site(out)
    entries = {m["name"]: m for m in manifest["models"]}
    assert list(entries) == list(PAGE_MODELS)
    assert entries["six_styles_fast"]["styles"][:2] == ["starry_night", "the_scream"]
    assert set(entries["six_styles_fast"]["paintings"]) == set(entries["six_styles_fast"]["styles"])
    assert entries["udnie_fast"]["file_fp32"] is None  # already float32
    assert entries["udnie_fast"]["file_int8"] == "models/udnie_fast.int8.onnx"  # the shipped int8 copy, for the CPU
    assert entries["udnie"]["file_int8"] is None  # none ships
    # the standard network computes in float16: its float32 copy (WebGPU without shader-f16) paints the same picture
    copy = out / entries["udnie"]["file_fp32"]
    x = np.random.default_rng(1).random((1, 3, 48, 64), dtype=np.float32)
    a = Stylizer(out / entries["udnie"]["file"], provider="cpu", precision="fp32").run_array(x)
    b = Stylizer(copy, provider="cpu", precision="fp32").run_array(x)
    assert np.abs(a - b).max() < 0.02
    assert sorted(p.name for p in (out / "ort").iterdir()) == sorted([*runtime.BACKEND_FILES["wasm"], "LICENSE.txt"])
    assert manifest["photos"] == ["photos/chelsea.jpg"]
    for name in ("index.html", "app.js", "style.css", "README.md"):
        assert (out / name).is_file()
    assert "sdk: static" in (out / "README.md").read_text()


def test_build_replaces_a_page_and_refuses_other_folders(tmp_path):
    ort = fake_dist(tmp_path)
    out = tmp_path / "page"
    build_site(SiteConfig(out, models=("udnie_fast",), backends=("wasm",), ort=ort))
    build_site(SiteConfig(out, models=("the_scream_fast",), backends=("wasm",), ort=ort))
    assert sorted(p.name for p in (out / "models").iterdir()) == ["the_scream_fast.int8.onnx", "the_scream_fast.onnx"]
    other = tmp_path / "notes"
    other.mkdir()
    (other / "mine.txt").write_text("keep me")
    with pytest.raises(NSTError, match="a folder with other files in it"):
        build_site(SiteConfig(other, models=("udnie_fast",), ort=ort))
    assert (other / "mine.txt").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["node_modules", "notes", "page"]  # no temporaries


def test_cli_bad_model_is_one_line_and_writes_nothing(tmp_path, capsys):
    not_onnx = tmp_path / "notes.onnx"
    not_onnx.write_text("not a model")
    out = tmp_path / "page"
    args = ["web", "-o", str(out), "--model", "udnie_fast", "--model", str(not_onnx), "--ort", str(fake_dist(tmp_path))]
    code, _, err = run_cli(args, capsys)
    assert code == 2
    assert "notes.onnx: not an ONNX model" in err and len(err.strip().splitlines()) == 2  # the build line, the error
    assert sorted(p.name for p in tmp_path.iterdir()) == ["node_modules", "notes.onnx"]


def test_cli_needs_a_folder_or_serve(capsys):
    code, _, err = run_cli(["web"], capsys)
    assert code == 2 and "give -o DIR to write the page, --serve to open it here, or both" in err


# ------------------------------------------------------------------------------------------------ in the browser


@pytest.fixture(scope="module")
def runtime_dir() -> Path:
    """The pinned onnxruntime-web files (the cache, filled from the npm registry when empty)."""
    try:
        files = runtime.runtime_files(list(runtime.BACKENDS))
    except NSTError as e:
        pytest.skip(f"onnxruntime-web {runtime.VERSION} could not be had: {e}")
    return next(iter(files.values())).parent


@dataclass
class Site:
    url: str
    folder: Path

    def model(self, name: str) -> Path:
        return self.folder / "models" / f"{name}.onnx"

    def running(self, page) -> Path:
        """The file the page runs now (a shipped network's int8 copy on the CPU, a float32 copy on WebGPU...)."""
        return self.folder / page.evaluate("document.body.dataset.file")


@pytest.fixture(scope="module")
def site(runtime_dir, tmp_path_factory) -> Site:
    """The page with three networks (fast, six styles, standard), served with the isolation headers."""
    out = tmp_path_factory.mktemp("web") / "page"
    build_site(SiteConfig(out, models=PAGE_MODELS))
    server = make_server(out, port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield Site(page_url(server), out)
    server.shutdown()


@pytest.fixture(scope="module")
def test_photo(tmp_path_factory) -> Path:
    """A PNG at the size the page runs it (so the page and Python see the same pixels: no resampling)."""
    path = tmp_path_factory.mktemp("photo") / "cat.png"
    with Image.open(builtin_photo_path("chelsea")) as image:
        image.convert("RGB").resize(PHOTO_SIZE, Image.Resampling.LANCZOS).save(path)
    return path


#: The browser contexts the running test opened: closed after it (`_close_pages`), so no earlier page's runtime
#: threads share the 2 cores with the next test's page.
OPEN_CONTEXTS: list = []


@pytest.fixture(autouse=True)
def _close_pages():
    yield
    while OPEN_CONTEXTS:
        OPEN_CONTEXTS.pop().close()


def open_page(browser, url: str, **context):
    OPEN_CONTEXTS.append(browser.new_context(viewport={"width": 1200, "height": 900}, **context))
    page = OPEN_CONTEXTS[-1].new_page()
    page.goto(url)
    page.wait_for_function("['ready', 'error'].includes(document.body.dataset.state)", timeout=60_000)
    return page


def runs(page) -> int:
    return int(page.evaluate("document.body.dataset.runs || '0'"))


def wait_runs(page, count: int) -> None:
    page.wait_for_function(f"Number(document.body.dataset.runs || 0) >= {count}", timeout=60_000)


def choose_model(page, name: str, backend: str = "wasm") -> None:
    index = page.evaluate(
        "(name) => [...document.querySelectorAll('#model option')].findIndex(o => o.text.startsWith(name + ' '))", name
    )
    page.select_option("#backend", backend)
    page.select_option("#model", str(index))
    page.wait_for_function(f"document.body.dataset.loaded === '{name}@{backend}'", timeout=120_000)
    message = page.inner_text("#message") if page.is_visible("#message") else ""
    assert not message, message


def upload(page, path: Path) -> None:
    before = runs(page)
    page.set_input_files("#file", str(path))
    wait_runs(page, before + 1)


def page_pixels(page) -> np.ndarray:
    """The output canvas as an (H, W, 3) uint8 array."""
    data = page.evaluate(
        """() => { const c = document.getElementById('output');
                   return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data); }"""
    )
    w, h = page.evaluate("[document.getElementById('output').width, document.getElementById('output').height]")
    return np.array(data, dtype=np.uint8).reshape(h, w, 4)[..., :3]


def python_pixels(
    model: Path, photo: Path, style: np.ndarray | None = None, pixel_range: str | None = None
) -> np.ndarray:
    x = np.asarray(Image.open(photo).convert("RGB"), dtype=np.float32).transpose(2, 0, 1)[None] / 255.0
    y = Stylizer(model, provider="cpu", precision="fp32", pixel_range=pixel_range).run_array(x, style)[0]
    return np.rint(np.clip(y, 0, 1) * 255).astype(np.uint8).transpose(1, 2, 0)


def levels(a: np.ndarray, b: np.ndarray) -> tuple[int, float]:
    diff = np.abs(a.astype(int) - b.astype(int))
    return int(diff.max()), float(diff.mean())


def within(got: np.ndarray, want: np.ndarray, tolerance: dict[str, float]) -> None:
    assert got.shape == want.shape
    worst, mean = levels(got, want)
    assert worst <= tolerance["max"] and mean <= tolerance["mean"], (worst, mean)


@pytest.fixture(scope="module")
def browser(site):
    """One chromium for every page test: a fake camera, and software WebGPU where it has it."""
    with chromium(*CAMERA_FLAGS, *WEBGPU_FLAGS) as b:
        yield b


def test_page_is_served_isolated_so_webassembly_has_threads(browser, site):
    page = open_page(browser, site.url)
    response = page.request.get(site.url + "ort/ort-wasm-simd-threaded.wasm")
    assert response.headers["content-type"] == "application/wasm"
    assert all(response.headers[k.lower()] == v for k, v in ISOLATION_HEADERS.items())
    assert page.evaluate("self.crossOriginIsolated") is True
    threads = page.evaluate("Math.min(navigator.hardwareConcurrency, 8)")
    assert f"{threads} thread(s)" in page.inner_text("#status")


@pytest.mark.parametrize(
    ("name", "file"),
    [("udnie_fast", "models/udnie_fast.int8.onnx"), ("udnie", "models/udnie.onnx")],  # the int8 copy where one ships
)
def test_page_matches_python_onnxruntime_on_webassembly(browser, site, test_photo, name, file):
    page = open_page(browser, site.url)
    page.select_option("#size", "0")  # the photo's own size: the page and Python see the same pixels
    choose_model(page, name)
    assert page.evaluate("document.body.dataset.file") == file
    upload(page, test_photo)
    got = page_pixels(page)
    want = python_pixels(site.running(page), test_photo)
    assert got.shape == want.shape == (PHOTO_SIZE[1], PHOTO_SIZE[0], 3)
    within(got, want, INT8_LEVELS if file.endswith(".int8.onnx") else FLOAT_LEVELS)
    assert f"{PHOTO_SIZE[0]}×{PHOTO_SIZE[1]}" in page.inner_text("#status")


def set_blend(page, weights: list[int]) -> None:
    page.evaluate(
        """(weights) => { const sliders = [...document.querySelectorAll('#styles input[type=range]')];
                          sliders.forEach((s, i) => { s.value = weights[i]; });
                          sliders[0].dispatchEvent(new Event('input')); }""",
        weights,
    )


def test_page_blends_styles_as_python_does(browser, site, test_photo):
    page = open_page(browser, site.url)
    page.select_option("#size", "0")
    choose_model(page, "six_styles_fast")
    upload(page, test_photo)
    before = runs(page)
    set_blend(page, [70, 0, 0, 0, 0, 30])
    wait_runs(page, before + 1)
    model = site.running(page)
    want = python_pixels(model, test_photo, np.array([0.7, 0, 0, 0, 0, 0.3], np.float32))
    within(page_pixels(page), want, INT8_LEVELS)  # the page runs the int8 copy on the CPU
    assert page.inner_text("#caption") == "starry_night=0.70,udnie=0.30"
    # the blend is not one of its styles: the check would catch a style vector the page ignored
    alone = python_pixels(model, test_photo, np.eye(6, dtype=np.float32)[0])
    assert levels(page_pixels(page), alone)[1] > 2 * INT8_LEVELS["mean"], levels(page_pixels(page), alone)
    # every weight at zero: a message in the page, and the next choice works again
    before = runs(page)
    set_blend(page, [0] * 6)
    page.wait_for_selector("#message:not([hidden])")
    assert "give at least one style a weight above zero" in page.inner_text("#message")
    page.click("#styles .style:nth-child(3) img")
    wait_runs(page, before + 1)
    assert page.inner_text("#caption") == "great_wave"


def test_bad_uploads_show_a_message_and_the_page_keeps_working(browser, site, test_photo, tmp_path):
    page = open_page(browser, site.url)
    choose_model(page, "udnie_fast")
    notes = tmp_path / "notes.txt"
    notes.write_text("not a photo")
    page.set_input_files("#file", str(notes))
    page.wait_for_selector("#message:not([hidden])")
    assert page.inner_text("#message").startswith("notes.txt: not an image this browser can open")
    huge = tmp_path / "huge.png"
    Image.new("L", (12_000, 9_000), 128).save(huge)  # 108 megapixels, a few hundred kB as PNG
    page.set_input_files("#file", str(huge))
    page.wait_for_function("document.getElementById('message').textContent.startsWith('huge.png')")
    assert "12000×9000 is too large" in page.inner_text("#message")
    upload(page, test_photo)
    assert page.is_hidden("#message")
    with page.expect_download() as download:
        page.click("#download")
    saved = np.asarray(Image.open(download.value.path()).convert("RGB"))
    assert np.array_equal(saved, page_pixels(page))
    assert download.value.suggested_filename == "cat-udnie.png"


def test_a_network_that_does_not_load_shows_a_message(browser, site, test_photo):
    page = open_page(browser, site.url)
    page.route("**/models/udnie.onnx", lambda route: route.fulfill(body=b"not a model"))
    index = page.evaluate("[...document.querySelectorAll('#model option')].findIndex(o => o.text.startsWith('udnie '))")
    page.select_option("#model", str(index))
    page.wait_for_function("document.body.dataset.loaded === 'udnie@wasm'", timeout=60_000)
    assert page.inner_text("#message").startswith("udnie: the network did not load on the CPU (WebAssembly)")
    choose_model(page, "udnie_fast")
    upload(page, test_photo)


def test_camera_frames_are_stylized_and_camera_failures_say_why(browser, site):
    page = open_page(browser, site.url, permissions=["camera"])
    choose_model(page, "udnie_fast")
    page.select_option("#size", "256")
    page.click("#camera")
    wait_runs(page, 3)
    assert "median" in page.inner_text("#status") and "×144" in page.inner_text("#status")  # 256×144 from 1280×720
    page.click("#camera")
    assert page.inner_text("#camera") == "use the camera"
    for error, message in (
        ("NotAllowedError", "the camera was refused"),
        ("NotFoundError", "no camera was found on this device"),
        ("NotReadableError", "the camera is in use by another program"),
    ):
        failing = open_page(browser, site.url, permissions=[])
        failing.evaluate(
            "(name) => { navigator.mediaDevices.getUserMedia = () => Promise.reject(new DOMException('no', name)); }",
            error,
        )
        failing.click("#camera")
        failing.wait_for_selector("#message:not([hidden])")
        assert failing.inner_text("#message").startswith(message)
        assert failing.inner_text("#camera") == "use the camera"  # nothing half-started


def test_webgpu_matches_python_onnxruntime_where_chromium_offers_it(browser, site, test_photo):
    """Chromium's software WebGPU (SwiftShader): no float16 shaders, so the standard network runs as its float32
    copy; skips where this chromium has no WebGPU adapter."""
    page = open_page(browser, site.url)
    if not page.evaluate("navigator.gpu ? navigator.gpu.requestAdapter().then(a => !!a) : false"):
        pytest.skip("this chromium offers no WebGPU adapter (SwiftShader/Vulkan missing)")
    assert not page.evaluate("navigator.gpu.requestAdapter().then(a => a.features.has('shader-f16'))")
    page.select_option("#size", "0")
    for name, file in (("udnie_fast", "models/udnie_fast.onnx"), ("udnie", "models/udnie.fp32.onnx")):
        choose_model(page, name, backend="webgpu")
        assert page.evaluate("document.body.dataset.file") == file
        upload(page, test_photo)
        want = python_pixels(site.running(page), test_photo)
        within(page_pixels(page), want, WEBGPU_LEVELS)


def test_serve_without_a_folder_serves_a_temporary_page_and_removes_it(tmp_path):
    """`nst web --serve`: the page at the URL it prints (with the isolation headers); SIGTERM (a service manager's
    stop; Ctrl-C takes the same path) stops it, exit 0, and the temporary folder is gone."""
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    args = [
        "web",
        "--serve",
        "--port",
        "0",
        "--model",
        "udnie_fast",
        "--backend",
        "wasm",
        "--ort",
        str(fake_dist(tmp_path)),
    ]
    proc = subprocess.Popen([sys.executable, "-m", "infer", *args], env=env, stderr=subprocess.PIPE, text=True)
    try:
        line = ""
        deadline = time.monotonic() + 60
        while "serving the page at" not in line and time.monotonic() < deadline:
            line = proc.stderr.readline()
        url = line.split("serving the page at ")[1].split()[0]
        with urllib.request.urlopen(url + "models.json") as response:
            assert json.loads(response.read())["models"][0]["name"] == "udnie_fast"
            assert response.headers["Cross-Origin-Embedder-Policy"] == "require-corp"
        assert [p.name for p in tmp_path.glob("nst-web-*")]  # the page lives in a temporary folder meanwhile
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    assert not list(tmp_path.glob("nst-web-*"))


@pytest.fixture(scope="module")
def zoo_site(runtime_dir, tmp_path_factory) -> Site:
    """A page with a network in the ONNX model zoo's convention: one fixed input size (64x64), pixels in 0-255."""
    folder = tmp_path_factory.mktemp("zoo")
    zoo = zoo_convention_onnx(folder / "candy-8.onnx", dynamic=False)
    out = folder / "page"
    build_site(SiteConfig(out, models=(str(zoo),), backends=("wasm",), pixel_range="0-255"))
    server = make_server(out, port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield Site(page_url(server), out)
    server.shutdown()


def test_a_model_zoo_network_runs_at_its_size_in_its_range(browser, zoo_site, tmp_path):
    manifest = json.loads((zoo_site.folder / "models.json").read_text())
    assert manifest["models"][0]["fixed_size"] == [64, 64] and manifest["models"][0]["input_scale"] == 255.0
    square = tmp_path / "square.png"
    with Image.open(builtin_photo_path("chelsea")) as image:
        image.convert("RGB").resize((64, 64), Image.Resampling.LANCZOS).save(square)
    page = open_page(browser, zoo_site.url)
    page.select_option("#size", "0")
    upload(page, square)  # at its own size: the same pixels as Python's
    within(page_pixels(page), python_pixels(zoo_site.model("candy-8"), square, pixel_range="0-255"), FLOAT_LEVELS)
    page.select_option("#size", "256")  # another size: in at 64x64, out at 256x256, no error
    page.wait_for_function("document.getElementById('output').width === 256")
    assert page.is_hidden("#message")


def test_choosing_the_loaded_network_again_loads_nothing(browser, site, test_photo):
    """A change event for the network already chosen (scripts send them) neither reloads it nor clears a message."""
    page = open_page(browser, site.url)
    upload(page, test_photo)
    page.evaluate("document.getElementById('message').hidden = false")  # as if a message were shown
    page.select_option("#model", page.evaluate("document.getElementById('model').value"))
    page.wait_for_timeout(500)
    assert page.evaluate("document.body.dataset.state") == "done" and page.is_visible("#message")
