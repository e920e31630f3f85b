"""Instant stylization with onnxruntime: `Stylizer("model.onnx").stylize(image)`.

The session is created once (execution provider chosen automatically: TensorRT, then CUDA, then CPU,
whichever this onnxruntime build has), then reused for every image. Any image size works: sides that
are not a multiple of 4 are padded inside the exported graph; sides under 5 pixels are padded here;
large images (over ``max_pixels``) are processed in overlapping tiles whose seams are blended with
linear ramps, so memory stays bounded by the tile size.

Tiles and instance norm: each tile is normalised with its own statistics, so a tiled result is close
to, but not identical with, one pass over the whole image. Overlaps are blended so that no seam is
visible; the difference from a single pass is largest where tiles see very different content.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from nst_core.color import preserve_color as _preserve_color
from nst_core.errors import NSTError
from nst_core.image_io import open_image, scaled_size

#: Execution providers tried, in order, when none is forced (those missing from this build are skipped).
AUTO_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
PROVIDER_ALIASES = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "trt": "TensorrtExecutionProvider",
    "rocm": "ROCMExecutionProvider",
    "migraphx": "MIGraphXExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "dml": "DmlExecutionProvider",
    "directml": "DmlExecutionProvider",
}
PROVIDER_HINTS = {
    "CUDAExecutionProvider": "pip uninstall onnxruntime && pip install onnxruntime-gpu",
    "TensorrtExecutionProvider": "pip install onnxruntime-gpu, with TensorRT's libraries on the library path",
    "DmlExecutionProvider": "pip uninstall onnxruntime && pip install onnxruntime-directml",
    "OpenVINOExecutionProvider": "pip install onnxruntime-openvino",
}
#: Images with more pixels than this are tiled automatically (tile=None).
AUTO_TILE_PIXELS = 2048 * 2048
DEFAULT_TILE = 1024
#: Smallest side the network runs on (its first 9x9 reflection pad needs 5 pixels); smaller inputs are padded.
MIN_MODEL_SIDE = 5


def short_provider(name: str) -> str:
    """``CUDAExecutionProvider`` -> ``cuda``."""
    for alias, full in PROVIDER_ALIASES.items():
        if full == name:
            return alias
    return name.removesuffix("ExecutionProvider").lower()


def resolve_providers(provider: str | None) -> list[str]:
    """Providers to ask onnxruntime for: the automatic chain, or the forced one (+ CPU for unsupported ops)."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    if provider is None or provider.lower() == "auto":
        return [p for p in AUTO_PROVIDERS if p in available] or ["CPUExecutionProvider"]
    name = PROVIDER_ALIASES.get(provider.lower(), provider)
    if name not in available:
        usable = ", ".join(short_provider(p) for p in available if p != "AzureExecutionProvider")
        hint = f"; to get it: {PROVIDER_HINTS[name]}" if name in PROVIDER_HINTS else ""
        raise NSTError(
            f"execution provider {provider!r} is not available in this onnxruntime build (available: {usable}){hint}"
        )
    return [name] if name == "CPUExecutionProvider" else [name, "CPUExecutionProvider"]


