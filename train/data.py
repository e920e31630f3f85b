"""Training images: a local folder or a `datasets` hub dataset, decoded and cropped in DataLoader workers.

Resumption is exact because the order is a pure function of (seed, position): sample number
``p`` is image ``perm(seed, epoch=p // n)[p % n]`` with a crop drawn from a generator seeded
by ``(seed, p)``. Restarting the sampler at position ``p`` therefore replays the same stream
whatever the number of workers. Unreadable images are replaced by the next readable one and
reported by name, so a corrupt file is skipped and counted, never a crash.
"""

from __future__ import annotations

import io
import logging
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, IterableDataset, Sampler

from nst_core.errors import NSTError, first_line
from nst_core.image_io import MIN_SIDE, center_crop, check_pixels, open_image, pil_to_tensor, scan_images
from nst_core.log import LOG
from train.config import TrainConfig, missing_path_hint

_HUB_NAME = re.compile(r"^[\w.-]+(/[\w.-]+)?$")


@dataclass
class ImageSource:
    """An opened dataset: the `datasets` object, its image column and its length (None: unknown)."""

    name: str
    dataset: Any
    column: str
    length: int | None
    streaming: bool
    ignored: list[Path] = field(default_factory=list)  # non-image files of a local folder

    def summary(self) -> str:
        """One line for stderr: what will be trained on, and what was left out."""
        count = f"{self.length} image files" if self.length is not None else "a stream of images"
        if not self.ignored:
            return f"data: {count} from {self.name}"
        names = ", ".join(p.name for p in self.ignored[:3]) + (" ..." if len(self.ignored) > 3 else "")
        return f"data: {count} from {self.name}; {len(self.ignored)} non-image file(s) ignored ({names})"


def _image_column(ds: Any, name: str) -> str:
    import datasets

    features = getattr(ds, "features", None) or {}
    for col, feat in features.items():
        if isinstance(feat, datasets.Image):
            return col
    for col in ("image", "img"):
        if col in features:
            return col
    raise NSTError(f"{name}: dataset has no image column (columns: {', '.join(features) or 'unknown'})")


def open_source(data: str, split: str = "train", streaming: bool = False, flag: str = "--data") -> ImageSource:
    """Open a local image folder (every image file, recursively) or a hub dataset; NSTError on failure (naming
    ``flag``, the option that gives ``data``)."""
    import datasets

    datasets.logging.set_verbosity_error()
    datasets.disable_progress_bars()
    path = Path(data).expanduser()
    if path.exists():
        return _open_folder(data, path, streaming)
    if not _HUB_NAME.match(data):
        raise NSTError(f"{data}: no such folder{missing_path_hint(data, flag)}")
    if LOG.isEnabledFor(logging.INFO):  # a hub download shows its progress on stderr (not under -q)
        datasets.enable_progress_bars()
    try:
        ds = datasets.load_dataset(data, split=split, streaming=streaming)
    except Exception as e:
        raise NSTError(
            f"{data}: not a local folder, and loading it as a hub dataset failed ({type(e).__name__}: {first_line(e)})"
            f"{missing_path_hint(data, flag)}"
        ) from None
    column = _image_column(ds, data)
    ds = ds.cast_column(column, datasets.Image(decode=False))  # we decode, so corrupt files can be skipped
    if streaming:
        info = (getattr(ds.info, "splits", None) or {}).get(split)
        length = info.num_examples if info is not None and info.num_examples else None
    else:
        length = len(ds)
    if length == 0:
        raise NSTError(f"{data}: the dataset is empty")
    return ImageSource(data, ds, column, length, streaming)


def _open_folder(data: str, path: Path, streaming: bool) -> ImageSource:
    """Every file Pillow can read, whatever its name.

    Not `datasets`' imagefolder: it infers splits from file NAMES (``test_shot.jpg`` goes to a test
    split, a folder of ``coco_val2017_*.jpg`` has no train split at all).
    """
    import datasets

    if not path.is_dir():
        raise NSTError(f"{data}: --data must be a folder of images or a dataset name, not a file")
    images, others = scan_images(path)
    if not images:
        raise NSTError(f"{data}: no images found in this folder (searched recursively; {len(others)} other file(s))")
    ds = datasets.Dataset.from_dict({"image": [str(p) for p in images]})
    ds = ds.cast_column("image", datasets.Image(decode=False))  # we decode, so corrupt files can be skipped
    if streaming:
        ds = ds.to_iterable_dataset()
    return ImageSource(data, ds, "image", len(images), streaming, ignored=others)


