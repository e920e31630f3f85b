"""One network of several styles against the single-style networks it replaces: held-out loss, latency, pictures.

For each style of MULTI, the network it replaces (``{style}{--single-suffix}``, default the shipped ``_fast`` one)
and their common teacher (the shipped ``{style}`` network) on held-out photos:

- the held-out loss: both students were trained to reproduce the teacher's picture (pixel L1, `nst train --teacher`),
  so each is scored by its mean L1 to the teacher over the photos, one pass at ``--size`` px, fp32;
- latency: onnxruntime, one 512x512 image, the two networks interleaved in the same run, medians (fp32, and the
  int8 copies where both have one);
- a contact sheet (photo | single-style network | the same style of MULTI, a row per style) and a strip of five
  blends between two styles (0, 0.25, 0.5, 0.75, 1), written as JPEG.

    python benchmarks/multi_style.py infer/models/six_styles_fast.onnx --photos held_out_photos/ --json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from infer.models.shipped import int8_copy, resolve_model  # noqa: E402
from infer.stylize.stylizer import Stylizer  # noqa: E402
from nst_core.image_io import array_to_pil, open_image, pil_to_array, resize_longer, scan_images  # noqa: E402
from nst_core.machine import describe, machine_info  # noqa: E402

DEFAULT_PHOTOS = ROOT.parent / "shared" / "data" / "photos"


def photo_arrays(folder: Path, count: int, size: int) -> list[np.ndarray]:
    """The first ``count`` photos of ``folder`` (sorted), longer side ``size``, as (1, 3, H, W) arrays."""
    files = scan_images(folder)[0][:count]
    return [pil_to_array(resize_longer(open_image(f), size))[None] for f in files]


def held_out_l1(student: Stylizer, teacher: Stylizer, photos: list[np.ndarray], style: np.ndarray | None) -> float:
    """Mean absolute difference (0-1) between ``student``'s picture and ``teacher``'s, over ``photos``."""
    errors = [float(np.abs(student.run_array(x, style) - teacher.run_array(x)).mean()) for x in photos]
    return statistics.fmean(errors)


def latency(single: Stylizer, multi: Stylizer, style: np.ndarray, repeats: int, side: int = 512) -> tuple[float, float]:
    """Median ms of one ``side`` x ``side`` image through each, interleaved (one of each per round)."""
    x = np.random.default_rng(0).random((1, 3, side, side), dtype=np.float32)
    for _ in range(3):  # warm-up
        single.run_array(x), multi.run_array(x, style)
    a, b = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        single.run_array(x)
        t1 = time.perf_counter()
        multi.run_array(x, style)
        t2 = time.perf_counter()
        a.append((t1 - t0) * 1000)
        b.append((t2 - t1) * 1000)
    return statistics.median(a), statistics.median(b)


def grid(rows: list[list[Image.Image]], gap: int = 6) -> Image.Image:
    """Rows of equally sized pictures on white."""
    w, h = rows[0][0].size
    canvas = Image.new("RGB", (len(rows[0]) * (w + gap) + gap, len(rows) * (h + gap) + gap), "white")
    for r, row in enumerate(rows):
        for c, picture in enumerate(row):
            canvas.paste(picture, (gap + c * (w + gap), gap + r * (h + gap)))
    return canvas


def contact_sheet(multi: Stylizer, singles: dict[str, Stylizer], photo: np.ndarray) -> Image.Image:
    """A row per style: the photo, the single-style network's picture, the multi-style network's."""
    rows = []
    for name, single in singles.items():
        ours = multi.run_array(photo, multi.style_weights(name))[0]
        rows.append([array_to_pil(photo[0]), array_to_pil(single.run_array(photo)[0]), array_to_pil(ours)])
    return grid(rows)


def blend_strip(multi: Stylizer, photo: np.ndarray, a: str, b: str) -> Image.Image:
    """The photo, then five blends from ``a`` alone to ``b`` alone."""
    pictures = [array_to_pil(photo[0])]
    for t in (0.0, 0.25, 0.5, 0.75, 1.0):
        weights = multi.style_weights({a: 1.0 - t, b: t})
        pictures.append(array_to_pil(multi.run_array(photo, weights)[0]))
    return grid([pictures])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("multi", help="the network of several styles (.onnx, shipped name, run folder)")
    p.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS, help="held-out photos (never trained on)")
    p.add_argument("--count", type=int, default=24, help="photos scored")
    p.add_argument("--size", type=int, default=256, help="longer side of the scored photos")
    p.add_argument("--single-suffix", default="_fast", help="the single-style network of style S is S + this")
    p.add_argument("--repeats", type=int, default=30, help="timed runs per network (medians)")
    p.add_argument("--blend", nargs=2, metavar=("A", "B"), help="the two styles of the blend strip")
    p.add_argument("--strip-photo", default="chelsea", help="the blend strip's photo (default: a shipped demo photo)")
    p.add_argument("--sheet", type=Path, default=ROOT / "benchmarks/figures/multi_style_sheet.jpg")
    p.add_argument("--strip", type=Path, default=ROOT / "docs/images/blend_strip.jpg")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = p.parse_args()

    multi = Stylizer(args.multi, provider="cpu", precision="fp32")
    photos = photo_arrays(args.photos, args.count, args.size)
    singles = {s: Stylizer(f"{s}{args.single_suffix}", provider="cpu", precision="fp32") for s in multi.styles}
    print(
        f"# {describe(machine_info())}; {len(photos)} photos of {args.photos.name} at {args.size} px", file=sys.stderr
    )
    rows = []
    for name, single in singles.items():
        teacher = Stylizer(name, provider="cpu", precision="fp32")
        mine, theirs = (
            held_out_l1(multi, teacher, photos, multi.style_weights(name)),
            held_out_l1(single, teacher, photos, None),
        )
        fp32 = latency(single, multi, multi.style_weights(name), args.repeats)
        row = {"style": name, "l1_multi": mine, "l1_single": theirs, "ratio": mine / theirs}
        row |= {"ms_single_fp32": fp32[0], "ms_multi_fp32": fp32[1]}
        multi_int8, single_int8 = (
            int8_copy(Path(resolve_model(args.multi))),
            int8_copy(Path(resolve_model(single.model_path))),
        )
        if multi_int8 and single_int8:
            a, b = (
                Stylizer(single_int8, provider="cpu", precision="fp32"),
                Stylizer(multi_int8, provider="cpu", precision="fp32"),
            )
            row["ms_single_int8"], row["ms_multi_int8"] = latency(a, b, b.style_weights(name), args.repeats)
        rows.append(row)
        print(
            f"{name:16s} L1 to teacher: multi {mine:.4f}, single {theirs:.4f} ({mine / theirs:.2f}x); "
            f"512 px fp32: single {fp32[0]:.1f} ms, multi {fp32[1]:.1f} ms"
            + (
                f"; int8: single {row['ms_single_int8']:.1f}, multi {row['ms_multi_int8']:.1f} ms"
                if "ms_multi_int8" in row
                else ""
            ),
            file=sys.stderr,
        )
    sheet_photo = photo_arrays(args.photos, args.count + 1, 256)[-1]  # one not scored above
    contact_sheet(multi, singles, sheet_photo).save(args.sheet, quality=90)
    a, b = args.blend or multi.styles[:2]
    strip_photo = pil_to_array(resize_longer(open_image(args.strip_photo), 256))[None]
    blend_strip(multi, strip_photo, a, b).save(args.strip, quality=90)
    sizes = {"multi_bytes": Path(resolve_model(args.multi)).stat().st_size}
    sizes["singles_bytes"] = sum(s.model_path.stat().st_size for s in singles.values())
    summary = {"machine": machine_info(), "photos": len(photos), "size": args.size, "styles": rows, **sizes}
    if args.json:
        print(json.dumps(summary))


if __name__ == "__main__":
    main()