def _provider_options(name: str) -> dict[str, Any]:
    if name == "TensorrtExecutionProvider":
        cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "nst" / "tensorrt"
        try:
            cache.mkdir(parents=True, exist_ok=True)
        except OSError:
            return {}
        return {"trt_engine_cache_enable": True, "trt_engine_cache_path": str(cache)}
    return {}


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of size ``tile`` covering ``length``, evenly spread, overlapping by >= ``overlap``."""
    if length <= tile:
        return [0]
    n = math.ceil((length - overlap) / (tile - overlap))
    return [round(i * (length - tile) / (n - 1)) for i in range(n)]


def blend_weights(starts: list[int], size: int, length: int) -> list[np.ndarray]:
    """Per-tile 1-D weights: linear ramps across each overlap, normalised to sum to 1 at every position."""
    weights = []
    for i, s in enumerate(starts):
        w = np.ones(size, dtype=np.float64)
        pos = np.arange(size) + 0.5
        if i > 0 and (ramp := starts[i - 1] + size - s) > 0:
            w = np.minimum(w, pos / ramp)
        if i < len(starts) - 1 and (ramp := s + size - starts[i + 1]) > 0:
            w = np.minimum(w, (size - pos) / ramp)
        weights.append(w)
    total = np.zeros(length, dtype=np.float64)
    for s, w in zip(starts, weights):
        total[s : s + size] += w
    return [(w / total[s : s + size]).astype(np.float32) for s, w in zip(starts, weights)]


def pil_to_array(img: Image.Image) -> np.ndarray:
    """RGB PIL image -> (3, H, W) float32 array in [0, 1] (same values as `nst_core.image_io.pil_to_tensor`)."""
    arr = np.asarray(img.convert("RGB"), dtype=np.float32)
    return np.ascontiguousarray(arr.transpose(2, 0, 1)) / np.float32(255.0)


def array_to_pil(arr: np.ndarray) -> Image.Image:
    """(3, H, W) or (1, 3, H, W) float array, clamped to [0, 1] -> 8-bit RGB PIL image (rounded to nearest)."""
    if arr.ndim == 4:
        arr = arr[0]
    out = np.rint(np.clip(arr, 0.0, 1.0) * np.float32(255.0)).astype(np.uint8)
    return Image.fromarray(np.ascontiguousarray(out.transpose(1, 2, 0)), "RGB")


def _fmt_shape(shape: list[Any]) -> str:
    return "(" + ", ".join(str(d) if d is not None else "?" for d in shape) + ")"


class Stylizer:
    """An exported style network loaded into one onnxruntime session.

    ``provider``: ``None``/``"auto"`` (TensorRT, CUDA, else CPU), or one of ``cpu``, ``cuda``, ``tensorrt``,
    ``dml``, ``coreml``, ``openvino`` ... or a full onnxruntime provider name. ``threads``: CPU intra-op
    threads (default: onnxruntime's choice, one per physical core).

    Attributes: ``provider`` (the provider that actually runs the model), ``metadata`` (the model's
    ``nst.*`` metadata), ``load_seconds``, ``model_path``, ``input_name``, ``max_pixels`` (automatic tiling
    above this many pixels) and ``tile_size`` (its tile side). Models not made by `nst export` work too when
    their one input is a float (N, 3, H, W) image; inputs in 0..255 are declared with the metadata key
    ``nst.input_range = "0,255"``, and fixed-size inputs are resized in and out.
    """

    def __init__(self, model: str | os.PathLike, provider: str | None = None, threads: int | None = None) -> None:
        import onnxruntime as ort

        t0 = time.perf_counter()
        self.model_path = Path(model)
        if not self.model_path.exists():
            raise NSTError(f"{model}: no such model file")
        if not self.model_path.is_file():
            raise NSTError(f"{model}: is a directory, not an ONNX model file")
        if threads is not None and threads <= 0:
            raise NSTError(f"threads must be positive, got {threads}")
        providers = resolve_providers(provider)
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        if threads:
            opts.intra_op_num_threads = threads
        try:
            # onnxruntime print()s its provider fallbacks: keep stdout clean for `-o -` and --json
            with contextlib.redirect_stdout(sys.stderr):
                self.session = ort.InferenceSession(
                    str(self.model_path), opts, providers=[(p, _provider_options(p)) for p in providers]
                )
        except Exception as e:
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            if "protobuf" in msg.lower() or type(e).__name__ == "InvalidProtobuf":
                raise NSTError(f"{model}: not an ONNX model (it does not parse as an ONNX protobuf)") from None
            raise NSTError(f"{model}: onnxruntime cannot load this model ({msg[:300]})") from None
        active = self.session.get_providers()
        self.provider: str = active[0] if active else "CPUExecutionProvider"
        if provider is not None and provider.lower() != "auto" and self.provider != providers[0]:
            raise NSTError(
                f"could not start {providers[0]} (onnxruntime fell back to {self.provider}); check the "
                "GPU libraries (CUDA, cuDNN, TensorRT) or use --provider cpu"
            )
        self.metadata: dict[str, str] = dict(self.session.get_modelmeta().custom_metadata_map)
        self._check_io()
        self.max_pixels = AUTO_TILE_PIXELS
        self.tile_size = DEFAULT_TILE
        self.load_seconds = time.perf_counter() - t0

    # ------------------------------------------------------------------------------------------ model checks

    def _check_io(self) -> None:
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        expected = "one float tensor shaped (batch, 3, height, width)"
        if len(inputs) != 1:
            names = ", ".join(f"{i.name} {_fmt_shape(i.shape)}" for i in inputs)
            raise NSTError(
                f"{self.model_path}: not an image model: it has {len(inputs)} inputs ({names}); expected {expected}"
            )
        inp = inputs[0]
        shape = list(inp.shape)
        channels_ok = len(shape) == 4 and (shape[1] == 3 or not isinstance(shape[1], int))
        if inp.type not in ("tensor(float)", "tensor(float16)") or not channels_ok:
            raise NSTError(
                f"{self.model_path}: not an image model: input {inp.name!r} is {inp.type} "
                f"{_fmt_shape(shape)}; expected {expected}"
            )
        out = outputs[0] if outputs else None
        if out is None or len(out.shape) != 4 or (isinstance(out.shape[1], int) and out.shape[1] != 3):
            desc = f"{out.name!r} is {out.type} {_fmt_shape(list(out.shape))}" if out is not None else "none"
            raise NSTError(
                f"{self.model_path}: not an image model: output {desc}; expected an RGB image (batch, 3, height, width)"
            )
        self.input_name: str = inp.name
        self.input_dtype = np.float16 if inp.type == "tensor(float16)" else np.float32
        fixed = [d if isinstance(d, int) and d > 0 else None for d in shape[2:]]
        self.fixed_size: tuple[int, int] | None = (fixed[0], fixed[1]) if all(fixed) else None  # (height, width)
        self.fixed_batch: int | None = shape[0] if isinstance(shape[0], int) and shape[0] > 0 else None
        scale = self.metadata.get("nst.input_range", "0,1").replace(" ", "")
        self.input_scale = 255.0 if scale in ("0,255", "255") else 1.0

    def info(self) -> dict[str, Any]:
        """Model file, provider, inputs/outputs and metadata, JSON-ready (``nst stylize --info``)."""
        meta = dict(self.metadata)
        if "nst.config" in meta:
            with contextlib.suppress(json.JSONDecodeError):
                meta["nst.config"] = json.loads(meta["nst.config"])
        return {
            "model": str(self.model_path),
            "size_bytes": self.model_path.stat().st_size,
            "provider": self.provider,
            "providers_available": [p for p in _available() if p != "AzureExecutionProvider"],
            "load_ms": round(self.load_seconds * 1000, 1),
            "inputs": [{"name": i.name, "type": i.type, "shape": list(i.shape)} for i in self.session.get_inputs()],
            "outputs": [{"name": o.name, "type": o.type, "shape": list(o.shape)} for o in self.session.get_outputs()],
            "metadata": meta,
        }

    # ------------------------------------------------------------------------------------------ running

    def run_array(self, x: np.ndarray) -> np.ndarray:
        """The raw network: (N, 3, H, W) float32 in [0, 1] -> (N, 3, H, W) float32, one session run.

        Handles the model's input dtype/range, fixed-size models (resized in and out) and sides under
        ``MIN_MODEL_SIDE`` (edge-padded, then cropped).
        """
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected an (N, 3, H, W) array, got shape {x.shape}")
        n, _, h, w = x.shape
        if self.fixed_batch not in (None, n):
            return np.concatenate([self.run_array(x[i : i + 1]) for i in range(n)])
        if self.fixed_size and self.fixed_size != (h, w):
            t = torch.nn.functional.interpolate(
                torch.from_numpy(np.ascontiguousarray(x)),
                size=self.fixed_size,
                mode="bicubic",
                align_corners=False,
                antialias=True,
            )
            y = self.run_array(t.clamp(0, 1).numpy())
            back = torch.nn.functional.interpolate(
                torch.from_numpy(y), size=(h, w), mode="bicubic", align_corners=False, antialias=True
            )
            return back.numpy()
        ph, pw = max(0, MIN_MODEL_SIDE - h), max(0, MIN_MODEL_SIDE - w)
        if ph or pw:
            x = np.pad(x, ((0, 0), (0, 0), (0, ph), (0, pw)), mode="edge")
        feed = x * self.input_scale if self.input_scale != 1.0 else x
        try:
            with contextlib.redirect_stdout(sys.stderr):
                y = self.session.run(None, {self.input_name: np.ascontiguousarray(feed, dtype=self.input_dtype)})[0]
        except Exception as e:  # onnxruntime's own exception types (out of memory, bad shape ...)
            msg = str(e).strip().splitlines()[0][:300] if str(e).strip() else type(e).__name__
            raise NSTError(f"onnxruntime failed on a {w}x{h} input ({msg})") from None
        y = np.asarray(y, dtype=np.float32)
        if y.shape[:2] != (n, 3) or y.shape[2:] != feed.shape[2:]:
            raise NSTError(
                f"{self.model_path}: the model returned shape {tuple(y.shape)} for a {w}x{h} input; "
                "expected an RGB image of the same size"
            )
        if self.input_scale != 1.0:
            y = y / self.input_scale
        return y[:, :, :h, :w] if (ph or pw) else y

    def stylize_tensor(self, x: torch.Tensor, tile: int | None = None) -> torch.Tensor:
        """(3, H, W) or (N, 3, H, W) float tensor in [0, 1] -> stylized tensor of the same shape (float32, CPU).

        ``tile``: None tiles automatically above ``max_pixels``; 0 never tiles; N uses N-pixel tiles
        whenever a side is longer than N.
        """
        squeeze = x.dim() == 3
        arr = (x.unsqueeze(0) if squeeze else x).detach().float().cpu().numpy()
        if self._tiles_for(arr.shape[2], arr.shape[3], tile):
            size, overlap = self._tile_geometry(tile)  # type: ignore[misc]
            y = np.concatenate([self.run_tiled(arr[i : i + 1], size, overlap) for i in range(arr.shape[0])])
        else:
            y = self.run_array(arr)
        out = torch.from_numpy(y)
        return out[0] if squeeze else out

    def _tile_geometry(self, tile: int | None) -> tuple[int, int] | None:
        """(tile, overlap) to use, or None when tiling is off."""
        if tile == 0:
            return None
        size = self.tile_size if tile is None else int(tile)
        if size < 32:
            raise NSTError(f"tile size must be 0 (off) or at least 32 pixels, got {size}")
        return size, max(16, size // 8)

    def _tiles_for(self, h: int, w: int, tile: int | None) -> bool:
        if tile == 0 or self.fixed_size:
            return False
        if tile is None:
            return h * w > self.max_pixels
        self._tile_geometry(tile)
        return max(h, w) > tile

    def run_tiled(self, x: np.ndarray, tile: int, overlap: int) -> np.ndarray:
        """One image (1, 3, H, W) in overlapping ``tile`` x ``tile`` pieces, blended with linear ramps."""
        _, _, h, w = x.shape
        if not 0 <= overlap < tile / 2 + 1:
            raise NSTError(f"tile overlap must be less than half the tile size ({tile}), got {overlap}")
        th, tw = min(tile, h), min(tile, w)
        ys, xs = tile_starts(h, th, overlap), tile_starts(w, tw, overlap)
        wy, wx = blend_weights(ys, th, h), blend_weights(xs, tw, w)
        out = np.zeros((1, 3, h, w), dtype=np.float32)
        for y0, ky in zip(ys, wy):
            for x0, kx in zip(xs, wx):
                piece = self.run_array(x[:, :, y0 : y0 + th, x0 : x0 + tw])
                out[:, :, y0 : y0 + th, x0 : x0 + tw] += piece * (ky[:, None] * kx[None, :])
        return out

    def count_tiles(self, width: int, height: int, tile: int | None = None) -> int:
        """How many tiles an image of this size is cut into (1 = one pass)."""
        if not self._tiles_for(height, width, tile):
            return 1
        size, overlap = self._tile_geometry(tile)  # type: ignore[misc]
        return len(tile_starts(height, min(size, height), overlap)) * len(tile_starts(width, min(size, width), overlap))

    def stylize(
        self,
        image: Image.Image | str | os.PathLike | bytes | torch.Tensor | np.ndarray,
        *,
        size: int | None = None,
        preserve_color: bool = False,
        strength: float = 1.0,
        tile: int | None = None,
    ) -> Image.Image:
        """Stylize one image; returns an RGB PIL image.

        ``image``: a PIL image, a file path (or ``skimage:NAME``), encoded bytes, an (H, W, 3) uint8 array,
        or a (3, H, W) / (1, 3, H, W) float tensor in [0, 1]. ``size``: longer side of the output (default:
        the input's own size). ``preserve_color``: keep the input's colours (stylized luminance only).
        ``strength``: 0..1, blend of the stylized image with the input (0 returns the input unchanged,
        without running the network). ``tile``: see `stylize_tensor`.
        """
        content = self.content_tensor(image, size)
        return array_to_pil(
            self.stylize_content(content, preserve_color=preserve_color, strength=strength, tile=tile).numpy()
        )

    @staticmethod
    def content_tensor(
        image: Image.Image | str | os.PathLike | bytes | torch.Tensor | np.ndarray, size: int | None = None
    ) -> torch.Tensor:
        """The input as a (3, H, W) float tensor in [0, 1], longer side resized to ``size`` (Lanczos)."""
        if isinstance(image, torch.Tensor):
            t = image.detach().float().cpu()
            if t.dim() == 4 and t.shape[0] == 1:
                t = t[0]
            if t.dim() != 3 or t.shape[0] != 3:
                raise NSTError(f"expected a (3, H, W) image tensor, got shape {tuple(image.shape)}")
            if size is not None:
                from nst_core.image_io import resize_tensor

                w, h = scaled_size(t.shape[2], t.shape[1], size)
                t = resize_tensor(t, (h, w)).clamp(0, 1)
            return t.clamp(0, 1)
        if isinstance(image, np.ndarray):
            if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
                raise NSTError(f"expected an (H, W, 3) uint8 array, got {image.dtype} {image.shape}")
            image = Image.fromarray(image, "RGB")
        img = open_image(image)
        target = scaled_size(*img.size, size)
        if target != img.size:
            img = img.resize(target, Image.Resampling.LANCZOS)
        return torch.from_numpy(pil_to_array(img))

    def stylize_content(
        self, content: torch.Tensor, *, preserve_color: bool = False, strength: float = 1.0, tile: int | None = None
    ) -> torch.Tensor:
        """(3, H, W) content tensor -> (3, H, W) result with colour preservation and strength applied."""
        if not 0.0 <= strength <= 1.0:
            raise NSTError(f"strength must be between 0 and 1, got {strength}")
        if strength == 0.0:
            return content.clone()
        # numpy for the element-wise steps: cheap, and no torch thread pool competing with onnxruntime's
        y = self.stylize_tensor(content, tile=tile).numpy()
        np.clip(y, 0.0, 1.0, out=y)
        if preserve_color:
            y = _preserve_color(torch.from_numpy(y), content).numpy()
        if strength < 1.0:
            y = strength * y + (1.0 - strength) * content.numpy()
            np.clip(y, 0.0, 1.0, out=y)
        return torch.from_numpy(y)

    def stylize_frames(
        self,
        frames: Iterator[np.ndarray],
        *,
        size: int | None = None,
        preserve_color: bool = False,
        strength: float = 1.0,
        smooth: float = 0.0,
        tile: int | None = None,
    ) -> Iterator[np.ndarray]:
        """Stylize a stream of (H, W, 3) uint8 video frames; yields (H', W', 3) uint8 frames.

        ``smooth`` in [0, 1): temporal smoothing against flicker. Each output pixel is blended with the
        previous output pixel with weight ``smooth * max(0, 1 - d / 0.1)``, where ``d`` is how much that
        pixel of the input changed since the previous frame (mean absolute RGB difference, 0..1): static
        areas are averaged over frames (an exponential moving average), moving ones are not (no ghosting).
        """
        if not 0.0 <= smooth < 1.0:
            raise NSTError(f"smooth must be in [0, 1), got {smooth}")
        prev_in: torch.Tensor | None = None
        prev_out: torch.Tensor | None = None
        for frame in frames:
            content = self.content_tensor(np.ascontiguousarray(frame[..., :3]), size)
            out = self.stylize_content(content, preserve_color=preserve_color, strength=strength, tile=tile)
            if smooth > 0 and prev_out is not None and prev_in is not None and prev_in.shape == content.shape:
                change = (content - prev_in).abs().mean(dim=0, keepdim=True)
                weight = smooth * (1.0 - change / 0.1).clamp(min=0.0)
                out = weight * prev_out + (1.0 - weight) * out
            prev_in, prev_out = content, out
            yield np.asarray(array_to_pil(out.numpy()))


def _available() -> list[str]:
    import onnxruntime as ort

    return list(ort.get_available_providers())
