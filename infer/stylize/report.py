"""Reporting for `nst stylize`: the --info table, skipped files, and the summary as text (stderr) or --json (stdout)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from infer.stylize.plan import Plan, names
from infer.stylize.providers import short_provider
from infer.stylize.run import Outcome
from infer.stylize.stylizer import Stylizer, fmt_shape
from nst_core.log import LOG


def print_info(info: dict[str, Any]) -> None:
    """`Stylizer.info()` as aligned ``key  value`` rows, the ``nst.*`` metadata first."""
    meta = info["metadata"]
    exported = ", exported to ONNX in memory" if info.get("exported_on_load") else ""
    rows = [
        ("model", f"{info['model']} ({info['size_bytes'] / 1e6:.2f} MB{exported}, loaded in {info['load_ms']:.0f} ms)"),
        (
            "provider",
            f"{info['provider']} (available: {', '.join(short_provider(p) for p in info['providers_available'])})",
        ),
    ]
    if info.get("styles"):
        rows.append(("styles", f"{', '.join(info['styles'])} (--style NAME, or a blend NAME=W,NAME=W)"))
    rows += [("input", f"{i['name']}: {i['type']} {fmt_shape(i['shape'])}") for i in info["inputs"]]
    rows += [("output", f"{o['name']}: {o['type']} {fmt_shape(o['shape'])}") for o in info["outputs"]]
    for key in sorted(meta, key=lambda k: (not k.startswith("nst."), k)):
        value = meta[key]
        rows.append((key, json.dumps(value, sort_keys=True) if isinstance(value, dict | list) else str(value)))
    if not meta:
        rows.append(("metadata", "(none: not exported by `nst export`)"))
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")


def report_skipped(plan: Plan, args: argparse.Namespace) -> None:
    """One stderr line naming the folder files that are neither images nor videos (they are not stylized)."""
    if plan.skipped:
        LOG.warning(f"skipped {len(plan.skipped)} files that are neither images nor videos: {names(plan.skipped)}")


def summary(outcomes: list[Outcome], plan: Plan, stylizer: Stylizer, total_s: float) -> dict[str, Any]:
    """The --json object: outputs, per-image ms, errors, skipped files, provider and model."""
    done = [o for o in outcomes if o.error is None]
    images = []
    for o in done:
        entry: dict[str, Any] = {"input": o.source, "output": o.output, "ms": o.ms, "size": list(o.size or ())}
        entry.update({"frames": o.frames, **o.extra} if o.frames is not None else {"tiles": o.tiles})
        images.append(entry)
    return {
        "outputs": [o.output for o in done],
        "ms": [o.ms for o in done],
        "images": images,
        "errors": [{"input": o.source, "error": o.error} for o in outcomes if o.error is not None],
        "skipped": [str(p) for p in plan.skipped],
        "provider": stylizer.provider,
        "model": str(stylizer.model_path),
        "style": stylizer.style_name or stylizer.metadata.get("nst.style"),  # several styles: the one or blend painted
        "load_ms": round(stylizer.load_seconds * 1000, 1),
        "total_s": round(total_s, 3),
    }


def video_note(o: Outcome) -> str:
    """``12 frames, 40 ms/frame = 25.0 frames/s, sound: aac (copied)``: a video's line in the summary, then what
    --temporal cost and --flicker measured when asked."""
    rate, sound = o.extra.get("frames_per_second", 0), o.extra.get("audio") or "none"
    return f"{o.frames} frames, {o.ms:.0f} ms/frame = {rate:.1f} frames/s, sound: {sound}{temporal_note(o.extra)}"


def temporal_note(info: dict[str, Any]) -> str:
    """``, --temporal 0.7: 4.1 ms/frame, 93% followed, 1 scene cut, warping error 0.00213`` (only what ran)."""
    note = ""
    if "temporal" in info:
        cuts = info["scene_cuts"]
        note += f", --temporal {info['temporal']}: {info['temporal_ms_per_frame']:.1f} ms/frame"
        note += f", {info['temporal_followed']:.0%} followed, {cuts} scene cut{'s' * (cuts != 1)}"
    if "warping_error" in info:
        note += f", warping error {info['warping_error']:.5f}"
    return note


def print_summary(
    outcomes: list[Outcome], plan: Plan, stylizer: Stylizer, args: argparse.Namespace, total_s: float
) -> None:
    """One stderr line: how many inputs were stylized where (batch), or the one saved file."""
    done = [o for o in outcomes if o.error is None]
    if plan.batch:
        mean = sum(o.ms or 0 for o in done) / max(1, len(done))
        LOG.info(
            f"stylized {len(done)} of {len(outcomes)} inputs into {Path(args.output)} "
            f"({mean:.0f} ms per image/frame, {stylizer.provider}, {total_s:.1f}s in all)"
        )
    elif done and done[0].size is not None:
        o, (w, h) = done[0], done[0].size
        what = video_note(o) if o.frames is not None else f"{o.ms:.0f} ms"
        tiles = f", {o.tiles} tiles" if o.tiles > 1 else ""
        LOG.info(f"saved {o.output} ({w}x{h}, {what}{tiles}, {stylizer.provider})")


def report(outcomes: list[Outcome], plan: Plan, stylizer: Stylizer, args: argparse.Namespace, total_s: float) -> int:
    """Print the summary (--json on stdout, else text on stderr unless -q); exit status 1 if any input failed."""
    failed = sum(o.error is not None for o in outcomes)
    if args.json:
        print(json.dumps(summary(outcomes, plan, stylizer, total_s)))
    else:
        print_summary(outcomes, plan, stylizer, args, total_s)
    if failed:
        LOG.error(f"{failed} of {len(outcomes)} inputs failed")
        return 1
    return 0
