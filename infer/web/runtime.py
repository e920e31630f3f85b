"""onnxruntime-web, the browser page's runtime: one pinned npm release, checked, cached, never fetched by the page.

The page loads the runtime from its own folder (``ort/``), so it works offline once built and on any static host;
nothing comes from a CDN when a visitor opens it. The files come, in this order of preference, from a folder the
user names (``--ort``: an npm install's ``node_modules/onnxruntime-web`` or its ``dist``), from this machine's
cache (``~/.cache/nst/onnxruntime-web-VERSION``), or from the npm registry's tarball of the pinned release, checked
against its published SHA-512 before anything is unpacked. The files are too large to ship inside the wheel (the
WebAssembly build alone is 14.8 MB, the WebGPU one 28.7 MB).

Each backend is one ES module and its WebAssembly binary (with the binary's own loader module):
``wasm`` runs on any browser's CPU, ``webgpu`` on the visitor's GPU where the browser offers WebGPU.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import tarfile
import urllib.request
from pathlib import Path

from nst_core.errors import NSTError, first_line
from nst_core.files import atomic_path

VERSION = "1.31.1"
#: npm's ``dist.tarball`` and ``dist.integrity`` for VERSION (``npm view onnxruntime-web@1.31.1 dist``).
TARBALL = f"https://registry.npmjs.org/onnxruntime-web/-/onnxruntime-web-{VERSION}.tgz"
INTEGRITY = "sha512-5GeH+bWQ+HxM10z7erGlsWqryrwMbSvm/1tkIsKTT48g0fI19VXVVC435t4t7VsPdSQeS7NmuZPXrQ73k82URw=="
#: Another npm registry (a mirror or a company proxy) serving the same tarball path.
REGISTRY_ENV = "NST_NPM_REGISTRY"

#: The files each backend needs, all from the package's ``dist`` folder.
BACKEND_FILES = {
    "wasm": ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm"),
    "webgpu": ("ort.webgpu.min.mjs", "ort-wasm-simd-threaded.asyncify.mjs", "ort-wasm-simd-threaded.asyncify.wasm"),
}
BACKENDS = tuple(BACKEND_FILES)
#: Written beside the runtime's files wherever they go (the npm package carries its licence in package.json only).
NOTICE = f"""onnxruntime-web {VERSION} (https://github.com/microsoft/onnxruntime), from npm: {TARBALL}

MIT License

Copyright (c) Microsoft Corporation

Permission is hereby granted, free of charge, to any person obtaining a copy of this software and associated
documentation files (the "Software"), to deal in the Software without restriction, including without limitation
the rights to use, copy, modify, merge, publish, distribute, sublicense, and/or sell copies of the Software, and to
permit persons to whom the Software is furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all copies or substantial portions of
the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING BUT NOT LIMITED TO THE
WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR
COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR
OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.
"""


def cache_dir() -> Path:
    """Where the checked files of VERSION are kept between builds (``$XDG_CACHE_HOME/nst`` or ``~/.cache/nst``)."""
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "nst" / f"onnxruntime-web-{VERSION}"


def needed(backends: list[str] | tuple[str, ...]) -> list[str]:
    """The file names ``backends`` need."""
    unknown = [b for b in backends if b not in BACKEND_FILES]
    if unknown or not backends:
        raise NSTError(f"backend {', '.join(unknown) or '(none)'}: give one or more of {', '.join(BACKENDS)}")
    return [f for b in backends for f in BACKEND_FILES[b]]


def _dist_folder(path: Path) -> Path:
    """``path`` or the ``dist`` folder inside it (an npm install's ``node_modules``, the package, or ``dist``)."""
    for folder in (path, path / "dist", path / "onnxruntime-web" / "dist", path / "node_modules/onnxruntime-web/dist"):
        if (folder / BACKEND_FILES["wasm"][0]).is_file():
            return folder
    raise NSTError(f"{path}: no onnxruntime-web files here (expected its dist folder, with {BACKEND_FILES['wasm'][0]})")


def _package_version(dist: Path) -> str | None:
    try:
        return str(json.loads((dist.parent / "package.json").read_text())["version"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def from_folder(path: Path, backends: list[str]) -> dict[str, Path]:
    """The files from a local npm install; NSTError unless it is the pinned VERSION with every file needed."""
    dist = _dist_folder(path)
    version = _package_version(dist)
    if version != VERSION:
        raise NSTError(
            f"{path}: onnxruntime-web {version or 'of unknown version'}; the page is built and tested with {VERSION} "
            f"(npm install onnxruntime-web@{VERSION})"
        )
    files = {name: dist / name for name in needed(backends)}
    missing = [n for n, p in files.items() if not p.is_file()]
    if missing:
        raise NSTError(f"{dist}: missing {', '.join(missing)}")
    return files


def check_integrity(data: bytes, integrity: str = INTEGRITY) -> None:
    """npm's Subresource-Integrity check of a downloaded tarball; NSTError when it differs."""
    algorithm, _, expected = integrity.partition("-")
    digest = base64.b64encode(hashlib.new(algorithm, data).digest()).decode()
    if digest != expected:
        raise NSTError(f"{TARBALL}: the download's {algorithm} differs from the published one; nothing was unpacked")


def download() -> bytes:
    """The pinned release's tarball from the npm registry (or ``$NST_NPM_REGISTRY``), checked."""
    registry = os.environ.get(REGISTRY_ENV, "https://registry.npmjs.org").rstrip("/")
    url = TARBALL.replace("https://registry.npmjs.org", registry)
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            data = response.read()
    except (OSError, ValueError) as e:
        raise NSTError(
            f"cannot download onnxruntime-web {VERSION} from {url} ({first_line(e)}); with no network, "
            f"give a local copy: npm install onnxruntime-web@{VERSION}, then --ort node_modules/onnxruntime-web"
        ) from None
    check_integrity(data)
    return data


def unpack(data: bytes, dest: Path) -> None:
    """Every file any backend needs from the tarball into ``dest``, each written atomically."""
    dest.mkdir(parents=True, exist_ok=True)
    wanted = {f"package/dist/{n}": n for n in needed(list(BACKENDS))}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for member in tar.getmembers():
            name = wanted.get(member.name)
            source = tar.extractfile(member) if name and member.isfile() else None
            if source is None:
                continue
            with atomic_path(dest / name) as tmp, open(tmp, "wb") as out:
                shutil.copyfileobj(source, out)
    missing = [n for n in wanted.values() if not (dest / n).is_file()]
    if missing:
        raise NSTError(f"{TARBALL}: the tarball lacks {', '.join(missing)}")


def runtime_files(backends: list[str], ort: Path | None = None) -> dict[str, Path]:
    """File name -> local path of every runtime file ``backends`` need: from ``ort`` when given, else the cache,
    filled from the registry when it lacks any."""
    if ort is not None:
        return from_folder(ort, backends)
    folder = cache_dir()
    names = needed(backends)
    if not all((folder / n).is_file() for n in names):
        unpack(download(), folder)
    return {n: folder / n for n in names}
