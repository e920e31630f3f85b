"""`nst app [--models DIR]`: the local web app (Gradio), for people who would rather click than type.

Importing this module imports neither gradio nor torch: `nst --help` stays fast, and `nst` works
without the ``[app]`` extra installed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from nst_core.cli.options import add_command, add_max_pixels_option, number
from nst_core.errors import NSTError

HELP = "a local web app (Gradio): stylize, compare and optimize in the browser"
DESCRIPTION = (
    "Start a web app with three tabs: Stylize (upload or webcam, a model from --models), Compare (the fast "
    "network next to the optimizer, same metric) and Optimize (the iterative method, image updating as it "
    "improves). Each action is also an API endpoint (/stylize, /compare, /optimize) for gradio_client. "
    'Listens on 127.0.0.1 only unless --host says otherwise. Needs the [app] extra: pip install -e ".[app]".'
)
EXAMPLES = (
    "nst app --models models/",
    "nst app --models runs/ --port 7861",
    "nst app --models models/ --host 0.0.0.0 --port 8080",
)
PORT = number(int, 1, 65535)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(subparsers, "app", HELP, DESCRIPTION, EXAMPLES)
    p.add_argument(
        "--models",
        type=Path,
        metavar="DIR",
        help="folder searched for models: .onnx files, run folders, .safetensors networks (default: none; "
        "the page says how to make one, and the Optimize tab needs none)",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on; 0.0.0.0 opens it to the network")
    p.add_argument("--port", type=PORT, help="port (default: the first free one from 7860)")
    p.add_argument("--share", action="store_true", help="also a public gradio.live link (off: local only)")
    add_max_pixels_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        from infer.app.ui import build_app, launch
    except ImportError as e:
        raise NSTError(f'the web app needs the [app] extra ({e.name} is missing): pip install -e ".[app]"') from None
    demo = build_app(args.models)
    try:
        launch(demo, args.host, args.port, args.share)
    except OSError as e:  # port taken, address not available: one line, like every other nst error
        raise NSTError(
            f"cannot listen on {args.host}:{args.port or 'a port from 7860'}: {str(e).splitlines()[0]}"
        ) from None
    return 0
