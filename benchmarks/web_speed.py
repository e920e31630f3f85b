"""The browser page (`nst web`) against Python onnxruntime: the same pixels, and the time per frame.

Builds the page with every shipped network, serves it with the isolation headers (WebAssembly threads), and drives
Debian's headless chromium through playwright:

* correctness: every shipped network on a photo at its own size (no resampling), on the WebAssembly backend and on
  WebGPU where chromium offers it (here: SwiftShader, its software Vulkan), the page's output pixels against
  Python onnxruntime's on the same file (the six-style network on its first style and on a blend);
* speed: the ``session.run`` milliseconds the page shows (median of ``--repeats`` frames after one warm-up) for the
  fast and standard networks at 256 and 512 px on the WebAssembly backend, as the page runs them (a shipped int8
  copy where one ships) and as fp32 files (a second page built with ``precision="fp32"``, in its own tab), and
  Python onnxruntime on the same files and photo, in three rounds of a block of frames per method.

    python benchmarks/web_speed.py                      # about 10 min on 2 cores (WebGPU in software is slow)
    python benchmarks/web_speed.py --json benchmarks/results/web_speed.json
    python benchmarks/web_speed.py --only speed --json benchmarks/results/web_speed.json   # 4 min
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from infer.models.shipped import shipped_names
from infer.stylize import Stylizer
from infer.web import runtime
from infer.web.serve import make_server, page_url
from infer.web.site import SiteConfig, build_site
from nst_core.builtin_photos import builtin_photo_path
from nst_core.machine import describe, machine_info

CHROMIUM = "/usr/bin/chromium"
FLAGS = (
    "--no-sandbox",
    "--enable-unsafe-webgpu",
    "--enable-features=Vulkan",
    "--use-vulkan=swiftshader",
    "--use-webgpu-adapter=swiftshader",
    "--disable-vulkan-surface",
)
SPEED_MODELS = ("starry_night_fast", "starry_night", "six_styles_fast")
BLEND = [70, 0, 0, 0, 0, 30]
ROUNDS = 3


def photo(folder: Path, side: int) -> Path:
    """The demo photo with its longer side ``side``, as PNG (the page runs it at its own size)."""
    path = folder / f"chelsea_{side}.png"
    with Image.open(builtin_photo_path("chelsea")) as image:
        w, h = image.size
        scale = side / max(w, h)
        image.convert("RGB").resize((round(w * scale), round(h * scale)), Image.Resampling.LANCZOS).save(path)
    return path


class Page:
    """The page in one chromium tab."""

    def __init__(self, browser: Any, url: str) -> None:
        self.page = browser.new_page(viewport={"width": 1200, "height": 900})
        self.page.goto(url)
        self.page.wait_for_function("['ready', 'error'].includes(document.body.dataset.state)", timeout=120_000)
        self.page.select_option("#size", "0")

    def runs(self) -> int:
        return int(self.page.evaluate("Number(document.body.dataset.runs || 0)"))

    def wait(self, count: int) -> None:
        self.page.wait_for_function(f"Number(document.body.dataset.runs || 0) >= {count}", timeout=300_000)

    def choose(self, name: str, backend: str) -> str | None:
        """Load a network; the page's message when it did not load."""
        index = self.page.evaluate(
            "(n) => [...document.querySelectorAll('#model option')].findIndex(o => o.text.startsWith(n + ' '))", name
        )
        self.page.select_option("#backend", backend)
        self.page.select_option("#model", str(index))
        self.page.wait_for_function(f"document.body.dataset.loaded === '{name}@{backend}'", timeout=300_000)
        return self.page.inner_text("#message") if self.page.is_visible("#message") else None

    def upload(self, path: Path) -> float:
        before = self.runs()
        self.page.set_input_files("#file", str(path))
        self.wait(before + 1)
        return float(self.page.evaluate("document.body.dataset.lastMs"))

    def again(self) -> float:
        """The same photo once more (the size menu's change event re-renders); its session.run ms."""
        before = self.runs()
        self.page.evaluate("document.getElementById('size').dispatchEvent(new Event('change'))")
        self.wait(before + 1)
        return float(self.page.evaluate("document.body.dataset.lastMs"))

    def blend(self, weights: list[int]) -> None:
        before = self.runs()
        self.page.evaluate(
            """(w) => { const s = [...document.querySelectorAll('#styles input[type=range]')];
                        s.forEach((x, i) => { x.value = w[i]; }); s[0].dispatchEvent(new Event('input')); }""",
            weights,
        )
        self.wait(before + 1)

    def pixels(self) -> np.ndarray:
        data = self.page.evaluate(
            """() => { const c = document.getElementById('output');
                       const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                       return [c.width, c.height, Array.from(d)]; }"""
        )
        w, h, values = data
        return np.array(values, dtype=np.uint8).reshape(h, w, 4)[..., :3]

    def threads(self) -> int:
        return int(self.page.evaluate("self.crossOriginIsolated ? Math.min(navigator.hardwareConcurrency, 8) : 1"))


