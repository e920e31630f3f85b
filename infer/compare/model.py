"""The fast model of a comparison: an ONNX file (onnxruntime) or a trained network (PyTorch), one interface.

Each format keeps the style name and the training config under its own metadata keys: the ONNX
exporter (`infer.export.format.build_metadata`) writes ``nst.style`` and ``nst.config`` (a summary), the
trainer (through `nst_core.checkpoint_io.save_network`) ``style`` and ``config`` (the whole config).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from infer.models.shipped import resolve_model
from nst_core.errors import NSTError
from nst_core.image_io import array_to_pil, pil_to_array
from nst_core.losses.weights import LossWeights, loss_section
from nst_core.scales import model_work_size, stylize_multiscale


class FastModel:
    """A trained feed-forward network: ``stylize`` one image, plus what its metadata says."""

    #: metadata keys of the style name and of the training config (JSON)
    STYLE_KEY = CONFIG_KEY = ""
    path: Path
    provider: str
    metadata: dict[str, str]
    load_seconds: float

    def stylize(self, image: Image.Image) -> Image.Image:
        """The whole image in one pass (never tiled), as an RGB image."""
        raise NotImplementedError

    #: a network of several styles: their names (empty for one style), and the one it paints (`choose_style`)
    styles: tuple[str, ...] | list[str] = ()
    chosen: str | None = None

    @property
    def style(self) -> str | None:
        """The style the model was trained on (its file stem), if the metadata names one; for a network of several
        styles, the one it paints."""
        return self.chosen or self.metadata.get(self.STYLE_KEY) or None

    def choose_style(self, name: str) -> None:
        """A network of several styles paints ``name`` (the compared style image's name): NSTError listing its
        styles when it has no such style. A network of one style paints its own, whatever the name."""
        if not self.styles:
            return
        if name not in self.styles:
            raise NSTError(
                f"{self.path.name} has no style {name!r} (the style image's name picks one of its styles: "
                f"{', '.join(self.styles)})"
            )
        self.chosen = name

    def training_loss(self) -> LossWeights:
        """The loss the model was trained with: the config's ``loss:`` section, or the flat keys of older models."""
        raw = self.metadata.get(self.CONFIG_KEY)
        try:
            config = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            config = None
        section = loss_section(config) if isinstance(config, dict) else {}
        if not section:
            raise NSTError(
                f"{self.path}: its metadata holds no training loss ({self.CONFIG_KEY}) to take the metric from; "
                "use the default metric"
            )
        return LossWeights.from_dict(section, source=f"{self.path}: {self.CONFIG_KEY}")

    def info(self) -> dict[str, Any]:
        """For report.json: path, provider, style and the short metadata values."""
        return {
            "path": str(self.path),
            "provider": self.provider,
            "style": self.style,
            "metadata": {k: v for k, v in self.metadata.items() if len(str(v)) < 300},
        }


class OnnxModel(FastModel):
    """An exported ``.onnx`` model run by `infer.stylize.stylizer.Stylizer`."""

    STYLE_KEY, CONFIG_KEY = "nst.style", "nst.config"

    def __init__(self, path: Path, provider: str | None) -> None:
        from infer.stylize.stylizer import Stylizer

        self.path = path
        self.session = Stylizer(path, provider=provider, precision="fp32")
        self.provider = self.session.provider
        self.metadata = dict(self.session.metadata)
        self.load_seconds = self.session.load_seconds
        self.styles = self.session.styles

    def stylize(self, image: Image.Image) -> Image.Image:
        return self.session.stylize(image, tile=0, style=self.chosen).convert("RGB")


class TorchModel(FastModel):
    """A trained network (.safetensors / checkpoint / run folder) run by PyTorch."""

    STYLE_KEY, CONFIG_KEY = "style", "config"

    def __init__(self, path: Path, device: torch.device) -> None:
        from nst_core.checkpoint_io import load_network, style_names

        t0 = time.perf_counter()
        self.net, self.metadata = load_network(path, device)
        self.load_seconds = time.perf_counter() - t0
        self.path, self.device, self.provider = path, device, f"torch:{device}"
        self.styles = style_names(self.metadata, self.net.styles) if self.net.styles > 1 else []

    @torch.inference_mode()
    def stylize(self, image: Image.Image) -> Image.Image:
        """As `nst stylize` paints it: at the network's work size too on a large picture (nst_core.scales)."""

        def run(x: np.ndarray) -> np.ndarray:
            index = self.styles.index(self.chosen) if self.chosen else None
            return self.net(torch.from_numpy(x).to(self.device), index).float().cpu().numpy()

        y = stylize_multiscale(run, pil_to_array(image)[None], model_work_size(self.metadata) or 0)
        return array_to_pil(np.clip(y[0], 0.0, 1.0))


def load_fast_model(model: str | os.PathLike, device: torch.device, device_name: str = "auto") -> FastModel:
    """``.onnx`` through onnxruntime, anything else (``.safetensors``, checkpoint, run folder) through PyTorch;
    a shipped model by its name too (`infer.models.shipped.resolve_model`: an existing path wins).

    An explicit ``device_name`` picks the matching onnxruntime provider; ``auto`` lets onnxruntime choose
    (`infer.stylize.providers.AUTO_PROVIDERS`).
    """
    path = Path(resolve_model(model))  # a path, else a shipped model's name
    if path.suffix.lower() != ".onnx":
        return TorchModel(path, device)
    if not path.is_file():
        raise NSTError(f"{model}: not a file")
    provider = {"cpu": "cpu", "cuda": "cuda"}.get(device.type) if device_name != "auto" else None
    return OnnxModel(path, provider)
