"""Models on the Hugging Face Hub by ``hf://`` name, read from a local cache in the Hub's real layout (no network)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from infer.models.hub import HubName, parse_hub_name
from nst_core.errors import NSTError
from tests.helpers import fake_dist, photo

pytest.importorskip("huggingface_hub")

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def populate_cache(cache: Path, repo: str, files: dict[str, bytes], commit: str = COMMIT) -> None:
    """``files`` of the model repository ``repo`` as huggingface_hub caches them: content-addressed blobs, a
    snapshot folder per commit linking to them, and refs/main naming the commit."""
    root = cache / f"models--{repo.replace('/', '--')}"
    (root / "refs").mkdir(parents=True)
    (root / "refs" / "main").write_text(commit)
    for name, data in files.items():
        blob = root / "blobs" / hashlib.sha256(data).hexdigest()
        blob.parent.mkdir(exist_ok=True)
        blob.write_bytes(data)
        link = root / "snapshots" / commit / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))


def nst(args: list[str], cache: Path) -> subprocess.CompletedProcess:
    """`nst ARGS` in a fresh process, offline, with ``cache`` as the Hugging Face cache."""
    env = {**os.environ, "HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "infer", *args], env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def cache(tmp_path_factory, tiny_onnx: Path, multi_onnx: Path) -> Path:
    folder = tmp_path_factory.mktemp("hf_cache")
    populate_cache(folder, "someone/tiny-style", {"tiny.onnx": tiny_onnx.read_bytes(), "README.md": b"# tiny\n"})
    two = {"a.onnx": tiny_onnx.read_bytes(), "b.onnx": multi_onnx.read_bytes()}
    populate_cache(folder, "someone/two-models", two)
    return folder


def test_names_parse() -> None:
    assert parse_hub_name("hf://o/r") == HubName("o/r")
    assert parse_hub_name("hf://o/r/sub/m.onnx@v1") == HubName("o/r", "sub/m.onnx", "v1")
    for bad in ("hf://o", "hf://o/r/m.txt", "hf://o/r@"):
        with pytest.raises(NSTError, match="hf://OWNER/REPO"):
            parse_hub_name(bad)


def test_a_cached_model_stylizes_offline_by_hf_name(cache: Path, tmp_path: Path) -> None:
    """With the network off, `hf://OWNER/REPO` (its one .onnx) and `hf://OWNER/REPO/FILE.onnx` run from the cache;
    --info reads the cached file."""
    src = photo(tmp_path, size=40)
    for name, out in (("hf://someone/tiny-style", "a.png"), ("hf://someone/two-models/b.onnx", "b.png")):
        proc = nst(["stylize", str(src), "--model", name, "-o", str(tmp_path / out), "--json"], cache)
        assert proc.returncode == 0, proc.stderr
        assert Path(json.loads(proc.stdout)["outputs"][0]).is_file()
    proc = nst(["stylize", "--info", "--json", "--model", "hf://someone/two-models/b.onnx"], cache)
    info = json.loads(proc.stdout)
    assert info["model"].startswith(str(cache)) and info["styles"] == ["coffee", "rocket", "chelsea"]


def test_a_cached_model_goes_into_the_web_page(cache: Path, tmp_path: Path) -> None:
    """`nst web --model hf://...` builds the page from the cache, offline, with the network's styles."""
    out = tmp_path / "page"
    args = ["web", "-o", str(out), "--model", "hf://someone/two-models/b.onnx", "--ort", str(fake_dist(tmp_path))]
    proc = nst([*args, "--backend", "wasm", "--json"], cache)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["models"] == ["b"]
    manifest = json.loads((out / "models.json").read_text())
    assert manifest["models"][0]["styles"] == ["coffee", "rocket", "chelsea"]
    assert (out / manifest["models"][0]["file"]).read_bytes() == (cache / "models--someone--two-models").joinpath(
        "snapshots", COMMIT, "b.onnx"
    ).read_bytes()


@pytest.mark.parametrize(
    ("name", "needle"),
    [
        ("hf://someone/not-cached", "not in the local Hugging Face cache"),
        ("hf://someone/tiny-style/other.onnx", "not in the local Hugging Face cache"),
        ("hf://someone/two-models", "holds 2 .onnx files at its root (a.onnx, b.onnx); name one"),
    ],
)
def test_what_cannot_be_had_offline_is_one_line(cache: Path, tmp_path: Path, name: str, needle: str) -> None:
    out = tmp_path / "out.png"
    proc = nst(["stylize", str(photo(tmp_path, size=40)), "--model", name, "-o", str(out)], cache)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and not out.exists() and len(lines) == 1, proc.stderr
    assert needle in lines[0] and name in lines[0], lines[0]