def _describe(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("path") or "<bytes>")
    return str(getattr(value, "filename", "") or "<image>")


def decode(value: Any, size: int) -> Image.Image:
    """`datasets` image value (path/bytes dict or PIL image) -> RGB PIL image; NSTError when unreadable."""
    if isinstance(value, Image.Image):
        return open_image(value)
    if not isinstance(value, dict):
        raise NSTError(f"unexpected image value {type(value).__name__}")
    raw = value.get("bytes")
    try:
        fp = io.BytesIO(raw) if raw else open(value["path"], "rb")  # noqa: SIM115 - closed by `with fp`
    except OSError as e:
        raise NSTError(f"{value.get('path')}: cannot open ({e})") from None
    with fp:
        try:
            img = Image.open(fp)
            check_pixels(_describe(value), img.size)  # a decompression bomb is skipped, never decoded
            img.draft("RGB", (2 * size, 2 * size))  # JPEG: decode at a reduced scale when it is big enough
            img.load()
        except NSTError:
            raise
        except Exception as e:  # anything Pillow throws on a bad file
            raise NSTError(f"{_describe(value)}: unreadable ({type(e).__name__})") from None
    if min(img.size) < MIN_SIDE:  # a 1x1 picture is skipped like a corrupt one, as every command rejects it
        raise NSTError(f"{_describe(value)}: image is {img.width}x{img.height} pixels")
    return open_image(img)


def random_crop(img: Image.Image, size: int, scale: Sequence[float], rng: np.random.Generator) -> torch.Tensor:
    """Square crop of a random side (sqrt of an area fraction of the shorter side^2), resized to ``size``.

    Returned as uint8 (3, size, size): a quarter of the bytes of float through the worker pipes.
    """
    w, h = img.size
    short = min(w, h)
    side = max(1, round(short * math.sqrt(rng.uniform(scale[0], scale[1]))))
    left = int(rng.integers(0, w - side + 1))
    top = int(rng.integers(0, h - side + 1))
    crop = img.resize(
        (size, size), Image.Resampling.BILINEAR, box=(left, top, left + side, top + side), reducing_gap=2.0
    )
    return torch.from_numpy(np.asarray(crop, dtype=np.uint8).copy()).permute(2, 0, 1).contiguous()


