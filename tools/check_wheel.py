"""CI and maintainer check: the wheel users install works on its own.

1. ``python -m build`` makes the sdist of this tree, then the wheel from the sdist (so a file the sdist lacks is
   missing from the wheel too, and nothing is built inside the tree; no build isolation: the environment's setuptools);
2. the wheel holds every package and the package data (the shipped models and their int8 copies, the paintings, the
   demo photos, the configs), and stays under ``MAX_WHEEL_BYTES``;
3. a new virtual environment outside the tree gets the wheel and only the light runtime (onnxruntime, NumPy, Pillow,
   tqdm: the README's light install, no torch), and there ``nst --help``, ``nst models``, ``nst stylize`` with a
   shipped model on a shipped demo photo and (when onnxruntime-web is in the cache) ``nst web`` must work: the
   package data reaches users only through the wheel.

    python tools/check_wheel.py            # prints one JSON line: the files and their sizes
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import venv
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from infer.web.runtime import BACKEND_FILES, cache_dir  # noqa: E402
from nst_core.builtin_photos import BUILTIN_PHOTOS  # noqa: E402
from nst_core.builtin_styles import BUILTIN_STYLES  # noqa: E402
from nst_core.cli import OneLineParser, exit_status  # noqa: E402
from nst_core.errors import NSTError  # noqa: E402
from nst_core.log import configure  # noqa: E402

#: The wheel's ceiling: 12 single-style networks (24.9 MB in all, 12.9 MB zipped ...) and their int8 copies fit.
MAX_WHEEL_BYTES = 40_000_000
#: The light install of the README: what `nst stylize` needs without PyTorch.
LIGHT_RUNTIME = ("onnxruntime", "numpy", "pillow", "tqdm")


def build(dist: Path) -> tuple[Path, Path]:
    """(wheel, sdist) of this tree, built into ``dist``: the sdist, then the wheel from it (build's default)."""
    cmd = [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), str(ROOT)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise NSTError(f"python -m build failed: {(proc.stderr or proc.stdout).strip().splitlines()[-1]}")
    return next(dist.glob("*.whl")), next(dist.glob("*.tar.gz"))


def expected_files() -> set[str]:
    """The package data the wheel must hold, as paths inside it."""
    models = {p.relative_to(ROOT).as_posix() for p in (ROOT / "infer" / "models").glob("**/*.onnx")}
    paintings = {f"nst_core/styles/{name}.jpg" for name in BUILTIN_STYLES}
    photos = {f"nst_core/photos/{name}.jpg" for name in BUILTIN_PHOTOS}
    configs = {f"train/configs/{p.name}" for p in (ROOT / "configs").glob("*.yaml")}
    page = {f"infer/web/static/{name}" for name in ("index.html", "app.js", "style.css")}
    extra = {"infer/temporal/consistency.py", "nst_core/photos/SOURCES.md"}
    return models | paintings | photos | configs | page | extra


def check_contents(wheel: Path) -> list[str]:
    """The wheel's file names; NSTError naming what is missing, or the size when over the ceiling."""
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
    missing = sorted(expected_files() - set(names))
    if missing:
        raise NSTError(f"{wheel.name}: {len(missing)} file(s) missing, e.g. {', '.join(missing[:5])}")
    if wheel.stat().st_size > MAX_WHEEL_BYTES:
        raise NSTError(f"{wheel.name}: {wheel.stat().st_size:,} bytes, over the {MAX_WHEEL_BYTES:,} allowed")
    return names


def run(cmd: list[str], cwd: Path) -> str:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise NSTError(f"`{' '.join(cmd[-4:])}` failed in the installed wheel: {tail[0]}")
    return proc.stdout


def install_and_use(wheel: Path, work: Path) -> dict[str, str]:
    """A new venv in ``work`` with the wheel (no dependencies) and the light runtime; the commands run there."""
    env = work / "venv"
    venv.create(env, with_pip=True)
    python = str(env / "bin" / "python")
    lock = ["-c", str(ROOT / "requirements.lock")]
    run([python, "-m", "pip", "install", "-q", *lock, *LIGHT_RUNTIME], work)
    run([python, "-m", "pip", "install", "-q", "--no-deps", str(wheel)], work)
    nst = str(env / "bin" / "nst")
    outputs = {"help": run([nst, "--help"], work), "models": run([nst, "models"], work)}
    out = work / "chelsea_udnie.png"
    run([nst, "stylize", "chelsea", "--model", "udnie_fast", "-o", str(out), "--size", "128"], work)
    if not out.is_file():
        raise NSTError("nst stylize in the installed wheel wrote no picture")
    if all((cache_dir() / name).is_file() for name in BACKEND_FILES["wasm"]):  # .ci/run fills the cache first
        page = work / "page"
        run([nst, "web", "-q", "-o", str(page), "--model", "udnie_fast", "--backend", "wasm"], work)
        if not (page / "index.html").is_file() or "udnie_fast" not in (page / "models.json").read_text():
            raise NSTError("nst web in the installed wheel wrote no page")
    return outputs


def main() -> int:
    p = OneLineParser(prog="tools/check_wheel.py", description=__doc__.splitlines()[0])
    p.parse_args()
    configure(p.prog)

    def check() -> int:
        with tempfile.TemporaryDirectory(prefix="nst-wheel-") as tmp:
            work = Path(tmp)
            wheel, sdist = build(work / "dist")
            names = check_contents(wheel)
            outputs = install_and_use(wheel, work)
            if "udnie_fast" not in outputs["models"]:
                raise NSTError("nst models in the installed wheel does not list the shipped models")
            summary = {"wheel": wheel.name, "wheel_bytes": wheel.stat().st_size, "sdist_bytes": sdist.stat().st_size}
            print(json.dumps(summary | {"files": len(names)}))
        return 0

    return exit_status(check)


if __name__ == "__main__":
    sys.exit(main())
