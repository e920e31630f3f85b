"""Video flicker, measured: the warping error (Lai et al. 2018) of shipped styles on moving test clips, frame by
frame against `--smooth` and `--temporal`, and what `--temporal` costs per frame, in one run.

Clips (`infer.temporal.clips`, 320x240, 48 frames, 24 fps) are made from photos the networks never saw: a pan,
a zoom with a turn, a hand-held wobble, a round piece of one photo crossing another (occlusions), and a cut
between two photos. Every method runs through `Stylizer.stylize_frames`, as `nst stylize` runs a video; the
warping error uses its own flow (DIS medium), not the filter's. The cost is timed on the pan clip without the
measure: the whole loop per frame (network and filter), plain and with `--temporal`, in interleaved rounds.

    python benchmarks/flicker.py                                   # 2 styles, 5 clips: ~3 min on 2 cores
    python benchmarks/flicker.py --styles starry_night_fast --variants --json runs/flicker.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from infer.stylize.stylizer import FrameOptions, Stylizer  # noqa: E402
from infer.temporal import FrameTemporal, TemporalFilter, camera_clip, cut_clip, object_clip  # noqa: E402
from nst_core.machine import describe, machine_info  # noqa: E402

PHOTOS = ROOT.parent / "shared" / "data" / "content"
SIZE, FRAMES = (320, 240), 48
#: method name -> (FrameOptions fields, TemporalFilter keywords or None)
METHODS: dict[str, tuple[dict, dict | None]] = {
    "per-frame": ({}, None),
    "smooth 0.5": ({"smooth": 0.5}, None),
    "smooth 0.9": ({"smooth": 0.9}, None),
    "temporal 0.5": ({"temporal": 0.5}, {}),
    "temporal 0.7": ({"temporal": 0.7}, {}),
    "temporal 0.8": ({"temporal": 0.8}, {}),
}
#: --variants: the filter's design choices, each alone against the default (strength 0.7).
VARIANTS: dict[str, tuple[dict, dict | None]] = {
    "0.7 with the forward-backward test": ({"temporal": 0.7}, {"forward_backward": True}),
    "0.7 flow at 160 px": ({"temporal": 0.7}, {"flow_side": 160}),
}


def clips(folder: Path) -> dict[str, list[np.ndarray]]:
    def photo(name: str) -> Image.Image:
        return Image.open(folder / name)

    return {
        "pan": camera_clip(photo("golden_gate.jpg"), "pan", FRAMES, SIZE),
        "zoom": camera_clip(photo("tubingen.jpg"), "zoom", FRAMES, SIZE),
        "handheld": camera_clip(photo("chicago.jpg"), "handheld", FRAMES, SIZE),
        "object": object_clip(photo("sailboat.jpg"), photo("tiger_bsd108005.jpg"), FRAMES, SIZE),
        "cut": cut_clip(photo("horses_pasture.jpg"), photo("amber.jpg"), FRAMES, SIZE),
    }


def temporal_for(options: FrameOptions, filter_kw: dict | None, measure: bool) -> FrameTemporal:
    temporal = FrameTemporal(0.0, measure)
    if filter_kw is not None:
        temporal.filter = TemporalFilter(options.temporal, **filter_kw)
    return temporal


def measure(stylizer: Stylizer, frames: list[np.ndarray], method: tuple[dict, dict | None]) -> dict:
    """One method over one clip: its warping error and the filter's own cost (with the measure running)."""
    options = FrameOptions(**method[0])
    temporal = temporal_for(options, method[1], measure=True)
    out = list(stylizer.stylize_frames(iter(frames), options, temporal))
    return {**temporal.summary(), "frames": len(out), "detail": detail(out)}


def detail(frames: list[np.ndarray]) -> float:
    """Mean absolute Laplacian of the frames' luma: the fine strokes a blend over frames can wash out (compared
    with per-frame stylization's, it says how much of the texture a method keeps)."""
    from infer.temporal.flow import gray, load_cv2

    cv2 = load_cv2()
    return round(float(np.mean([np.abs(cv2.Laplacian(gray(f), cv2.CV_32F)).mean() for f in frames])), 3)


def timed(frames: Iterator[np.ndarray]) -> list[float]:
    """Milliseconds between the frames a stream yields (the first, which warms up, left out)."""
    times, last = [], time.perf_counter()
    for _ in frames:
        now = time.perf_counter()
        times.append((now - last) * 1000)
        last = now
    return times[1:]


def cost(stylizer: Stylizer, frames: list[np.ndarray], rounds: int, methods: dict) -> dict:
    """What each --temporal method adds per frame on the pan clip, measured within its own runs (so the machine's
    drift between runs, which was larger than the filter's cost, cancels): the median of the filter's own time
    per frame (flow, tests, blend) over the median of the rest of the loop (network and conversions)."""
    out: dict[str, dict] = {}
    for name, (fields, filter_kw) in methods.items():
        if filter_kw is None:
            continue
        loop, filt = [], []
        for _ in range(rounds):
            options = FrameOptions(**fields)
            temporal = temporal_for(options, filter_kw, measure=False)
            loop.append(statistics.median(timed(stylizer.stylize_frames(iter(frames), options, temporal))))
            filt.append(statistics.median(temporal.filter.stats.ms))
        rest = statistics.median(loop) - statistics.median(filt)
        out[name] = {
            "filter_ms": round(statistics.median(filt), 2),
            "rest_ms": round(rest, 2),
            "added": round(statistics.median(filt) / rest, 3),
            "loop_ms": loop,
            "filter_ms_rounds": filt,
        }
    return out


