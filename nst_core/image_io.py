"""Reading, resizing, converting and atomically saving images.

Everything the rest of the toolkit sees is an RGB float tensor in [0, 1], shaped (3, H, W)
or (N, 3, H, W), or the same as a NumPy array for onnxruntime; every odd file format and every
image idiom (resize by the longer side, centre crop, atomic write, which files are images) lives
here, once. torch is imported only by the tensor functions, so the ONNX path runs without it.
"""

from __future__ import annotations

import io
import os
import warnings
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from nst_core.builtin_photos import BUILTIN_PHOTOS, builtin_photo_path
from nst_core.builtin_styles import builtin_style_path, resolve_style
from nst_core.errors import NSTError
from nst_core.files import atomic_path, check_output_folder
from nst_core.log import LOG

if TYPE_CHECKING:
    import torch

ImageFile.LOAD_TRUNCATED_IMAGES = False  # a cut-off file is an error, never a half-grey picture
#: Pillow's own thresholds: a warning above 89.5 MP, an error above twice that. We check the size from the
#: header ourselves (`check_pixels`), so the message is one line and `--max-pixels` can move the limit.
WARN_PIXELS = Image.MAX_IMAGE_PIXELS or 89_478_485
DEFAULT_MAX_PIXELS = 2 * WARN_PIXELS
_limits = {"max_pixels": DEFAULT_MAX_PIXELS}
_warned: set[str] = set()
Image.MAX_IMAGE_PIXELS = None  # Pillow's check replaced by check_pixels (no raw DecompressionBombWarning)

#: File extensions ``save_image`` knows how to write, mapped to Pillow format names.
SAVE_FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".webp": "WEBP",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}
#: Smallest side accepted when reading an image (a 1x1 picture carries no content or style).
MIN_SIDE = 2


