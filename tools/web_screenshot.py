"""Maintainer tool: the README's picture of `nst web`'s page (docs/images/web_page.jpg), taken in headless chromium.

Builds the default page, opens it, stylizes the sample photo, sets a blend of six_styles_fast and saves the window.

    python tools/web_screenshot.py                                  # starry_night=0.6, udnie=0.4
    python tools/web_screenshot.py --blend 0,0,0,50,50,0 -o shot.jpg
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from infer.web.serve import make_server, page_url  # noqa: E402
from infer.web.site import SiteConfig, build_site  # noqa: E402
from nst_core.files import atomic_path  # noqa: E402

CHROMIUM = "/usr/bin/chromium"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-o", "--output", type=Path, default=ROOT / "docs" / "images" / "web_page.jpg")
    p.add_argument("--blend", default="60,0,0,0,0,40", help="six_styles_fast's slider values, in its style order")
    args = p.parse_args()
    from PIL import Image
    from playwright.sync_api import sync_playwright

    weights = [int(w) for w in args.blend.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp) / "page"
        build_site(SiteConfig(site, backends=("wasm",)))
        server = make_server(site, port=0)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1100, "height": 860})
            page.goto(page_url(server))
            page.wait_for_function("document.body.dataset.loaded", timeout=60_000)
            page.click("#sample")
            page.wait_for_function("document.body.dataset.runs === '1'", timeout=60_000)
            page.evaluate(
                """(w) => { const s = [...document.querySelectorAll('#styles input[type=range]')];
                            s.forEach((x, i) => { x.value = w[i]; }); s[0].dispatchEvent(new Event('input')); }""",
                weights,
            )
            page.wait_for_function("document.body.dataset.runs === '2'", timeout=60_000)
            png = Path(tmp) / "page.png"
            page.screenshot(path=str(png))
            browser.close()
        server.shutdown()
        with atomic_path(args.output) as out, Image.open(png) as image:
            image.convert("RGB").save(out, format="JPEG", quality=88, optimize=True)
    print(args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
