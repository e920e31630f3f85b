"""Maintainer tool: the int8 copies of shipped models, which `Stylizer` runs on the CPU (``infer/models/int8/``).

Each copy is the shipped ONNX file quantized statically (`infer.export.precision.int8_model`: int8 convolution
weights per channel, uint8 activations, calibrated on the built-in photos), with the file's own metadata but
``nst.precision: int8``, written atomically. Then it prints how far the copy's pictures are
from the fp32 file's on ``--photos`` at 512 px (mean absolute difference, PSNR). Before shipping a copy, check
it by the optimizer's yardstick too: ``benchmarks/match_iterations.py COPY --style PAINTING`` should give the
fp32 file's iterations (the _fast copies: within one, benchmarks/README.md "int8 on the CPU").

    python tools/int8.py infer/models/*_fast.onnx --photos held_out_photos/
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from infer.models.shipped import INT8_DIR  # noqa: E402
from nst_core.cli import OneLineParser, exit_status  # noqa: E402
from nst_core.errors import NSTError  # noqa: E402
from nst_core.files import atomic_path  # noqa: E402

PRECISION_KEY = "nst.precision"


def make_copy(src: Path) -> Path:
    """``src``'s int8 copy in ``src``'s folder's int8/ sub-folder, its metadata kept; returns its path."""
    import onnx

    from infer.export.precision import calibration_images, int8_model

    dest = src.parent / INT8_DIR / src.name
    dest.parent.mkdir(exist_ok=True)
    fp32 = onnx.load(str(src))
    quantized = int8_model(fp32, calibration_images(None), dest)
    del quantized.metadata_props[:]
    for prop in fp32.metadata_props:
        if prop.key != PRECISION_KEY:
            quantized.metadata_props.add(key=prop.key, value=prop.value)
    quantized.metadata_props.add(key=PRECISION_KEY, value="int8")
    with atomic_path(dest) as tmp:
        onnx.save(quantized, str(tmp))
    return dest


def distance(src: Path, copy: Path, photos: list[Path], size: int = 512) -> tuple[float, float]:
    """Mean absolute difference (0-255) and median PSNR (dB) of the copy's pictures against ``src``'s."""
    from infer.stylize.stylizer import Stylizer

    a, b = Stylizer(src, precision="fp32"), Stylizer(copy, precision="fp32")
    diffs, psnrs = [], []
    for photo in photos:
        x = np.asarray(a.stylize(photo, size=size), np.float32)
        y = np.asarray(b.stylize(photo, size=size), np.float32)
        diffs.append(float(np.abs(x - y).mean()))
        psnrs.append(float(10 * np.log10(255.0**2 / max(1e-9, float(((x - y) ** 2).mean())))))
    return statistics.fmean(diffs), statistics.median(psnrs)


def main() -> int:
    p = OneLineParser(prog="tools/int8.py", description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="+", type=Path, help="shipped .onnx files")
    p.add_argument("--photos", type=Path, help="a folder of photos to compare the copies on (jpg/png)")
    args = p.parse_args()
    for src in args.models:
        if not src.is_file():
            raise NSTError(f"{src}: no such model file")
    photos = sorted(q for q in args.photos.iterdir() if q.suffix.lower() in (".jpg", ".png")) if args.photos else []
    for src in args.models:
        copy = make_copy(src)
        sizes = f"{copy.stat().st_size / 1e3:.0f} kB (fp32: {src.stat().st_size / 1e3:.0f} kB)"
        if photos:
            mean, psnr = distance(src, copy, photos)
            sizes += f"; against fp32 at 512 px: mean |diff| {mean:.2f}/255, PSNR {psnr:.1f} dB ({len(photos)} photos)"
        print(f"{copy}: {sizes}")
    return 0


if __name__ == "__main__":
    raise SystemExit(exit_status(main))
