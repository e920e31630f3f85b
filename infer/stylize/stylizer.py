"""Instant stylization with onnxruntime: `Stylizer("model.onnx").stylize(image)`.

The session is created once (execution provider chosen automatically: the first this onnxruntime build has of
TensorRT, CUDA, MIGraphX, ROCm, CoreML, DirectML, OpenVINO, else the CPU), then reused for every image. Any image
size works: sides that are not a multiple of 4 are padded inside the exported graph; sides under 5 pixels are padded
here; large images are processed in overlapping tiles (`infer.stylize.tiling`), so memory stays bounded.

The work is done on NumPy arrays: an ``.onnx`` model runs without torch installed (a light install:
onnxruntime, Pillow, NumPy, tqdm; README "Light install"). torch is loaded only for tensor inputs and
for a trained network given instead of an ONNX model, which is exported in memory first with
`infer.export.exporter.build_onnx`.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from infer.export.format import STYLE_INPUT
from infer.models.shipped import int8_copy, resolve_model
from infer.stylize import tiling
from infer.stylize.providers import available_providers, provider_options, resolve_providers
from infer.stylize.styles import StyleChoice, describe, style_vector
from nst_core.color import preserve_color as keep_color
from nst_core.errors import NSTError
from nst_core.image_io import array_to_pil, open_image, pil_to_array, resize_array, resize_longer
from nst_core.scales import model_work_size, stylize_multiscale

if TYPE_CHECKING:
    import torch

    from infer.temporal.stream import FrameTemporal

    ImageSource = Image.Image | str | os.PathLike | bytes | torch.Tensor | np.ndarray

#: Smallest side the network runs on (its first 9x9 reflection pad needs 5 pixels); smaller inputs are padded.
MIN_MODEL_SIDE = 5
IMAGE_MODEL = "one float tensor shaped (batch, 3, height, width)"


@dataclass(frozen=True)
class FrameOptions:
    """How each frame of a video or live stream is stylized: taken from the options of `nst stylize` and
    `nst live` (`from_args`) and handed down whole to `Stylizer.stylize_frames`."""

    size: int | None = None  # longer side of the output (None: the frame's own)
    preserve_color: bool = False  # keep the frame's colours (stylized luminance)
    strength: float = 1.0  # blend of the stylized frame with the frame (0: the frame)
    smooth: float = 0.0  # blend with the previous output where the input did not change, in [0, 1)
    temporal: float = 0.0  # motion-compensated consistency against flicker, in [0, 1): `infer.temporal`
    flicker: bool = False  # measure the warping error of the frames shown (`infer.temporal.measure`)
    tile: int | None = None  # tile side (None: automatic; 0: never)
    work_size: int | None = None  # the network also at this size, blended (None: the model's; 0: never)

    @classmethod
    def from_args(cls, args: Any) -> FrameOptions:
        """The options a command's parsed arguments set (those it lacks keep their defaults)."""
        return cls(**{f.name: getattr(args, f.name) for f in fields(cls) if hasattr(args, f.name)})

    def check(self) -> FrameOptions:
        """These options, or one NSTError line for what no stream takes (`nst stylize` and `nst live` ask before
        any work, `Stylizer.stylize_frames` again for Python callers)."""
        if not 0.0 <= self.smooth < 1.0:
            raise NSTError(f"smooth must be in [0, 1), got {self.smooth}")
        if self.smooth > 0 and self.temporal > 0:
            raise NSTError("--smooth and --temporal both fight flicker: give one (--temporal follows motion)")
        return self


#: ``precision``: "auto" runs a shipped model's int8 copy on the CPU when one ships (`infer.models.shipped.int8_copy`),
#: "fp32" always the file named.
PRECISIONS = ("auto", "fp32")

#: The tensor types an image model's input (the first two) and output may have: the pixels are real numbers.
FLOAT_TYPES = ("tensor(float)", "tensor(float16)", "tensor(double)")


#: The pixel ranges a model may take and give: its input is scaled by the factor, its output divided by it.
PIXEL_RANGES = {"0-1": 1.0, "0-255": 255.0}


def pixel_scale(text: str) -> float:
    """``0-1`` / ``0-255`` (also written ``0,255``, as older metadata does) -> the input's scale; NSTError else."""
    key = text.replace(" ", "").replace(",", "-")
    key = "0-255" if key == "255" else key
    if key not in PIXEL_RANGES:
        raise NSTError(f"pixel range {text!r}: give one of {', '.join(PIXEL_RANGES)}")
    return PIXEL_RANGES[key]


