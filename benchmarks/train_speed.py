"""Training speed of `nst train` against a plain pytorch/examples-style loop, measured in the same run.

Reference loop (pytorch/examples fast_neural_style/neural_style.py, transcribed): fp32, eager,
NCHW; ``y = net(x)``, then VGG over ``y`` and over ``x`` up to the deepest style layer, content
MSE at relu2_2, Gram MSE per style layer, ``Adam(lr=1e-3)`` with torch's default kernel.

Variants: the trainer's own step (train.trainer.forward_loss / build_loss / make_optimizer: content
targets only up to relu2_2 under no_grad, one VGG pass over ``y`` for content and style, VGG
channels-last, fused Adam), alone (``fp32``) and with one more lever each (``VARIANTS``: bf16 autocast,
VGG weights stored in bf16, the transformer channels-last, torch.compile of the transformer or of the
whole forward). Every loop starts from the same weights on the same batch: the first step's loss of each
is printed beside the reference's (the lever's numerical effect).

Same TransformerNet, same caffe VGG19, same layers and weights, same real photos (pre-cropped, so
JPEG decoding, which the trainer does in DataLoader workers, is not part of either number). The
loops alternate step by step, so background load affects all alike. Medians of timed steps after warm-up.

    python benchmarks/train_speed.py --sizes 128,256 --variants fp32,bf16,bf16+vgg-bf16,bf16+compile-step
    python benchmarks/train_speed.py --device cuda --batch-sizes 4,16 --steps 20 --variants bf16   # on a GPU
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nst_core.image_io import center_crop, load_image, open_image, pil_to_tensor, scan_images  # noqa: E402
from nst_core.losses.vgg import VGGFeatures  # noqa: E402
from nst_core.machine import describe, machine_info  # noqa: E402
from nst_core.transformer import TransformerNet  # noqa: E402
from train.config import TrainConfig  # noqa: E402
from train.trainer import build_loss, forward_loss, make_optimizer  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"


def photos(folder: Path | None, count: int, size: int) -> torch.Tensor:
    if folder is None or not folder.is_dir():
        files = [f"skimage:{n}" for n in ("astronaut", "chelsea", "rocket", "motorcycle_left")]
    else:
        files = scan_images(folder)[0]
    out = [pil_to_tensor(center_crop(open_image(f), size)) for f in files[:count]]
    while len(out) < count:
        out += out[: count - len(out)]
    return torch.stack(out)


def gram(f: torch.Tensor) -> torch.Tensor:
    b, c, h, w = f.shape
    f = f.view(b, c, h * w)
    return f.bmm(f.transpose(1, 2)) / (c * h * w)


class Reference:
    """pytorch/examples' training step, same network/VGG/layers/weights as the trainer (``cfg.loss``)."""

    def __init__(self, style: torch.Tensor, cfg: TrainConfig, device: torch.device) -> None:
        torch.manual_seed(0)
        self.net = TransformerNet.from_variant(cfg.variant).to(device)
        self.loss = cfg.loss
        names = [*self.loss.content_layers, *self.loss.style_layers]
        self.vgg = VGGFeatures(names, weights=cfg.vgg_weights).to(device)
        self.opt = torch.optim.Adam(self.net.parameters(), cfg.lr)
        with torch.no_grad():
            feats = self.vgg(style.unsqueeze(0).to(device))
        self.gram_style = {n: gram(feats[n]) for n in self.loss.style_layers}

    def step(self, x: torch.Tensor) -> float:
        self.opt.zero_grad()
        y = self.net(x)
        features_y = self.vgg(y)
        features_x = self.vgg(x)
        w = self.loss
        content = sum(F.mse_loss(features_y[n], features_x[n]) for n in w.content_layers)
        style = sum(
            w.layer_weights[n] * F.mse_loss(gram(features_y[n]), self.gram_style[n].expand(len(x), -1, -1))
            for n in w.style_layers
        )
        total = w.content * content + w.style * style
        total.backward()
        self.opt.step()
        return float(total.detach())


#: The levers, each measured alone on top of the trainer's step (fp32): name -> Optimized keyword arguments.
VARIANTS = {
    "fp32": {},
    "bf16": {"bf16": True},
    "bf16+vgg-bf16": {"bf16": True, "vgg_bf16": True},
    "bf16+net-cl": {"bf16": True, "net_channels_last": True},
    "bf16+compile-net": {"bf16": True, "compile": "net"},
    "bf16+compile-step": {"bf16": True, "compile": "step"},
}


