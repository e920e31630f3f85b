"""PerceptualLoss value and image gradient on a large image, by tiles, in bounded memory.

A whole-image VGG19 forward+backward at 2048x1536 px peaks at 10 GB (CPU); posters need 4096 px. The
style term is a function of whole-image Gram matrices, so it cannot be split into independent per-tile
losses, but its gradient can, exactly, in two passes:

1. no grad: run VGG tile by tile (each tile with a ``halo`` of context pixels), keep each layer's
   features of the tile's own *core* only, sum F F^T over the cores into the whole image's Grams,
   sum the content squared errors; then the loss and dL/dG per style layer (autograd on G).
2. with grad, tile by tile: backward the surrogate <dL/dG, F_core F_core^T / (C H W)> + the core's
   share of the content MSE, and add the gradient of the tile+halo input into the image's gradient.

The cores partition every layer's feature grid (tile edges are multiples of the deepest layer's
stride), so both passes are exact whenever the halo covers the receptive field of the core (`exact_halo`,
80 px to relu5_1); with a smaller halo only the reflection padding at the halo's cut edge leaks in
(measured: gradient relative error ~3e-7 at halo 64, ~3e-5 at 32, 0.3-0.5 at 0).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch

from nst_core.errors import NSTError
from nst_core.losses.perceptual import PerceptualLoss, blend_weights, style_loss, total_variation
from nst_core.losses.weights import layer_names

#: Context pixels around each tile for the default layers (up to relu5_1): the exact halo, see `exact_halo`.
DEFAULT_HALO = 80
# Peak-memory model of `estimate_bytes`, fitted to benchmarks/tiled_memory.py (peak RSS, float32, CPU):
# whole image 512-2048 px, and 2048x1536 / 4096x3072 px in 512 and 1024 px tiles; each rounded up.
#: Per pixel of a tile's region (core + halo): a caffe-VGG19 forward+backward to relu5_1 (3020 B fitted).
BYTES_PER_PIXEL = 3100
#: Per pixel of a tile's core: the style layers' cropped feature copies kept for the backward (394 B fitted).
CORE_BYTES_PER_PIXEL = 400
#: Per pixel of the whole image: image, gradient, content image, relu4_2 targets, stitching (85 B fitted).
IMAGE_BYTES_PER_PIXEL = 96
#: Peak RSS besides these: torch, the VGG weights, style targets, allocator (824-954 MiB fitted).
BASE_BYTES = 2**30

GradIf = Callable[[dict[str, float]], bool]


@dataclass(frozen=True)
class Tile:
    """A tile's core (the pixels whose features it owns) and its region (core plus halo), as (y0, y1, x0, x1)."""

    core: tuple[int, int, int, int]
    region: tuple[int, int, int, int]


def layer_stride(name: str, arch: str = "vgg19") -> int:
    """Pixels per feature position of a VGG layer: 2 to the number of pools up to and including it."""
    names = layer_names(arch)
    return 2 ** sum(n.startswith("pool") for n in names[: names.index(name) + 1])


def receptive_radius(name: str, arch: str = "vgg19") -> int:
    """Pixels beyond its own stride-sized block that a VGG layer's feature sees (relu5_1: 70, relu4_2: 38).

    A tile whose halo is at least this wide computes its core's features exactly: the reflection
    padding at the halo's cut edge cannot reach them.
    """
    names, rf, jump = layer_names(arch), 1, 1
    for n in names[: names.index(name) + 1]:
        if n.startswith("conv"):
            rf += 2 * jump
        elif n.startswith("pool"):
            rf, jump = rf + jump, jump * 2
    return (rf - jump) // 2