def is_network_source(model: str | os.PathLike) -> bool:
    """A trained network rather than an ONNX file: a run or checkpoint folder, or a ``.safetensors`` file."""
    path = Path(model)
    return path.is_dir() or path.suffix.lower() == ".safetensors"


def export_in_memory(source: str | os.PathLike) -> bytes:
    """The ONNX model of a trained network, as bytes; no file is written (none a kill could leave behind)."""
    from infer.export.exporter import build_onnx

    with contextlib.redirect_stdout(sys.stderr):
        return build_onnx(source).data


def fmt_shape(shape: list[Any]) -> str:
    return "(" + ", ".join(str(d) if d is not None else "?" for d in shape) + ")"


def _open_session(
    model: str | bytes, name: str, providers: list[str], threads: int | None, spinning: bool = True
) -> Any:
    """An onnxruntime session, or one NSTError line saying why the model does not load. ``spinning=False``: the
    CPU threads sleep as soon as a run ends instead of spinning for the next one, which a video's other per-frame
    work (decoding, the temporal filter, encoding) then gets (benchmarks/README.md, "Video flicker")."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    if threads:
        opts.intra_op_num_threads = threads
    if not spinning:
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        # onnxruntime print()s its provider fallbacks: keep stdout clean for `-o -` and --json
        with contextlib.redirect_stdout(sys.stderr):
            return ort.InferenceSession(model, opts, providers=[(p, provider_options(p)) for p in providers])
    except Exception as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if "protobuf" in msg.lower() or type(e).__name__ == "InvalidProtobuf":
            raise NSTError(
                f"{name}: not an ONNX model (it does not parse as an ONNX protobuf); a trained network "
                "(.safetensors, run or checkpoint folder) works too, or `nst export` makes the .onnx"
            ) from None
        raise NSTError(f"{name}: onnxruntime cannot load this model ({msg[:300]})") from None


class Stylizer:
    """An exported style network loaded into one onnxruntime session.

    ``model``: an ``.onnx`` file, a shipped model's name (``"starry_night"``, `infer.models.shipped`), or a trained
    network (``.safetensors``, checkpoint or run folder), which is exported to ONNX in memory first (needs
    torch; `nst export` saves the ``.onnx`` for reuse).
    ``provider``: ``None``/``"auto"`` (`infer.stylize.providers.AUTO_PROVIDERS`), or one of ``cpu``, ``cuda``,
    ``tensorrt``, ``dml``, ``coreml``, ``openvino`` ... or a full onnxruntime provider name. ``threads``: CPU intra-op
    threads (default: onnxruntime's choice, one per physical core). ``precision``: ``"auto"`` runs a shipped
    model's int8 copy on the CPU where one ships (the ``_fast`` networks: 1.4x faster, as good by the
    optimizer's yardstick), ``"fp32"`` the file as named. ``spinning=False`` for a stream of frames (see
    `_open_session`).

    Attributes: ``provider`` (the provider that actually runs the model), ``metadata`` (the model's
    ``nst.*`` metadata), ``load_seconds``, ``model_path``, ``input_name``, ``max_pixels`` (automatic tiling
    above this many pixels) and ``tile_size`` (its tile side). Models not made by `nst export` work too when
    their one input is a float (N, 3, H, W) image; inputs in 0..255 are declared with the metadata key
    ``nst.input_range = "0,255"`` or by ``pixel_range="0-255"`` (the ONNX model zoo's fast-neural-style networks), and
    fixed-size inputs are resized in and out.

    A network of several styles (``styles``: their names, from ``nst.styles``) paints ``style``: a name, a blend
    (``"starry_night=0.7,udnie=0.3"`` or ``{"starry_night": 0.7, "udnie": 0.3}``), or one weight per style; None
    is its first style (`infer.stylize.styles`). `set_style` changes it; `stylize` takes one per call too.
    """

    def __init__(
        self,
        model: str | os.PathLike,
        provider: str | None = None,
        threads: int | None = None,
        precision: str = "auto",
        spinning: bool = True,
        style: StyleChoice = None,
        pixel_range: str | None = None,
    ) -> None:
        t0 = time.perf_counter()
        self.model_path = Path(resolve_model(model))  # a path, else a shipped model's name (`infer.models.shipped`)
        if threads is not None and threads <= 0:
            raise NSTError(f"threads must be positive, got {threads}")
        if precision not in PRECISIONS:
            raise NSTError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        providers = resolve_providers(provider)
        if precision == "auto" and providers[0] == "CPUExecutionProvider":
            self.model_path = int8_copy(self.model_path) or self.model_path
        self.exported = is_network_source(self.model_path)
        source: str | bytes = export_in_memory(self.model_path) if self.exported else str(self.model_path)
        self.size_bytes = len(source) if isinstance(source, bytes) else self.model_path.stat().st_size
        self.session = _open_session(source, str(model), providers, threads, spinning)
        active = self.session.get_providers()
        self.provider: str = active[0] if active else "CPUExecutionProvider"
        if provider is not None and provider.lower() != "auto" and self.provider != providers[0]:
            raise NSTError(
                f"could not start {providers[0]} (onnxruntime fell back to {self.provider}); check the "
                "GPU libraries (CUDA, cuDNN, TensorRT) or use --provider cpu"
            )
        self.metadata: dict[str, str] = dict(self.session.get_modelmeta().custom_metadata_map)
        self._check_io(pixel_range)
        self.style: np.ndarray | None = None  # the weights of ``styles`` every run uses unless given one
        self.set_style(style)
        self.work_size = model_work_size(self.metadata)  # where strokes have the painting's size (None: unknown)
        self.max_pixels = tiling.AUTO_TILE_PIXELS
        self.tile_size = tiling.DEFAULT_TILE
        self.load_seconds = time.perf_counter() - t0

    # ------------------------------------------------------------------------------------------ the model

    def _not_an_image_model(self, what: str, expected: str = IMAGE_MODEL) -> NSTError:
        return NSTError(f"{self.model_path}: not an image model: {what}; expected {expected}")

    def _check_io(self, pixel_range: str | None = None) -> None:
        """The model must map one (N, 3, H, W) float image (and, for several styles, their weights) to one RGB
        image; read its dtype, size, range and style names."""
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        self.style_input, self.styles = self._style_input(inputs)
        if self.style_input:
            inputs = inputs[:1]
        if len(inputs) != 1:
            names = ", ".join(f"{i.name} {fmt_shape(i.shape)}" for i in inputs)
            raise self._not_an_image_model(f"it has {len(inputs)} inputs ({names})")
        inp = inputs[0]
        shape = list(inp.shape)
        channels_ok = len(shape) == 4 and (shape[1] == 3 or not isinstance(shape[1], int))
        if inp.type not in FLOAT_TYPES[:2] or not channels_ok:
            raise self._not_an_image_model(f"input {inp.name!r} is {inp.type} {fmt_shape(shape)}")
        out = outputs[0] if outputs else None
        out_ok = out is not None and out.type in FLOAT_TYPES and len(out.shape) == 4
        if not out_ok or (isinstance(out.shape[1], int) and out.shape[1] != 3):
            desc = f"{out.name!r} is {out.type} {fmt_shape(list(out.shape))}" if out is not None else "none"
            raise self._not_an_image_model(f"output {desc}", "an RGB image (batch, 3, height, width)")
        self.input_name: str = inp.name
        self.input_dtype = np.float16 if inp.type == "tensor(float16)" else np.float32
        fixed = [d if isinstance(d, int) and d > 0 else None for d in shape[2:]]
        self.fixed_size: tuple[int, int] | None = (fixed[0], fixed[1]) if all(fixed) else None  # (height, width)
        self.fixed_batch: int | None = shape[0] if isinstance(shape[0], int) and shape[0] > 0 else None
        self.input_scale = pixel_scale(pixel_range or self.metadata.get("nst.input_range", "0-1"))

    def _style_input(self, inputs: list[Any]) -> tuple[str | None, list[str]]:
        """(name of the style-weights input, the style names) of a network of several styles, else (None, [])."""
        if len(inputs) != 2 or inputs[1].name != STYLE_INPUT or inputs[1].type != "tensor(float)":
            return None, []
        shape = list(inputs[1].shape)
        if len(shape) != 1 or not isinstance(shape[0], int) or shape[0] < 2:
            return None, []
        with contextlib.suppress(json.JSONDecodeError, TypeError):
            names = json.loads(self.metadata.get("nst.styles") or "null")
            if isinstance(names, list) and len(names) == shape[0] and all(isinstance(n, str) for n in names):
                return inputs[1].name, names
        return inputs[1].name, [f"style{i + 1}" for i in range(shape[0])]

    def style_weights(self, style: StyleChoice) -> np.ndarray | None:
        """``style`` as the weights of this model's styles (None: the current ones); NSTError for a bad name or
        weights, or a style asked of a model of one style."""
        if style is None:
            return self.style
        if not self.styles:
            single = self.metadata.get("nst.style", "its own")
            raise NSTError(
                f"{self.model_path.name} paints one style ({single}); a style is chosen only for a network of "
                "several styles"
            )
        return style_vector(style, self.styles, self.model_path.name)

    def set_style(self, style: StyleChoice) -> None:
        """The style every run paints from now on (a multi-style model; None: its first style)."""
        if self.styles:
            self.style = style_vector(style, self.styles, self.model_path.name)
        else:
            self.style_weights(style)  # a style for a model of one style: one clear line

    @property
    def style_name(self) -> str | None:
        """The current style as reports show it (``starry_night`` or ``a=0.7,b=0.3``); None for one style."""
        return describe(self.style, self.styles) if self.style is not None else None

    def info(self) -> dict[str, Any]:
        """Model file, provider, inputs/outputs and metadata, JSON-ready (``nst stylize --info``)."""
        meta = dict(self.metadata)
        if "nst.config" in meta:
            with contextlib.suppress(json.JSONDecodeError):
                meta["nst.config"] = json.loads(meta["nst.config"])
        return {
            "model": str(self.model_path),
            "exported_on_load": self.exported,
            "size_bytes": self.size_bytes,
            "provider": self.provider,
            "providers_available": available_providers(),
            "load_ms": round(self.load_seconds * 1000, 1),
            "work_size": self.work_size,  # None or 0: larger pictures in one pass (nst_core.scales)
            "styles": self.styles,  # a network of several styles: their names, in the order of its style input
            "inputs": [{"name": i.name, "type": i.type, "shape": list(i.shape)} for i in self.session.get_inputs()],
            "outputs": [{"name": o.name, "type": o.type, "shape": list(o.shape)} for o in self.session.get_outputs()],
            "metadata": meta,
        }

    # ------------------------------------------------------------------------------------------ the network

    def run_array(self, x: np.ndarray, style: np.ndarray | None = None) -> np.ndarray:
        """The raw network: (N, 3, H, W) float32 in [0, 1] -> (N, 3, H, W) float32, one session run.

        Handles the model's input dtype/range, fixed-size models (resized in and out) and sides under
        ``MIN_MODEL_SIDE`` (edge-padded, then cropped). ``style``: the weights of a multi-style model's styles
        (None: the current ones).
        """
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected an (N, 3, H, W) array, got shape {x.shape}")
        n, _, h, w = x.shape
        if self.fixed_batch not in (None, n):
            return np.concatenate([self.run_array(x[i : i + 1], style) for i in range(n)])
        if self.fixed_size and self.fixed_size != (h, w):
            return self._run_resized(x, style)
        ph, pw = max(0, MIN_MODEL_SIDE - h), max(0, MIN_MODEL_SIDE - w)
        if ph or pw:
            x = np.pad(x, ((0, 0), (0, 0), (0, ph), (0, pw)), mode="edge")
        feed = x * self.input_scale if self.input_scale != 1.0 else x
        try:
            with contextlib.redirect_stdout(sys.stderr):
                feeds = {self.input_name: np.ascontiguousarray(feed, dtype=self.input_dtype)}
                if self.style_input:
                    feeds[self.style_input] = self.style if style is None else style
                y = self.session.run(None, feeds)[0]
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

    def _run_resized(self, x: np.ndarray, style: np.ndarray | None) -> np.ndarray:
        """A fixed-size model: resize to its size (bicubic, antialiased when shrinking), run, resize back."""
        assert self.fixed_size is not None
        h, w = x.shape[2:]
        small = np.clip(resize_array(x, self.fixed_size), 0, 1)
        return resize_array(self.run_array(small, style), (h, w))

    def run_tiled(self, x: np.ndarray, tile: int, overlap: int, style: np.ndarray | None = None) -> np.ndarray:
        """One image (1, 3, H, W) in overlapping ``tile`` x ``tile`` pieces (see `infer.stylize.tiling.run_tiled`)."""
        return tiling.run_tiled(lambda a: self.run_array(a, style), x, tile, overlap)

    def _tile_side(self, h: int, w: int, tile: int | None) -> int | None:
        """Where a tile size enters the library: checked here, once per call."""
        if self.fixed_size:
            return None
        return tiling.tile_side(h, w, tiling.check_tile(tile), self.max_pixels, self.tile_size)

    def count_tiles(self, width: int, height: int, tile: int | None = None) -> int:
        """How many tiles an image of this size is cut into (1 = one pass)."""
        side = self._tile_side(height, width, tile)
        return 1 if side is None else tiling.count_tiles(height, width, side)

    def network(self, x: np.ndarray, tile: int | None = None, style: np.ndarray | None = None) -> np.ndarray:
        """(N, 3, H, W) array in [0, 1] -> the network's output, tiled when ``tile`` says so.

        ``tile``: None tiles automatically above ``max_pixels``; 0 never tiles; N uses N-pixel tiles
        whenever a side is longer than N.
        """
        side = self._tile_side(x.shape[2], x.shape[3], tile)
        if side is None:
            return self.run_array(x, style)
        overlap = tiling.overlap_for(side)
        return np.concatenate([self.run_tiled(x[i : i + 1], side, overlap, style) for i in range(x.shape[0])])

    def paint(
        self, x: np.ndarray, tile: int | None = None, work_size: int | None = None, style: np.ndarray | None = None
    ) -> np.ndarray:
        """The network's picture: at the output size and, for a picture well over the work size (``work_size``,
        None: the model's ``work_size``, 0: none), at that size too, blended so the strokes have the size the
        painting's have at the output size (`nst_core.scales`)."""
        size = self.work_size if work_size is None else work_size
        return stylize_multiscale(lambda a: self.network(a, tile, style), x, size or 0)

    def stylize_tensor(self, x: torch.Tensor, tile: int | None = None, style: StyleChoice = None) -> torch.Tensor:
        """(3, H, W) or (N, 3, H, W) float tensor in [0, 1] -> the network's output, same shape (float32, CPU)."""
        import torch

        squeeze = x.dim() == 3
        arr = (x.unsqueeze(0) if squeeze else x).detach().float().cpu().numpy()
        out = torch.from_numpy(self.network(arr, tile, self.style_weights(style)))
        return out[0] if squeeze else out

    # ------------------------------------------------------------------------------------------ images

    @staticmethod
    def content_array(image: ImageSource, size: int | None = None) -> np.ndarray:
        """The input as a (3, H, W) float32 array in [0, 1], longer side resized to ``size`` (Lanczos)."""
        torch = sys.modules.get("torch")  # a tensor can only come from a program that imported torch
        if torch is not None and isinstance(image, torch.Tensor):
            return _tensor_content(image, size)
        if isinstance(image, np.ndarray):
            if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
                raise NSTError(f"expected an (H, W, 3) uint8 array, got {image.dtype} {image.shape}")
            image = Image.fromarray(image, "RGB")
        return pil_to_array(resize_longer(open_image(image), size))

    def stylize_array(
        self,
        content: np.ndarray,
        *,
        preserve_color: bool = False,
        strength: float = 1.0,
        tile: int | None = None,
        work_size: int | None = None,
        style: np.ndarray | None = None,
    ) -> np.ndarray:
        """(3, H, W) content array -> (3, H, W) result in [0, 1] with colour preservation and strength applied;
        ``style``: a multi-style model's weights (`style_weights`; None: the current ones)."""
        if not 0.0 <= strength <= 1.0:
            raise NSTError(f"strength must be between 0 and 1, got {strength}")
        if strength == 0.0:
            return content.copy()
        y = self.paint(content[None], tile, work_size, style)[0]
        np.clip(y, 0.0, 1.0, out=y)
        if preserve_color:
            y = keep_color(y, content)
        if strength < 1.0:
            y = strength * y + (1.0 - strength) * content
            np.clip(y, 0.0, 1.0, out=y)
        return y

    def stylize(
        self,
        image: ImageSource,
        *,
        size: int | None = None,
        preserve_color: bool = False,
        strength: float = 1.0,
        tile: int | None = None,
        work_size: int | None = None,
        style: StyleChoice = None,
    ) -> Image.Image:
        """Stylize one image; returns an RGB PIL image.

        ``image``: a PIL image, a file path (or a demo photo's name: ``chelsea``), encoded bytes, an (H, W, 3) uint8
        array, or a (3, H, W) / (1, 3, H, W) float tensor in [0, 1]. ``size``: longer side of the output (default:
        the input's own size). ``preserve_color``: keep the input's colours (stylized luminance only).
        ``strength``: 0..1, blend of the stylized image with the input (0 returns the input unchanged,
        without running the network). ``tile``: see `network`. ``work_size``: see `paint`. ``style``: for a network
        of several styles, a name, ``"a=0.7,b=0.3"``, ``{"a": 0.7, "b": 0.3}`` or one weight per style (None: the
        current style, `set_style`).
        """
        weights = self.style_weights(style)  # checked before the image is read
        content = self.content_array(image, size)
        options = {"preserve_color": preserve_color, "strength": strength, "tile": tile, "work_size": work_size}
        options["style"] = weights
        return array_to_pil(self.stylize_array(content, **options))

    def stylize_frames(
        self, frames: Iterator[np.ndarray], options: FrameOptions | None = None, temporal: FrameTemporal | None = None
    ) -> Iterator[np.ndarray]:
        """Stylize a stream of (H, W, 3) uint8 video frames; yields (H', W', 3) uint8 frames.

        Against flicker, ``options.temporal`` in [0, 1) follows the input's motion: the previous output is
        moved along the optical flow and blended with the new one where the flow is reliable
        (`infer.temporal.TemporalFilter`; needs OpenCV). ``options.smooth`` in [0, 1), the older and weaker
        way, blends each output pixel with the previous output pixel with weight ``smooth * max(0, 1 - d /
        0.1)``, ``d`` being how much that input pixel changed (mean absolute RGB difference, 0..1): still areas
        are averaged, moving ones flicker. ``temporal`` (built from ``options`` when None) also measures the
        warping error when ``options.flicker``; pass one in to read its `summary` afterwards.
        """
        o = (options or FrameOptions()).check()
        if temporal is None:
            temporal = frame_temporal(o)
        prev_in: np.ndarray | None = None
        prev_out: np.ndarray | None = None
        temporal = temporal if temporal is not None and temporal.active else None
        for frame in frames:
            content = self.content_array(np.ascontiguousarray(frame[..., :3]), o.size)
            if temporal is not None:
                temporal.follow(content.transpose(1, 2, 0))
            out = self.stylize_array(
                content, preserve_color=o.preserve_color, strength=o.strength, tile=o.tile, work_size=o.work_size
            )
            if o.smooth > 0 and prev_out is not None and prev_in is not None and prev_in.shape == content.shape:
                change = np.abs(content - prev_in).mean(axis=0, keepdims=True)
                weight = o.smooth * np.clip(1.0 - change / 0.1, 0.0, None)
                out = weight * prev_out + (1.0 - weight) * out
            prev_in, prev_out = content, out
            if temporal is not None:
                out = temporal.show(content.transpose(1, 2, 0), out.transpose(1, 2, 0)).transpose(2, 0, 1)
            yield np.asarray(array_to_pil(out))


def frame_temporal(options: FrameOptions) -> FrameTemporal | None:
    """The filter and measure ``options`` ask for (None: neither, and OpenCV is not needed)."""
    if options.temporal <= 0 and not options.flicker:
        return None
    from infer.temporal.stream import FrameTemporal

    return FrameTemporal(options.temporal, options.flicker)


def _tensor_content(image: torch.Tensor, size: int | None) -> np.ndarray:
    """A (3, H, W) or (1, 3, H, W) tensor as a (3, H, W) array in [0, 1], longer side resized to ``size``."""
    from nst_core.image_io import resize_tensor, scaled_size

    t = image.detach().float().cpu()
    if t.dim() == 4 and t.shape[0] == 1:
        t = t[0]
    if t.dim() != 3 or t.shape[0] != 3:
        raise NSTError(f"expected a (3, H, W) image tensor, got shape {tuple(image.shape)}")
    if size is not None:
        w, h = scaled_size(t.shape[2], t.shape[1], size)
        t = resize_tensor(t, (h, w))
    return np.ascontiguousarray(t.clamp(0, 1).numpy())