def _to_rgb(img: Image.Image) -> Image.Image:
    """Convert any Pillow mode (L, LA, P, RGBA, CMYK, I;16, I, F ...) to 8-bit RGB."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        peak = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        img = Image.fromarray(np.clip(arr / peak * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))  # transparent -> white
        img = Image.alpha_composite(background, rgba)
    return img.convert("RGB") if img.mode != "RGB" else img


BUILTIN_PREFIX = "skimage:"


def resolve_builtin(name: str) -> Path:
    """``skimage:astronaut`` -> the photo scikit-image ships (astronaut, chelsea, coffee, rocket ...); without
    scikit-image, the copy nst ships of the same name (`nst_core.builtin_photos`).

    Lets demos and tests run on real pictures with nothing downloaded.
    """
    stem = name[len(BUILTIN_PREFIX) :]
    try:
        import skimage.data
    except ImportError:
        shipped = builtin_photo_path(stem)
        if shipped is not None:
            return shipped
        raise NSTError(
            f"{name}: scikit-image's photos need scikit-image (pip install scikit-image); the demo photos nst ships "
            f"are named without skimage: ({', '.join(BUILTIN_PHOTOS)})"
        ) from None
    folder = Path(skimage.data.__file__).parent
    matches = sorted(p for p in folder.glob(f"{stem}.*") if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    if not stem or not matches:
        known = sorted({p.stem for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg")})
        raise NSTError(f"{name}: no such built-in image; known: {', '.join(known)}")
    return matches[0]


def builtin_name(source: str) -> str | None:
    """The short name of a built-in image given by name (``skimage:NAME``, a demo photo, a built-in style) that is
    not an existing path; None for anything else (a path, stdin ...)."""
    if source.startswith(BUILTIN_PREFIX):
        return source[len(BUILTIN_PREFIX) :]
    if os.path.exists(source):
        return None
    return source if builtin_photo_path(source) or builtin_style_path(source) else None


def resolve_name(source: str) -> str | Path:
    """An image named in a string: ``skimage:NAME``, a built-in style (``starry_night``) or demo photo
    (``chelsea``; an existing file of that name wins), else the path as given."""
    if source.startswith(BUILTIN_PREFIX):
        return resolve_builtin(source)
    resolved = resolve_style(source)
    if resolved == source and not os.path.exists(source):
        return builtin_photo_path(source) or source
    return resolved


def display_name(source: str | os.PathLike) -> str:
    """A short name for an image source: ``skimage:coffee`` -> ``coffee``, ``styles/candy.jpg`` -> ``candy``
    (a built-in style's name is its own)."""
    s = str(source)
    return s[len(BUILTIN_PREFIX) :] if s.startswith(BUILTIN_PREFIX) else Path(s).stem


def open_image(source: str | os.PathLike | bytes | Image.Image) -> Image.Image:
    """Open an image file (or bytes, a PIL image, ``skimage:NAME`` or a built-in style name such as
    ``starry_night``) as an upright 8-bit RGB PIL image.

    Raises NSTError with the file name and the problem for anything that is not a usable picture.
    """
    if isinstance(source, Image.Image):
        return _to_rgb(ImageOps.exif_transpose(source))
    if isinstance(source, str):
        source = resolve_name(source)
    name = "<stdin>" if isinstance(source, bytes) else str(source)
    try:
        fp = io.BytesIO(source) if isinstance(source, bytes) else open(source, "rb")  # noqa: SIM115 - closed by the `with fp` below
    except FileNotFoundError:
        raise NSTError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise NSTError(f"{name}: is a directory, not an image file") from None
    except OSError as e:
        raise NSTError(f"{name}: cannot open ({e.strerror or e})") from None
    with fp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow's notes on odd files ("Tag data larger than file"): noise here
        try:
            img = Image.open(fp)
            check_pixels(name, img.size)  # from the header, before decoding a single pixel
            img.load()
        except UnidentifiedImageError:
            raise NSTError(f"{name}: not an image (Pillow cannot identify the format)") from None
        except (OSError, SyntaxError, ValueError) as e:
            raise NSTError(f"{name}: truncated or corrupt image ({e})") from None
    w, h = img.size
    if w < MIN_SIDE or h < MIN_SIDE:
        raise NSTError(f"{name}: image is {w}x{h} pixels; need at least {MIN_SIDE}x{MIN_SIDE}")
    try:
        return _to_rgb(ImageOps.exif_transpose(img))
    except (OSError, ValueError) as e:
        raise NSTError(f"{name}: cannot convert to RGB ({e})") from None


def set_max_pixels(limit: int) -> int:
    """Raise (or lower) the largest image accepted, in pixels (``--max-pixels``); returns the previous limit."""
    if limit <= 0:
        raise NSTError(f"max pixels must be positive, got {limit}")
    previous, _limits["max_pixels"] = _limits["max_pixels"], int(limit)
    return previous


def check_pixels(name: str, size: tuple[int, int]) -> None:
    """Refuse an image over the pixel limit (a decompression bomb, or a mistake) with one line; warn once,
    on one line, above Pillow's warning threshold, where decoding needs hundreds of MB."""
    w, h = size
    limit = _limits["max_pixels"]
    if w * h > limit:
        raise NSTError(
            f"{name}: image is {w}x{h} = {w * h:,} pixels, over the limit of {limit:,}; "
            f"--max-pixels {w * h} accepts it if you trust the file"
        )
    if w * h > WARN_PIXELS and name not in _warned:
        _warned.add(name)
        LOG.warning(f"{name} is {w}x{h} ({w * h / 1e6:.0f} megapixels); decoding it takes ~{w * h * 3 / 2**20:.0f} MB")


def scaled_size(width: int, height: int, longer_side: int | None) -> tuple[int, int]:
    """(width, height) with the longer side set to ``longer_side`` and the aspect ratio kept."""
    if longer_side is None:
        return width, height
    if longer_side <= 0:
        raise NSTError(f"size must be positive, got {longer_side}")
    scale = longer_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def resize_longer(img: Image.Image, size: int | None) -> Image.Image:
    """``img`` with its longer side resized to ``size`` (Lanczos), aspect kept; unchanged for None."""
    target = scaled_size(*img.size, size)
    return img if target == img.size else img.resize(target, Image.Resampling.LANCZOS)


def painting_at(img: Image.Image, size: int, min_side: int) -> Image.Image:
    """A style image at a picture's ``size`` (longer side), enlarged further if its shorter side would fall under
    ``min_side``: the painting as the loss at that size scores it (`nst compare`, the trainer's work-size check)."""
    short, long = sorted(img.size)
    return resize_longer(img, max(size, -(-min_side * long // short)))


def center_crop(img: Image.Image, size: int | None = None) -> Image.Image:
    """The largest centred square of ``img``, resized to ``size`` x ``size`` when given."""
    side = min(img.size)
    left, top = (img.width - side) // 2, (img.height - side) // 2
    box = (left, top, left + side, top + side)
    if size is None:
        return img.crop(box)
    return img.resize((size, size), Image.Resampling.LANCZOS, box=box)


def pil_to_array(img: Image.Image) -> np.ndarray:
    """RGB PIL image -> (3, H, W) float32 array in [0, 1] (same values as `pil_to_tensor`), for onnxruntime."""
    arr = np.asarray(img.convert("RGB"), dtype=np.float32)
    return np.ascontiguousarray(arr.transpose(2, 0, 1)) / np.float32(255.0)


def array_to_pil(arr: np.ndarray) -> Image.Image:
    """(3, H, W) or (1, 3, H, W) float array, clamped to [0, 1] -> 8-bit RGB PIL image (rounded to nearest)."""
    if arr.ndim == 4:
        arr = arr[0]
    out = np.rint(np.clip(arr, 0.0, 1.0) * np.float32(255.0)).astype(np.uint8)
    return Image.fromarray(np.ascontiguousarray(out.transpose(1, 2, 0)), "RGB")


def resize_array(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a (N, C, H, W) float array to (height, width): bicubic, antialiased when shrinking (Pillow's float
    images, one channel at a time), so the ONNX path needs no torch for it."""
    h, w = size
    if x.shape[-2:] == (h, w):
        return x
    bicubic = Image.Resampling.BICUBIC
    planes = [[Image.fromarray(np.ascontiguousarray(c, np.float32), "F").resize((w, h), bicubic) for c in i] for i in x]
    return np.asarray(planes, dtype=np.float32)


def pil_to_tensor(img: Image.Image) -> torch.Tensor:
    """8-bit RGB PIL image -> float tensor (3, H, W) in [0, 1]."""
    import torch

    arr = np.array(img.convert("RGB"), dtype=np.uint8)  # a writable copy for torch
    return torch.from_numpy(arr).permute(2, 0, 1).float().div_(255.0).contiguous()


def tensor_to_pil(t: torch.Tensor) -> Image.Image:
    """Float tensor (3, H, W) or (1, 3, H, W), any range -> 8-bit RGB PIL image (clamped to [0, 1])."""
    import torch

    if not isinstance(t, torch.Tensor):
        raise TypeError(f"expected a tensor, got {type(t).__name__}")
    if t.dim() == 4:
        if t.shape[0] != 1:
            raise ValueError(f"expected a single image, got a batch of {t.shape[0]}")
        t = t[0]
    arr = t.detach().float().clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(arr, "RGB")


def load_image(source: str | os.PathLike | bytes | Image.Image, size: int | None = None) -> torch.Tensor:
    """Read any Pillow-readable image as an RGB tensor (3, H, W) in [0, 1], longer side resized to ``size``."""
    return pil_to_tensor(resize_longer(open_image(source), size))


def resize_tensor(t: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize a (N, 3, H, W) or (3, H, W) tensor to (height, width), antialiased when shrinking."""
    import torch.nn.functional as F

    squeeze = t.dim() == 3
    x = t.unsqueeze(0) if squeeze else t
    if tuple(x.shape[-2:]) == tuple(size):
        return t
    shrinking = size[0] < x.shape[-2] or size[1] < x.shape[-1]
    y = F.interpolate(x, size=size, mode="bicubic", align_corners=False, antialias=shrinking)
    return y[0] if squeeze else y


# ------------------------------------------------------------------------------------------ which files are images


@cache
def readable_extensions() -> frozenset[str]:
    """Every file extension Pillow (with its installed plugins) can open, asked from its registry."""
    Image.init()
    return frozenset(ext.lower() for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN)


def is_image_file(path: str | os.PathLike) -> bool:
    """True for a file whose extension Pillow reads (by name only: the content is checked on opening)."""
    return Path(path).suffix.lower() in readable_extensions()


def scan_images(folder: str | os.PathLike) -> tuple[list[Path], list[Path]]:
    """(image files, other files) under ``folder``, recursively, sorted; hidden files and folders left out."""
    images, others = [], []
    root = Path(folder)
    for p in sorted(root.rglob("*")):
        if not p.is_file() or any(part.startswith(".") for part in p.relative_to(root).parts):
            continue
        (images if is_image_file(p) else others).append(p)
    return images, others


def check_output_image(path: str | os.PathLike) -> Path:
    """An output image path: a known extension and a folder that accepts files (`files.check_output_folder`)."""
    check_output_folder(path)
    image_format(path)
    return Path(path)


def image_format(path: str | os.PathLike) -> str:
    """Pillow format name for an output path, or NSTError naming the unsupported extension."""
    ext = Path(path).suffix.lower()
    if ext not in SAVE_FORMATS:
        raise NSTError(
            f"{path}: unsupported output extension {ext or '(none)'}; use one of " + ", ".join(sorted(SAVE_FORMATS))
        )
    return SAVE_FORMATS[ext]


def save_image(image: torch.Tensor | Image.Image, path: str | os.PathLike, quality: int = 95) -> Path:
    """Save atomically (temporary file, then rename); the format follows the extension."""
    fmt = image_format(path)
    img = image if isinstance(image, Image.Image) else tensor_to_pil(image)
    with atomic_path(path) as tmp:
        kwargs = {"quality": quality} if fmt in ("JPEG", "WEBP") else {}
        img.save(tmp, format=fmt, **kwargs)
    return Path(path)


def encode_image(image: torch.Tensor | Image.Image, fmt: str = "PNG", quality: int = 95) -> bytes:
    """Encode to bytes (for stdout and in-memory use)."""
    img = image if isinstance(image, Image.Image) else tensor_to_pil(image)
    buf = io.BytesIO()
    img.save(buf, format=fmt, **({"quality": quality} if fmt in ("JPEG", "WEBP") else {}))
    return buf.getvalue()