def exact_halo(layers: list[str], arch: str = "vgg19", align: int = 16) -> int:
    """The smallest halo, a multiple of ``align``, that makes the tiled loss exact for these layers."""
    radius = max(receptive_radius(name, arch) for name in layers)
    return -(-radius // align) * align


def tile_spans(length: int, tile: int, align: int) -> list[tuple[int, int]]:
    """Split [0, length) into about equal spans of about ``tile``, inner edges on multiples of ``align``.

    Edges are placed on the ``length // align`` whole align-units, so the last span (which also
    takes the remainder) is never shorter than ``align``.
    """
    n, units = max(1, math.ceil(length / tile)), length // align
    edges = sorted({0, length, *(align * round(k * units / n) for k in range(1, n))})
    return list(itertools.pairwise(edges))


def tile_grid(h: int, w: int, tile: int, halo: int, align: int) -> list[Tile]:
    """Tiles covering an h x w image; regions are clipped at the border, so there the padding is the image's own."""
    tiles = []
    for y0, y1 in tile_spans(h, tile, align):
        for x0, x1 in tile_spans(w, tile, align):
            region = (max(0, y0 - halo), min(h, y1 + halo), max(0, x0 - halo), min(w, x1 + halo))
            tiles.append(Tile((y0, y1, x0, x1), region))
    return tiles


def estimate_bytes(h: int, w: int, tile: int | None, halo: int = DEFAULT_HALO, align: int = 16) -> int:
    """Peak process memory of one value_and_grad on an h x w image (no tiling when ``tile`` is None).

    Errs high: measured peaks were 90-94% of it in tiles, 86-96% whole-image (512-2048 px).
    """
    if tile is None or (h <= tile and w <= tile):
        return BASE_BYTES + (BYTES_PER_PIXEL + IMAGE_BYTES_PER_PIXEL) * h * w
    ys, xs = (_extents(n, tile, halo, align) for n in (h, w))
    per_tile = max(BYTES_PER_PIXEL * ry * rx + CORE_BYTES_PER_PIXEL * cy * cx for ry, cy in ys for rx, cx in xs)
    return BASE_BYTES + per_tile + IMAGE_BYTES_PER_PIXEL * h * w


def _extents(length: int, tile: int, halo: int, align: int) -> set[tuple[int, int]]:
    """The distinct (region, core) lengths of the tiles along one side (a tile is one from each side)."""
    return {(min(length, b + halo) - max(0, a - halo), b - a) for a, b in tile_spans(length, tile, align)}


def plan_tiles(h: int, w: int, budget_bytes: int, halo: int = DEFAULT_HALO, align: int = 16) -> int | None:
    """The tile side for an h x w image to fit ``budget_bytes``: None when the whole image fits untiled.

    Splits the longer side in 2, 3, ... tiles and returns the first (largest) tile that fits, a multiple
    of ``align``: fewest tiles, as each one recomputes its halo. NSTError when even ``align`` px tiles do not fit.
    """
    if estimate_bytes(h, w, None, halo, align) <= budget_bytes:
        return None
    longer = max(h, w)
    for n in range(2, longer // align + 1):
        tile = align * math.ceil(longer / (n * align))
        if estimate_bytes(h, w, tile, halo, align) <= budget_bytes:
            return tile
    raise NSTError(f"a {w}x{h} image does not fit {budget_bytes / 2**30:.1f} GiB even in {align} px tiles")


def _crop(feat: torch.Tensor, tile: Tile, stride: int) -> torch.Tensor:
    """The core's part of a region's feature map (``stride``: the layer's pixels per feature)."""
    (y0, y1, x0, x1), (ry, _, rx, _) = tile.core, tile.region
    s = stride  # inner edges are multiples of s; at the image's end, // floors like the pooling does
    return feat[..., y0 // s - ry // s : y1 // s - ry // s, x0 // s - rx // s : x1 // s - rx // s]


def _at_core(full: torch.Tensor, tile: Tile, stride: int, core: torch.Tensor) -> torch.Tensor:
    """The view of a whole image's feature map ``full`` where a tile's ``core`` features belong."""
    y0, x0 = tile.core[0] // stride, tile.core[2] // stride
    return full[..., y0 : y0 + core.shape[-2], x0 : x0 + core.shape[-1]]


def _gram_norm(channels: int, size: tuple[int, int], stride: int) -> int:
    """`gram_matrix`'s C*H*W for a layer of ``stride`` over the whole image, whatever tile the features came from."""
    return channels * (size[0] // stride) * (size[1] // stride)


def _region(image: torch.Tensor, tile: Tile) -> torch.Tensor:
    y0, y1, x0, x1 = tile.region
    return image[..., y0:y1, x0:x1]


class TiledLoss:
    """``PerceptualLoss`` terms and d total / d image computed by tiles of ``tile`` px with ``halo`` px of context.

    ``tile=None`` (or an image no larger than one tile) runs the wrapped loss directly. ``halo=None``
    takes `exact_halo` of the encoder's layers (80 px up to relu5_1). Batch 1.
    """

    def __init__(self, loss: PerceptualLoss, tile: int | None = 512, halo: int | None = None) -> None:
        self.loss = loss
        encoder = loss.encoder
        self.align = encoder.min_side
        if tile is not None and (tile <= 0 or tile % self.align):
            raise NSTError(f"tile must be a positive multiple of {self.align} px, got {tile}")
        halo = exact_halo(encoder.layers, encoder.arch, self.align) if halo is None else halo
        if halo < 0 or halo % self.align:
            raise NSTError(f"halo must be a multiple of {self.align} px (>= 0), got {halo}")
        self.tile, self.halo = tile, halo
        self.strides = {name: layer_stride(name, encoder.arch) for name in encoder.layers}

    def tiles(self, h: int, w: int) -> list[Tile]:
        """The tiles used for an h x w image (one, without halo, when it is not tiled)."""
        if self.tile is None or (h <= self.tile and w <= self.tile):
            return [Tile((0, h, 0, w), (0, h, 0, w))]
        return tile_grid(h, w, self.tile, self.halo, self.align)

    @torch.no_grad()
    def set_style(self, styles: Sequence[torch.Tensor], blend: Sequence[float] | None = None) -> None:
        """``PerceptualLoss.set_style`` with each style's Grams summed tile by tile.

        The optimizer scales the style image with the output (``style_scale``), and a whole-image
        no-grad VGG pass to relu5_1 peaks 1.03-1.07 kB per pixel above its start (four relu1-sized
        maps alive; measured 512-2048 px): about 17 GB at 4096 px.
        """
        weights = blend_weights(len(styles), blend)
        grams: dict[str, torch.Tensor] = {}
        for w, style in zip(weights, styles if self.loss.weights.style_layers else ()):
            batch = style.unsqueeze(0) if style.dim() == 3 else style
            for item in batch.split(1):
                sums, _ = self._accumulate(item, self.tiles(*item.shape[-2:]), {})
                for name, g in self._grams(sums, item.shape[-2:]).items():
                    g = g * (w / len(batch))
                    grams[name] = grams[name] + g if name in grams else g
        self.loss.style_grams = grams

    @torch.no_grad()
    def content_targets(self, content: torch.Tensor) -> dict[str, torch.Tensor]:
        """Content-layer activations of ``content``, stitched from tile cores: no full-resolution VGG run."""
        content = content.unsqueeze(0) if content.dim() == 3 else content
        layers = self.loss.weights.content_layers
        if not layers:
            return {}
        h, w = content.shape[-2:]
        tiles = self.tiles(h, w)
        if len(tiles) == 1:
            return self.loss.content_targets(content)
        out: dict[str, torch.Tensor] = {}
        for tile in tiles:
            feats = self.loss.encoder(_region(content, tile), layers)
            for name in layers:
                s = self.strides[name]
                if name not in out:
                    out[name] = feats[name].new_empty((*feats[name].shape[:2], h // s, w // s))
                core = _crop(feats[name], tile, s)
                _at_core(out[name], tile, s, core).copy_(core)
        return out

    def value_and_grad(
        self, image: torch.Tensor, content_targets: Mapping[str, torch.Tensor] | None, grad_if: GradIf | None = None
    ) -> tuple[dict[str, float], torch.Tensor | None]:
        """The loss terms {"content", "style", "tv", "total"} and d total / d image (image's shape).

        ``grad_if(terms)`` returning False skips the gradient pass (None is returned instead): an
        optimizer can abandon an overshooting step at the cost of the forward pass only.
        """
        if image.dim() != 4 or image.shape[0] != 1:
            raise NSTError(f"tiled loss takes one (1, 3, H, W) image, got shape {tuple(image.shape)}")
        image = image.detach()
        tiles = self.tiles(*image.shape[-2:])
        if len(tiles) == 1:
            return self._untiled(image, content_targets, grad_if)
        w = self.loss.weights
        if w.style_layers and not self.loss.style_grams:
            raise RuntimeError("PerceptualLoss.set_style() must be called before computing the loss")
        targets = content_targets if content_targets and w.content > 0 else {}
        self._check_targets(targets, image.shape[-2:])
        sums, content_sse = self._accumulate(image, tiles, targets)
        style, dgrams = self._style_and_grads(sums, image.shape[-2:])
        content = w.content * sum(content_sse.values()) if targets else 0.0
        tv, tv_grad = self._tv(image)
        terms = {"content": float(content), "style": style, "tv": tv}
        terms["total"] = terms["content"] + terms["style"] + terms["tv"]
        if grad_if is not None and not grad_if(terms):
            return terms, None
        grad = tv_grad if tv_grad is not None else torch.zeros_like(image)
        for tile in tiles:
            self._add_tile_grad(image, tile, targets, dgrams, grad)
        return terms, grad

    def _untiled(
        self, image: torch.Tensor, content_targets: Mapping[str, torch.Tensor] | None, grad_if: GradIf | None
    ) -> tuple[dict[str, float], torch.Tensor | None]:
        x = image.clone().requires_grad_(True)
        terms_t = self.loss(x, content_targets)
        terms = {k: float(v.detach()) for k, v in terms_t.items()}
        if grad_if is not None and not grad_if(terms):
            return terms, None
        if not terms_t["total"].requires_grad:  # every weight zero
            return terms, torch.zeros_like(image)
        (grad,) = torch.autograd.grad(terms_t["total"], x)
        return terms, grad

    def _check_targets(self, targets: Mapping[str, torch.Tensor], size: tuple[int, int]) -> None:
        """Content targets of another size would be sliced silently wrong: refuse them."""
        for name, t in targets.items():
            want = (size[0] // self.strides[name], size[1] // self.strides[name])
            if tuple(t.shape[-2:]) != want:
                raise NSTError(f"content targets for {name} are {tuple(t.shape[-2:])}, the image needs {want}")

    def _layers(self, content: bool) -> list[str]:
        w = self.loss.weights
        return list(dict.fromkeys([*(w.content_layers if content else ()), *w.style_layers]))

    @torch.no_grad()
    def _accumulate(
        self, image: torch.Tensor, tiles: list[Tile], targets: Mapping[str, torch.Tensor]
    ) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
        """Pass 1: sum F F^T over the tile cores per style layer, and the content MSE per content layer."""
        w = self.loss.weights
        sums: dict[str, torch.Tensor] = {}
        sse: dict[str, torch.Tensor | float] = dict.fromkeys(w.content_layers if targets else (), 0.0)
        layers = self._layers(bool(targets))
        for tile in tiles if layers else ():
            feats = self.loss.encoder(_region(image, tile), layers)
            for name in w.style_layers:
                f = _crop(feats[name], tile, self.strides[name]).float().flatten(2)[0]
                sums[name] = sums[name].addmm_(f, f.T) if name in sums else f @ f.T
            for name in sse:
                sse[name] = sse[name] + self._content_sse(name, feats[name], targets[name], tile).double()
        return sums, {name: float(sse[name]) / targets[name].numel() for name in sse}

    def _content_sse(self, name: str, feat: torch.Tensor, target: torch.Tensor, tile: Tile) -> torch.Tensor:
        """Sum of squared errors of the core's content features against the same part of the target."""
        core = _crop(feat, tile, self.strides[name])
        return (core - _at_core(target, tile, self.strides[name], core)).square().sum()

    def _style_and_grads(
        self, sums: dict[str, torch.Tensor], size: tuple[int, int]
    ) -> tuple[float, dict[str, torch.Tensor]]:
        """The weighted style loss from the stitched Grams, and its gradient with respect to each Gram."""
        w = self.loss.weights
        if not w.style_layers:
            return 0.0, {}
        grams = {name: g.requires_grad_(True) for name, g in self._grams(sums, size).items()}
        with torch.enable_grad():
            total = sum(w.layer_weights[n] * style_loss(grams[n], self.loss.style_grams[n]) for n in w.style_layers)
            total = w.style * total
            dgrams = torch.autograd.grad(total, [grams[n] for n in w.style_layers])
        return float(total.detach()), dict(zip(w.style_layers, dgrams))

    def _grams(self, sums: dict[str, torch.Tensor], size: tuple[int, int]) -> dict[str, torch.Tensor]:
        """(1, C, C) Gram matrices from summed F F^T, normalised like `gram_matrix` by the image's C*H*W."""
        out = {}
        for name, acc in sums.items():
            out[name] = (acc / _gram_norm(acc.shape[0], size, self.strides[name])).unsqueeze(0)
        return out

    def _tv(self, image: torch.Tensor) -> tuple[float, torch.Tensor | None]:
        """The TV term and its gradient on the whole image (cheap: 3 channels, no VGG)."""
        if self.loss.weights.tv <= 0:
            return 0.0, None
        with torch.enable_grad():
            x = image.clone().requires_grad_(True)
            tv = self.loss.weights.tv * total_variation(x)
            (grad,) = torch.autograd.grad(tv, x)
        return float(tv.detach()), grad

    def _add_tile_grad(
        self,
        image: torch.Tensor,
        tile: Tile,
        targets: Mapping[str, torch.Tensor],
        dgrams: dict[str, torch.Tensor],
        grad: torch.Tensor,
    ) -> None:
        """Pass 2 for one tile: backward the core's share of the loss and add the region's input gradient."""
        w, size = self.loss.weights, tuple(image.shape[-2:])
        if not dgrams and not targets:
            return
        with torch.enable_grad():
            x = _region(image, tile).clone().requires_grad_(True)
            feats = self.loss.encoder(x, self._layers(bool(targets)))
            surrogate = x.new_zeros(())
            for name, dg in dgrams.items():
                s = self.strides[name]
                f = _crop(feats[name], tile, s).float().flatten(2)[0]
                surrogate = surrogate + (dg[0] * (f @ f.T)).sum() / _gram_norm(f.shape[0], size, s)
            for name in targets:
                sse = self._content_sse(name, feats[name], targets[name], tile)
                surrogate = surrogate + w.content * sse / targets[name].numel()
            (g,) = torch.autograd.grad(surrogate, x)
        y0, y1, x0, x1 = tile.region
        grad[..., y0:y1, x0:x1] += g