class Optimized:
    """The trainer's step (no DataLoader: both loops get the same tensors), with one lever or another.

    ``bf16``: autocast; ``vgg_bf16``: the frozen VGG's weights stored in bf16 (no cast per step);
    ``net_channels_last``: the transformer channels-last too; ``compile``: torch.compile of the transformer
    (``net``) or of the whole forward, network and loss (``step``; AOTAutograd compiles the backward).
    """

    def __init__(
        self,
        style: torch.Tensor,
        cfg: TrainConfig,
        device: torch.device,
        bf16: bool = False,
        vgg_bf16: bool = False,
        net_channels_last: bool = False,
        compile: str | None = None,
    ) -> None:
        torch.manual_seed(0)
        memory = torch.channels_last if net_channels_last else torch.contiguous_format
        self.net = TransformerNet.from_variant(cfg.variant).to(device, memory_format=memory)
        self.loss = build_loss(cfg, style, device)
        if vgg_bf16:
            self.loss.encoder.to(torch.bfloat16)
        self.opt = make_optimizer(self.net.parameters(), cfg, device)
        self.bf16, self.device, self.memory = bf16, device, memory
        net = torch.compile(self.net) if compile == "net" else self.net
        forward = functools.partial(forward_loss, net, self.loss, net_memory=memory)
        self.forward = torch.compile(forward) if compile == "step" else forward

    def step(self, x: torch.Tensor) -> float:
        bf16 = torch.autocast(self.device.type, dtype=torch.bfloat16)
        with bf16 if self.bf16 else contextlib.nullcontext():
            terms = self.forward(x)
        terms["total"].backward()
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        return float(terms["total"].detach())


def timed(fn, x) -> float:
    """Seconds of one step; each step ends in ``float(loss)``, which waits for the GPU."""
    t = time.perf_counter()
    fn(x)
    return time.perf_counter() - t


def measure(size: int, bs: int, variants: list[str], args: argparse.Namespace, cfg: TrainConfig) -> None:
    """The reference and each variant at one size and batch, interleaved step by step; medians and the first
    timed step's loss of each (all start from the same weights and see the same batch)."""
    device = torch.device(args.device)
    style_file = str(args.style) if args.style.is_file() else "skimage:coffee"
    style = load_image(style_file, size=size)
    x = photos(args.photos, bs, size).to(device)
    loops = {"reference": Reference(style, cfg, device)}
    loops |= {v: Optimized(style, cfg, device, **VARIANTS[v]) for v in variants}
    first_loss = {name: loop.step(x) for name, loop in loops.items()}  # step 1, from the same weights
    for _ in range(args.warmup):
        for loop in loops.values():
            loop.step(x)
    times: dict[str, list[float]] = {name: [] for name in loops}
    for _ in range(args.steps):  # interleaved, so background load hits every loop alike
        for name, loop in loops.items():
            times[name].append(timed(loop.step, x))
    ref = statistics.median(times["reference"])
    for name, ts in times.items():
        med = statistics.median(ts)
        rel = (first_loss[name] - first_loss["reference"]) / first_loss["reference"]
        print(
            f"{size} px, batch {bs}: {name:18s} {bs / med:6.2f} img/s  median {med:.3f} s/step of {len(ts)} "
            f"({', '.join(f'{t:.2f}' for t in ts)})  speed-up {ref / med:.2f}x  step-1 loss {first_loss[name]:.6g} "
            f"({rel:+.2e} vs reference)",
            flush=True,
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch-sizes", default="4")
    p.add_argument("--sizes", default="256", help="crop sizes, comma-separated")
    p.add_argument("--variants", default="fp32,bf16", help=f"of {', '.join(VARIANTS)}")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps after the first (compilation happens here)")
    p.add_argument("--steps", type=int, default=3, help="timed steps per loop")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (every loop)")
    p.add_argument("--variant", default="standard", choices=("standard", "small"))
    p.add_argument("--photos", type=Path, default=SHARED / "photos")
    p.add_argument("--style", type=Path, default=SHARED / "styles" / "candy.jpg")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = TrainConfig(variant=args.variant)
    variants = args.variants.split(",")
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        p.error(f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
    threads = torch.get_num_threads()
    print(f"machine: {describe(machine_info(args.device))}; torch {torch.__version__}, {threads} threads")
    loss = cfg.loss
    print(
        f"network {cfg.variant}, {cfg.vgg_weights} VGG19, style {args.style.name}, photos "
        f"{args.photos if args.photos.is_dir() else 'skimage'}; loss content {loss.content:g} "
        f"({','.join(loss.content_layers)}), style {loss.style:g} ({','.join(loss.style_layers)}); every variant "
        "is the trainer's step (content targets to relu2_2 only, one VGG pass over the output, VGG channels-last, "
        "fused Adam) plus its lever"
    )
    for size in (int(s) for s in args.sizes.split(",")):
        for bs in (int(b) for b in args.batch_sizes.split(",")):
            measure(size, bs, variants, args, cfg)


if __name__ == "__main__":
    main()
