"""Training speed of `nst train` against a plain pytorch/examples-style loop, measured in the same run.

Reference loop (pytorch/examples fast_neural_style/neural_style.py, transcribed): fp32, eager,
NCHW; ``y = net(x)``, then VGG over ``y`` and over ``x`` up to the deepest style layer, content
MSE at relu2_2, Gram MSE per style layer, ``Adam(lr=1e-3)`` with torch's default kernel.

Optimized loop: the trainer's own step (train.trainer.forward_loss / build_loss / make_optimizer):
content targets only up to relu2_2 under no_grad, one VGG pass over ``y`` for content and style,
VGG channels-last, fused Adam; optionally bf16 autocast and torch.compile (flags).

Same TransformerNet, same caffe VGG19, same layers and weights, same real photos (pre-cropped, so
JPEG decoding, which the trainer does in DataLoader workers, is not part of either number). The
two loops alternate step by step, so background load affects both alike. Medians of timed steps
after warm-up.

    python benchmarks/train_speed.py --batch-sizes 4,16 --size 256
    python benchmarks/train_speed.py --device cuda --batch-sizes 4,16 --steps 20 --bf16   # on a GPU
"""

from __future__ import annotations

import argparse
import contextlib
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


class Optimized:
    """The trainer's step (no DataLoader: both loops get the same tensors)."""

    def __init__(self, style: torch.Tensor, cfg: TrainConfig, bf16: bool, device: torch.device) -> None:
        torch.manual_seed(0)
        self.net = TransformerNet.from_variant(cfg.variant).to(device)
        self.loss = build_loss(cfg, style, device)
        self.opt = make_optimizer(self.net.parameters(), cfg, device)
        self.forward = torch.compile(self.net) if cfg.compile else self.net
        self.bf16, self.device = bf16, device

    def step(self, x: torch.Tensor) -> float:
        bf16 = torch.autocast(self.device.type, dtype=torch.bfloat16)
        ctx = bf16 if self.bf16 else contextlib.nullcontext()
        with ctx:
            terms = forward_loss(self.forward, self.loss, x)
        terms["total"].backward()
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        return float(terms["total"].detach())


def timed(fn, x) -> float:
    """Seconds of one step; each step ends in ``float(loss)``, which waits for the GPU."""
    t = time.perf_counter()
    fn(x)
    return time.perf_counter() - t


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch-sizes", default="4,16")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--steps", type=int, default=3, help="timed steps per loop and batch size")
    p.add_argument("--steps-large", type=int, default=None, help="timed steps for batch sizes >= 16 (time box)")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)")
    p.add_argument("--bf16", action="store_true", help="bf16 autocast in the optimized loop")
    p.add_argument("--compile", action="store_true", help="torch.compile the transformer in the optimized loop")
    p.add_argument("--device", default="cpu", help="cpu or cuda (both loops)")
    p.add_argument("--variant", default="standard", choices=("standard", "small"))
    p.add_argument("--photos", type=Path, default=SHARED / "photos")
    p.add_argument("--style", type=Path, default=SHARED / "styles" / "candy.jpg")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg, device = TrainConfig(compile=args.compile, variant=args.variant), torch.device(args.device)
    style_file = str(args.style) if args.style.is_file() else "skimage:coffee"
    style = load_image(style_file, size=args.size)
    print(f"machine: {describe(machine_info(args.device))}")
    loss = cfg.loss
    print(
        f"network {cfg.variant}, {cfg.vgg_weights} VGG19, {args.size} px, style {Path(style_file).name}, "
        f"photos {args.photos if args.photos.is_dir() else 'skimage'}; loss content {loss.content:g} "
        f"({','.join(loss.content_layers)}), style {loss.style:g} ({','.join(loss.style_layers)})"
    )
    print(
        f"optimized loop: content-only-to-relu2_2, single VGG pass, VGG channels-last, "
        f"fused Adam{', bf16 autocast' if args.bf16 else ''}{', torch.compile' if args.compile else ''}"
    )
    for bs in (int(b) for b in args.batch_sizes.split(",")):
        x = photos(args.photos, bs, args.size).to(device)
        ref, opt = Reference(style, cfg, device), Optimized(style, cfg, args.bf16, device)
        for _ in range(args.warmup):
            ref.step(x)
            opt.step(x)
        n = args.steps_large if (args.steps_large and bs >= 16) else args.steps
        tr, to = [], []
        for _ in range(n):  # alternate, so background load hits both loops alike
            tr.append(timed(ref.step, x))
            to.append(timed(opt.step, x))
        mr, mo = statistics.median(tr), statistics.median(to)
        print(
            f"batch {bs:3d}: reference {bs / mr:6.2f} img/s (median {mr:.2f} s/step of {n}: "
            f"{', '.join(f'{t:.2f}' for t in tr)}) | optimized {bs / mo:6.2f} img/s (median {mo:.2f} s/step: "
            f"{', '.join(f'{t:.2f}' for t in to)}) | speed-up {mr / mo:.2f}x",
            flush=True,
        )


if __name__ == "__main__":
    main()