def epoch_permutation(n: int, seed: int, epoch: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return torch.randperm(n, generator=g)


class PositionSampler(Sampler[int]):
    """Endless global sample positions ``start + rank, start + rank + world, ...`` (DistributedSampler-style)."""

    def __init__(self, start: int = 0, rank: int = 0, world: int = 1) -> None:
        self.start, self.rank, self.world = start, rank, world

    def __iter__(self) -> Iterator[int]:
        p = self.start + self.rank
        while True:
            yield p
            p += self.world


class CroppedImages(Dataset):
    """Map-style: position -> (uint8 crop, position, names of unreadable files skipped on the way)."""

    def __init__(self, source: ImageSource, size: int, scale: Sequence[float], seed: int) -> None:
        self.ds, self.column, self.n = source.dataset, source.column, source.length or 0
        self.size, self.scale, self.seed = size, tuple(scale), seed
        self._perm: tuple[int, torch.Tensor] | None = None

    def __len__(self) -> int:
        return self.n

    def _index(self, position: int) -> int:
        epoch = position // self.n
        if self._perm is None or self._perm[0] != epoch:
            self._perm = (epoch, epoch_permutation(self.n, self.seed, epoch))
        return int(self._perm[1][position % self.n])

    def __getitem__(self, position: int) -> tuple[torch.Tensor, int, list[str]]:
        rng = np.random.default_rng([self.seed, position])
        idx = self._index(position)
        skipped: list[str] = []
        for k in range(self.n):  # the next readable image stands in for a corrupt one
            value = self.ds[(idx + k) % self.n][self.column]
            try:
                return random_crop(decode(value, self.size), self.size, self.scale, rng), position, skipped
            except NSTError:
                skipped.append(_describe(value))
        raise NSTError("no readable image in the dataset (every file failed to decode)")


#: A stream position is ``epoch * STREAM_EPOCH + index`` in this process's split of that epoch's shuffled stream.
STREAM_EPOCH = 1 << 40


class StreamedImages(IterableDataset):
    """Streaming data: a seeded shuffle per epoch, split between processes by `datasets`' split_dataset_by_node
    (whole shards per process when they divide evenly, else every ``world``-th example).

    Positions count this process's examples (`STREAM_EPOCH`), so resumption skips exactly what it used.
    Runs in the main process (num_workers=0): positions must follow the stream's order.
    """

    def __init__(
        self,
        source: ImageSource,
        size: int,
        scale: Sequence[float],
        seed: int,
        start: int,
        rank: int = 0,
        world: int = 1,
        shuffle_buffer: int = 1000,
    ) -> None:
        self.source, self.size, self.scale, self.seed = source, size, tuple(scale), seed
        self.start, self.rank, self.world, self.buffer = start, rank, world, shuffle_buffer

    def _epoch(self, epoch: int, offset: int) -> Any:
        from datasets.distributed import split_dataset_by_node

        stream = self.source.dataset.shuffle(seed=self.seed + epoch, buffer_size=self.buffer)
        stream = split_dataset_by_node(stream, rank=self.rank, world_size=self.world)
        return stream.skip(offset) if offset else stream

    def __iter__(self) -> Iterator[tuple[torch.Tensor, int, list[str]]]:
        epoch, index = divmod(self.start, STREAM_EPOCH)
        skipped: list[str] = []
        while True:
            seen = index
            for row in self._epoch(epoch, index):
                position, seen = epoch * STREAM_EPOCH + seen, seen + 1
                value = row[self.source.column]
                try:
                    img = decode(value, self.size)
                except NSTError:
                    skipped.append(_describe(value))
                    continue
                rng = np.random.default_rng([self.seed, self.rank, position])
                yield random_crop(img, self.size, self.scale, rng), position, skipped
                skipped = []
            if seen == 0:
                raise NSTError(f"{self.source.name}: the stream yielded no images")
            epoch, index = epoch + 1, 0


def collate(items: list[tuple[torch.Tensor, int, list[str]]]) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    images = torch.stack([it[0] for it in items])
    positions = torch.tensor([it[1] for it in items], dtype=torch.long)
    return images, positions, [name for it in items for name in it[2]]


def make_loader(
    cfg: TrainConfig, source: ImageSource, start: int = 0, rank: int = 0, world: int = 1, pin_memory: bool = False
) -> DataLoader:
    """An endless loader of (uint8 images, positions, skipped names) starting at global position ``start``."""
    size, scale, seed = cfg.image_size, cfg.crop_scale, cfg.seed
    if source.streaming:
        stream = StreamedImages(source, size, scale, seed, start, rank, world)
        return DataLoader(stream, batch_size=cfg.batch_size, num_workers=0, collate_fn=collate, pin_memory=pin_memory)
    workers = cfg.num_workers
    return DataLoader(
        CroppedImages(source, size, scale, seed),
        batch_size=cfg.batch_size,
        sampler=PositionSampler(start, rank, world),
        num_workers=workers,
        collate_fn=collate,
        pin_memory=pin_memory,
        persistent_workers=workers > 0,
        prefetch_factor=4 if workers > 0 else None,
    )


def sample_photos(source: ImageSource, count: int, size: int) -> tuple[torch.Tensor, list[str]]:
    """The first ``count`` readable images, center-cropped: the fixed set stylized for sample grids.

    Also validates the data before training: NSTError when nothing at all can be decoded.
    """
    photos: list[torch.Tensor] = []
    skipped: list[str] = []
    rows = iter(source.dataset)
    for row in rows:
        value = row[source.column]
        try:
            photos.append(pil_to_tensor(center_crop(decode(value, size), size)))
        except NSTError:
            skipped.append(_describe(value))
            continue
        if len(photos) == count:
            break
    if not photos:
        raise NSTError(f"no readable image among {len(skipped)} files in {source.name}")
    return torch.stack(photos), skipped
