"""The transformation network's variants: shapes, the fast layout's promises, the spec kept in the weights file."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from nst_core.checkpoint_io import load_network, save_network
from nst_core.transformer import VARIANTS, ShuffleUp, TransformerNet


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_any_size_in_gives_the_same_size_in_0_1(variant: str) -> None:
    torch.manual_seed(0)
    net = TransformerNet.from_variant(variant).eval()
    with torch.no_grad():
        for shape in [(1, 3, 37, 53), (2, 3, 8, 8), (1, 3, 5, 3)]:
            y = net(torch.rand(*shape))
            assert y.shape == shape and y.min() >= 0 and y.max() <= 1


def test_fast_variant_does_no_convolution_at_full_size() -> None:
    """Where its time goes: the work of Johnson et al.'s two 9x9 full-size convolutions moves to half size."""
    net = TransformerNet.from_variant("fast").eval()
    sizes: list[int] = []
    hooks = [
        m.register_forward_hook(lambda m, i, o: sizes.append(i[0].shape[-1]))
        for m in net.modules()
        if isinstance(m, nn.Conv2d)
    ]
    with torch.no_grad():
        net(torch.rand(1, 3, 64, 64))
    for h in hooks:
        h.remove()
    assert len(sizes) == 12 and max(sizes) <= 32 + 2  # half size, plus a reflection pad
    small = TransformerNet.from_variant("small")
    assert sum(p.numel() for p in net.parameters()) < sum(p.numel() for p in small.parameters())


def test_pixel_shuffle_starts_without_a_checkerboard() -> None:
    """ICNR: at initialisation every 2x2 block a ShuffleUp makes is one value (nearest upsampling), so training
    does not begin by unlearning a checkerboard."""
    torch.manual_seed(0)
    up = ShuffleUp(8, 3, norm=False, act=False)
    with torch.no_grad():
        for y in (up(torch.rand(1, 8, 10, 12)), TransformerNet.from_variant("fast")(torch.rand(1, 3, 32, 32))):
            blocks = y.unfold(2, 2, 2).unfold(3, 2, 2)  # (..., H/2, W/2, 2, 2)
            assert y.std() > 1e-3 and (blocks - blocks[..., :1, :1]).abs().max() < 1e-6


@pytest.mark.parametrize(
    "net",
    [TransformerNet.from_variant("fast"), TransformerNet(16, 3, 64, "shuffle"), TransformerNet(8, 2, 24)],
    ids=["fast", "custom-shuffle", "custom-johnson"],
)
def test_the_spec_survives_the_weights_file_with_or_without_metadata(tmp_path: Path, net: TransformerNet) -> None:
    path = save_network(net, tmp_path / "net.safetensors", {"style": "x"})
    loaded, meta = load_network(path)
    assert loaded.spec == net.spec and meta["variant"] == net.variant and meta["layout"] == net.spec.layout
    bare = tmp_path / "bare.safetensors"  # e.g. a state dict saved by other code: the spec is read off the shapes
    save_file(load_file(str(path)), str(bare))
    assert load_network(bare)[0].spec == net.spec
    x = torch.rand(1, 3, 24, 20)
    with torch.no_grad():
        assert torch.equal(loaded(x), load_network(bare)[0](x))


def test_unknown_layout_is_a_clear_error() -> None:
    from nst_core.errors import NSTError

    with pytest.raises(NSTError, match="unknown network layout 'pixel'"):
        TransformerNet(16, 3, 0, "pixel")