def figures(stylizer: Stylizer, frames: list[np.ndarray], strip: Path, animation: Path) -> None:
    """A strip (four frames: the input, per frame, --smooth 0.5, --temporal 0.7; last column: where each differs
    from its previous frame moved along the motion, brighter is more flicker) and an animated comparison (per
    frame | --temporal 0.7) for the README."""
    from infer.temporal.flow import FlowEstimator, gray, sample

    runs = {
        name: list(stylizer.stylize_frames(iter(frames), FrameOptions(**METHODS[name][0])))
        for name in ("per-frame", "smooth 0.5", "temporal 0.7")
    }
    rows = {"input": frames, **runs}
    picked = range(20, 24)
    flow = FlowEstimator("medium")(gray(frames[23]), gray(frames[22]))
    w, h = SIZE
    sheet = Image.new("RGB", (5 * w + 110, 4 * h), "white")
    draw = ImageDraw.Draw(sheet)
    for r, (name, seq) in enumerate(rows.items()):
        draw.text((6, r * h + h // 2), name, fill="black")
        for c, i in enumerate(picked):
            sheet.paste(Image.fromarray(seq[i]), (110 + c * w, r * h))
        moved = sample(seq[22].astype(np.float32), flow)
        heat = np.clip(np.abs(seq[23].astype(np.float32) - moved).mean(-1) * 4, 0, 255).astype(np.uint8)
        sheet.paste(Image.fromarray(heat).convert("RGB"), (110 + 4 * w, r * h))
    sheet.save(strip, quality=88)
    images = []
    for a, b in zip(runs["per-frame"], runs["temporal 0.7"], strict=True):
        pair = Image.fromarray(np.concatenate([a, np.full((h, 8, 3), 255, np.uint8), b], 1))
        draw = ImageDraw.Draw(pair)
        for x, label in ((0, "frame by frame"), (w + 8, "--temporal 0.7")):
            draw.rectangle((x, 0, x + 7 * len(label) + 8, 16), fill="black")
            draw.text((x + 4, 2), label, fill="white")
        images.append(pair)
    images[0].save(
        animation, save_all=True, append_images=images[1:], duration=1000 // 24, loop=0, quality=40, method=6
    )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--styles", nargs="+", default=["starry_night_fast", "udnie_fast"], help="shipped models")
    p.add_argument("--photos", type=Path, default=PHOTOS, help="a folder with the clips' photos")
    p.add_argument("--threads", type=int, default=2, help="onnxruntime threads")
    p.add_argument("--precision", default="auto", help="auto (a shipped int8 copy on the CPU) or fp32")
    p.add_argument(
        "--rounds", type=int, default=3, help="interleaved timing rounds (0: no timing, e.g. beside another job)"
    )
    p.add_argument("--variants", action="store_true", help="also the filter's design choices (VARIANTS)")
    p.add_argument("--json", type=Path, help="write the rows here")
    p.add_argument("--figures", type=Path, help="a folder for the strip and the animation (first style, object clip)")
    args = p.parse_args()
    info = machine_info()
    print(
        f"# {describe(info)}; clips {SIZE[0]}x{SIZE[1]}, {FRAMES} frames; onnxruntime {args.threads} threads, "
        f"precision {args.precision}",
        file=sys.stderr,
    )
    made = clips(args.photos)
    methods = {**METHODS, **(VARIANTS if args.variants else {})}
    rows, costs = [], {}
    for style in args.styles:
        stylizer = Stylizer(style, threads=args.threads, precision=args.precision, spinning=False)  # as nst does
        for clip, frames in made.items():
            for name, method in methods.items():
                row = {"style": style, "clip": clip, "method": name, **measure(stylizer, frames, method)}
                rows.append(row)
                print(json.dumps(row), file=sys.stderr)
        if args.rounds:
            costs[style] = cost(stylizer, made["pan"], args.rounds, methods)
            print(json.dumps({"style": style, **costs[style]}), file=sys.stderr)
    table(rows, costs, methods)
    if args.figures:
        args.figures.mkdir(parents=True, exist_ok=True)
        first = Stylizer(args.styles[0], threads=args.threads, precision=args.precision)
        figures(first, made["object"], args.figures / "flicker_strip.jpg", args.figures / "flicker.webp")
    if args.json:
        args.json.write_text(
            json.dumps({"machine": info, "size": SIZE, "frames": FRAMES, "rows": rows, "cost": costs}, indent=1)
        )
    return 0


def table(rows: list[dict], costs: dict, methods: dict) -> None:
    """Markdown: warping error per style and clip, each method's ratio to per-frame; then the cost."""
    clip_names = list(dict.fromkeys(r["clip"] for r in rows))
    print("| style | method | " + " | ".join(clip_names) + " | median ratio to per-frame | detail kept |")
    print("|---|---|" + "---|" * (len(clip_names) + 2))
    for style in dict.fromkeys(r["style"] for r in rows):
        mine = [r for r in rows if r["style"] == style]
        base = {r["clip"]: r for r in mine if r["method"] == "per-frame"}
        for name in methods:
            got = {r["clip"]: r for r in mine if r["method"] == name}
            ratio = statistics.median(base[c]["warping_error"] / got[c]["warping_error"] for c in clip_names)
            kept = statistics.median(got[c]["detail"] / base[c]["detail"] for c in clip_names)
            cells = " | ".join(f"{got[c]['warping_error']:.4f}" for c in clip_names)
            print(f"| {style} | {name} | {cells} | {ratio:.1f}x lower | {kept:.0%} |")
    print()
    for style, c in costs.items():
        cells = ", ".join(f"{n}: {v['filter_ms']} ms on {v['rest_ms']} (+{v['added']:.0%})" for n, v in c.items())
        print(f"{style}, pan clip, filter ms per frame on the rest of the loop's: {cells}")


if __name__ == "__main__":
    raise SystemExit(main())