def python_pixels(model: Path, path: Path, style: np.ndarray | None = None) -> np.ndarray:
    x = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32).transpose(2, 0, 1)[None] / 255.0
    y = Stylizer(model, provider="cpu", precision="fp32").run_array(x, style)[0]
    return np.rint(np.clip(y, 0, 1) * 255).astype(np.uint8).transpose(1, 2, 0)


class PythonRun:
    """One file in Python onnxruntime (CPU, fp32 as the file is), on one photo."""

    def __init__(self, model: Path, path: Path) -> None:
        self.x = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32).transpose(2, 0, 1)[None] / 255.0
        self.stylizer = Stylizer(model, provider="cpu", precision="fp32")
        self.stylizer.run_array(self.x)  # warm-up

    def ms(self) -> float:
        t0 = time.perf_counter()
        self.stylizer.run_array(self.x)
        return (time.perf_counter() - t0) * 1000


def levels(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    diff = np.abs(a.astype(int) - b.astype(int))
    return {"max": int(diff.max()), "mean": round(float(diff.mean()), 4)}


def correctness(page: Page, site: Path, path: Path, backend: str) -> list[dict[str, Any]]:
    rows = []
    for name in shipped_names():
        message = page.choose(name, backend)
        if message:
            rows.append({"model": name, "backend": backend, "error": message})
            continue
        model = site / page.page.evaluate("document.body.dataset.file")
        page.upload(path)
        row = {"model": name, "backend": backend, "file": model.name}
        got, want = page.pixels(), python_pixels(model, path)
        row |= levels(got, want)
        if model.name.endswith(".int8.onnx"):  # how far int8 is from the network's float32 output, here and in Python
            fp32 = python_pixels(site / "models" / f"{name}.onnx", path)
            row["page_vs_fp32"] = levels(got, fp32)
            row["python_int8_vs_fp32"] = levels(want, fp32)
        rows.append(row)
        if name == "six_styles_fast":
            page.blend(BLEND)
            weights = np.array(BLEND, np.float32) / sum(BLEND)
            blend = levels(page.pixels(), python_pixels(model, path, weights))
            rows.append({"model": f"{name} (blend 0.7/0.3)", "backend": backend, "file": model.name, **blend})
        print(json.dumps(rows[-1]), file=sys.stderr)
    return rows


def speed(pages: dict[str, tuple[Page, Path]], photos: dict[int, Path], repeats: int) -> list[dict[str, Any]]:
    """Per network and size: the page as built (int8 where one ships) and as fp32, each in its own tab, and Python
    on the same files, in ROUNDS rounds of a block of ``repeats`` frames each, so drifting load hits all alike (single
    frames interleaved would not be fair: Python onnxruntime's threads keep spinning after a run, taking the CPU
    from the browser's next frame)."""
    rows = []
    for name in SPEED_MODELS:
        runs: dict[str, tuple[Page, Path]] = {}
        for page, site in pages.values():
            page.choose(name, "wasm")
            file = site / page.page.evaluate("document.body.dataset.file")
            runs.setdefault("int8" if file.name.endswith(".int8.onnx") else "fp32", (page, file))
        for side, path in photos.items():
            times: dict[str, list[float]] = {}
            python = {kind: PythonRun(file, path) for kind, (_, file) in runs.items()}
            for page, _ in runs.values():
                page.upload(path)  # the warm-up frame
            for _ in range(ROUNDS):  # blocks, not single frames: onnxruntime's threads spin on after a run
                for kind, (page, _) in runs.items():
                    times.setdefault(f"browser_{kind}_ms", []).extend(page.again() for _ in range(repeats))
                    times.setdefault(f"python_{kind}_ms", []).extend(python[kind].ms() for _ in range(repeats))
            row = {"model": name, "side": side} | {k: round(statistics.median(v), 1) for k, v in times.items()}
            rows.append(row)
            print(json.dumps(row), file=sys.stderr)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="frames per block (3 blocks per method; the median)")
    parser.add_argument("--only", choices=("correctness", "speed"), help="one part only (default: both)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--json", type=Path, help="write the results here too")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        site = folder / "page"
        build_site(SiteConfig(site, models=tuple(shipped_names())))
        fp32_site = folder / "fp32"
        build_site(SiteConfig(fp32_site, models=SPEED_MODELS, backends=("wasm",), precision="fp32"))
        server, fp32_server = make_server(site, port=0), make_server(fp32_site, port=0)
        for s in (server, fp32_server):
            threading.Thread(target=s.serve_forever, daemon=True).start()
        small = photo(folder, 128)
        photos = {side: photo(folder, side) for side in args.sizes}
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=list(FLAGS))
            page = Page(browser, page_url(server))
            version = browser.version
            webgpu = page.page.evaluate("navigator.gpu ? navigator.gpu.requestAdapter().then(a => !!a) : false")
            threads = page.threads()
            rows, timings = [], []
            if args.only != "speed":
                rows = correctness(page, site, small, "wasm")
                if webgpu:
                    rows += correctness(page, site, small, "webgpu")
            if args.only != "correctness":
                fp32_page = Page(browser, page_url(fp32_server))
                timings = speed({"auto": (page, site), "fp32": (fp32_page, fp32_site)}, photos, args.repeats)
            browser.close()
        server.shutdown()
        fp32_server.shutdown()
    result = {
        "machine": machine_info(),
        "chromium": version,
        "onnxruntime_web": runtime.VERSION,
        "wasm_threads": threads,
        "webgpu": "SwiftShader (software)" if webgpu else None,
        "photo": "chelsea, 128 px (correctness); 256 and 512 px (speed)",
        "repeats": args.repeats,
        "correctness": rows,
        "speed": timings,
    }
    print(f"# {describe(result['machine'])}; chromium {version}; onnxruntime-web {runtime.VERSION}, {threads} threads")
    print("| network | backend | file run | max levels | mean levels | int8: page vs fp32 | int8: Python vs fp32 |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        cells = [r.get("file", "-"), r.get("max", r.get("error")), r.get("mean", "-")]
        for key in ("page_vs_fp32", "python_int8_vs_fp32"):
            cells.append(f"{r[key]['max']} / {r[key]['mean']}" if key in r else "-")
        print(f"| {r['model']} | {r['backend']} | " + " | ".join(str(c) for c in cells) + " |")
    print("\n| network | px | browser int8 ms | Python int8 ms | browser fp32 ms | Python fp32 ms |")
    print("|---|---|---|---|---|---|")
    for r in timings:
        cells = [r.get(k, "-") for k in ("browser_int8_ms", "python_int8_ms", "browser_fp32_ms", "python_fp32_ms")]
        print(f"| {r['model']} | {r['side']} | " + " | ".join(str(c) for c in cells) + " |")
    if args.json:  # a run of one part keeps the other part's figures already in the file
        old = json.loads(args.json.read_text()) if args.json.is_file() else {}
        if args.only == "speed":
            result["correctness"] = old.get("correctness", [])
        elif args.only == "correctness":
            result["speed"] = old.get("speed", [])
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
