"""A static file server for the page, with the headers that let onnxruntime-web use several threads.

WebAssembly threads need ``SharedArrayBuffer``, which a browser grants only to a cross-origin-isolated page: one
served with ``Cross-Origin-Opener-Policy: same-origin`` and ``Cross-Origin-Embedder-Policy: require-corp``. Any
static host works without them (the page then runs on one thread); this server sends them, and the right types
for ``.mjs`` and ``.wasm``.
"""

from __future__ import annotations

import functools
import http.server
import socket
from pathlib import Path

ISOLATION_HEADERS = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "same-origin",
}
FIRST_PORT = 8000


class PageHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with the isolation headers; no request log on stderr (the command says where it listens)."""

    extensions_map = {  # noqa: RUF012 (the base class's own mapping, extended)
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".mjs": "text/javascript",
        ".js": "text/javascript",
        ".wasm": "application/wasm",
        ".onnx": "application/octet-stream",
        ".json": "application/json",
    }

    def end_headers(self) -> None:
        for key, value in ISOLATION_HEADERS.items():
            self.send_header(key, value)
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def free_port(host: str, first: int = FIRST_PORT, tries: int = 100) -> int:
    """The first port from ``first`` nothing listens on at ``host``."""
    for port in range(first, first + tries):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            if s.connect_ex((host if host != "0.0.0.0" else "127.0.0.1", port)) != 0:
                return port
    raise OSError(f"no free port in {first}-{first + tries - 1}")


def make_server(folder: Path, host: str = "127.0.0.1", port: int | None = None) -> http.server.ThreadingHTTPServer:
    """A server of ``folder`` at ``host``:``port`` (None: the first free from 8000; 0: any); not yet serving."""
    handler = functools.partial(PageHandler, directory=str(folder))
    port = free_port(host) if port is None else port
    return http.server.ThreadingHTTPServer((host, port), handler)


def page_url(server: http.server.ThreadingHTTPServer) -> str:
    host, port = server.server_address[:2]
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    return f"http://{shown}:{port}/"
