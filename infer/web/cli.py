"""`nst web`: write the browser page with the chosen networks, and serve it locally if asked.

A thin layer over `infer.web.site.build_site` and `infer.web.serve`. Results on stdout (the folder, or --json);
messages on stderr.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import tempfile
import webbrowser
from pathlib import Path

from nst_core.cli.options import add_command, add_report_options, number
from nst_core.errors import NSTError
from nst_core.log import LOG

HELP = "the networks in a static web page that stylizes in the visitor's browser (onnxruntime-web)"
DESCRIPTION = (
    "Write a folder of static files: a page that stylizes an uploaded, dropped or pasted photo and the webcam "
    "with the chosen networks, on the visitor's device (WebAssembly on the CPU, WebGPU where the browser has it), "
    "with the style (and blends of a network of several styles), the size, the time per frame and a download. "
    "Nothing is uploaded; publish the folder on any static host (a Hugging Face Space: its README.md is written "
    "too), or --serve it here. The onnxruntime-web files come from --ort, else this machine's cache, else the npm "
    "registry (the pinned release, checked by its SHA-512)."
)
EXAMPLES = (
    "nst web --serve",
    "nst web -o my-page --model six_styles_fast --model udnie",
    "nst web -o my-page --model my_style.onnx --backend wasm",
    "nst web --serve --model hf://OWNER/REPO --port 8080",
)
PORT = number(int, 0, 65535)


def register(subparsers: argparse._SubParsersAction) -> None:
    from infer.web.runtime import BACKENDS, VERSION
    from infer.web.site import DEFAULT_MODELS

    p = add_command(subparsers, "web", HELP, DESCRIPTION, EXAMPLES)
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar="DIR",
        help="folder to write the page into (new, empty, or a page built before; default with --serve: "
        "a temporary folder, removed when the server stops)",
    )
    p.add_argument(
        "--model",
        action="append",
        metavar="MODEL",
        help="a network for the page (repeat for several): a shipped name, an .onnx file, hf://OWNER/REPO, "
        f"or a trained network (default: {', '.join(DEFAULT_MODELS)})",
    )
    p.add_argument(
        "--backend",
        action="append",
        choices=BACKENDS,
        help="runtime backends the page carries (repeat; default: both): wasm runs everywhere (14.8 MB), "
        "webgpu on GPUs the browser offers (28.7 MB)",
    )
    p.add_argument(
        "--precision",
        choices=("auto", "fp32"),
        default="auto",
        help="auto: the page runs a shipped network's int8 copy on the CPU backend where one ships (the _fast ones: "
        "1.15-1.5x faster in the browser); fp32: the files as named",
    )
    p.add_argument(
        "--pixel-range",
        choices=("0-1", "0-255"),
        help="the pixel values networks not made by nst export take and give: 0-255 for the ONNX model zoo's "
        "fast-neural-style networks (default: their nst.input_range, else 0-1)",
    )
    p.add_argument(
        "--ort",
        type=Path,
        metavar="DIR",
        help=f"a local onnxruntime-web (npm install onnxruntime-web@{VERSION}: node_modules/onnxruntime-web) "
        "instead of the cache or the registry",
    )
    p.add_argument(
        "--serve",
        action="store_true",
        help="serve the page here until Ctrl-C or SIGTERM (with the headers that give it several CPU threads)",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to serve on; 0.0.0.0 opens it to the network")
    p.add_argument("--port", type=PORT, help="port to serve on (default: the first free one from 8000)")
    p.add_argument("--open", action="store_true", help="open the page in the default browser (with --serve)")
    add_report_options(p, "print the folder, its size and the networks as one JSON object on stdout")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from infer.web.runtime import BACKENDS
    from infer.web.site import DEFAULT_MODELS, SiteConfig, build_site, site_size

    if args.output is None and not args.serve:
        raise NSTError("give -o DIR to write the page, --serve to open it here, or both")
    temporary = args.output is None
    out = Path(tempfile.mkdtemp(prefix="nst-web-")) / "page" if temporary else args.output
    config = SiteConfig(
        out=out,
        models=tuple(args.model or DEFAULT_MODELS),
        backends=tuple(dict.fromkeys(args.backend or BACKENDS)),
        ort=args.ort,
        precision=args.precision,
        pixel_range=args.pixel_range,
    )
    try:
        LOG.info(f"building the page with {', '.join(config.models)}…")
        manifest = build_site(config)
        size = site_size(out)
        result = {
            "folder": str(out),
            "bytes": size,
            "backends": manifest["backends"],
            "models": [m["name"] for m in manifest["models"]],
            "runtime": manifest["runtime"],
        }
        if args.json:
            print(json.dumps(result))
        elif not temporary:
            print(out)
        LOG.info(
            f"wrote {out} ({size / 1e6:.1f} MB: {len(manifest['models'])} networks, onnxruntime-web "
            f"{manifest['runtime']} for {', '.join(manifest['backends'])})"
        )
        if args.serve:
            serve(args, out)
    finally:
        if temporary:
            shutil.rmtree(out.parent, ignore_errors=True)
    return 0


def serve(args: argparse.Namespace, folder: Path) -> None:
    """Serve ``folder`` until Ctrl-C."""
    from infer.web.serve import make_server, page_url

    try:
        server = make_server(folder, args.host, args.port)
    except OSError as e:
        raise NSTError(
            f"cannot listen on {args.host}:{args.port or 'a port from 8000'}: {str(e).splitlines()[0]}"
        ) from None
    url = page_url(server)
    LOG.info(f"serving the page at {url} (Ctrl-C stops)")
    if args.open:
        webbrowser.open(url)
    previous = signal.signal(signal.SIGTERM, _interrupt)  # a service manager's stop: as Ctrl-C, the folder cleaned up
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        LOG.info("stopped")
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.server_close()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
