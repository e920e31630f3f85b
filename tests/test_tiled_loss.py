"""nst_core.optimize.tiled_loss: the tiled loss and gradient equal the whole image's, without seams, in bounded memory.

One caffe-VGG19 loss (default layers, TV on) and one 120x136 image (neither side a multiple of 16, so
the floors of the pooling grids are exercised) in 64 px tiles; the whole-image reference and the
tiled evaluations are computed once per module.
"""

from __future__ import annotations

import pytest
import torch

from nst_core.errors import NSTError
from nst_core.image_io import load_image
from nst_core.losses.perceptual import LossWeights, PerceptualLoss
from nst_core.optimize.tiled_loss import (
    DEFAULT_HALO,
    TiledLoss,
    estimate_bytes,
    exact_halo,
    plan_tiles,
    receptive_radius,
    tile_grid,
)
from tests.helpers import skimage_photo

H, W, TILE = 120, 136, 64
#: Halo 32 cuts relu5_1's receptive field (radius 70 px). Measured on this image: loss terms within
#: 8.8e-5 relative (content; style 2.4e-6), gradient relative L2 error 8.6e-5, cosine 1 - 3.6e-9,
#: seam ratio 1.25; asserted with ~10x margin. Halo 0 fails all of these (9% loss, 48% gradient, seam 3.3).
SHORT_HALO, SHORT_LOSS_TOL, SHORT_GRAD_TOL = 32, 1e-3, 1e-3
#: With the exact halo only float32 summation order differs: measured 6.4e-8 (terms), 1.8e-7 (gradient).
EXACT_TOL = 1e-5


@pytest.fixture(scope="module")
def setup(one_thread):
    loss = PerceptualLoss.build(LossWeights(tv=1.0))
    loss.set_style([load_image(skimage_photo("coffee.png"), 64).unsqueeze(0)])
    content = load_image(skimage_photo("astronaut.png"), 160).unsqueeze(0)[..., 20 : 20 + H, 10 : 10 + W]
    gen = torch.Generator().manual_seed(0)
    image = (content + 0.1 * torch.randn(content.shape, generator=gen)).clamp(0, 1)
    return loss, content, image


@pytest.fixture(scope="module")
def whole(setup):
    loss, content, image = setup
    x = image.clone().requires_grad_(True)
    terms = loss(x, loss.content_targets(content))
    terms["total"].backward()
    return {k: float(v.detach()) for k, v in terms.items()}, x.grad


@pytest.fixture(scope="module")
def tiled(setup):
    """halo -> (tiled loss, content targets, terms, gradient)."""
    loss, content, image = setup
    out = {}
    for halo in (SHORT_HALO, None):
        tl = TiledLoss(loss, tile=TILE, halo=halo)
        targets = tl.content_targets(content)
        out[halo] = (tl, targets, *tl.value_and_grad(image, targets))
    return out


def rel(a: float, b: float) -> float:
    return abs(a - b) / abs(b)


def grad_errors(g: torch.Tensor, ref: torch.Tensor) -> tuple[float, float]:
    """Cosine similarity and relative L2 error, in float64."""
    g, ref = g.double().flatten(), ref.double().flatten()
    return float(torch.nn.functional.cosine_similarity(g, ref, dim=0)), float((g - ref).norm() / ref.norm())


def test_cores_partition_the_image_on_the_pooling_grid() -> None:
    tiles = tile_grid(H, W, TILE, 32, 16)
    cover = torch.zeros(H, W, dtype=torch.int)
    for t in tiles:
        y0, y1, x0, x1 = t.core
        cover[y0:y1, x0:x1] += 1
        assert y0 % 16 == 0 and x0 % 16 == 0 and (y1 % 16 == 0 or y1 == H) and (x1 % 16 == 0 or x1 == W)
        ry0, ry1, rx0, rx1 = t.region
        assert ry0 == max(0, y0 - 32) and ry1 == min(H, y1 + 32) and rx0 == max(0, x0 - 32) and rx1 == min(W, x1 + 32)
    assert len(tiles) == 6 and bool((cover == 1).all())


def test_exact_halo_covers_the_receptive_field() -> None:
    assert receptive_radius("relu1_1") == 1 and receptive_radius("relu4_2") == 38 and receptive_radius("relu5_1") == 70
    assert exact_halo(list(LossWeights().style_layers)) == DEFAULT_HALO == 80


def test_loss_terms_match_the_whole_image(tiled, whole) -> None:
    ref, _ = whole
    for halo, tol in ((SHORT_HALO, SHORT_LOSS_TOL), (None, EXACT_TOL)):
        terms = tiled[halo][2]
        assert set(terms) == {"content", "style", "tv", "total"}
        for k in terms:
            assert rel(terms[k], ref[k]) < tol, (halo, k, terms[k], ref[k])


def test_gradient_matches_the_whole_image(tiled, whole) -> None:
    _, ref = whole
    cos, err = grad_errors(tiled[SHORT_HALO][3], ref)
    assert cos > 1 - 1e-6 and err < SHORT_GRAD_TOL, (cos, err)
    cos, err = grad_errors(tiled[None][3], ref)
    assert err < EXACT_TOL, err


def test_tiled_content_targets_equal_the_whole_image(setup, tiled) -> None:
    loss, content, _ = setup
    ref = loss.content_targets(content)["relu4_2"]
    assert torch.allclose(tiled[None][1]["relu4_2"], ref, rtol=0, atol=1e-5 * float(ref.abs().max()))


def test_tiled_style_targets_equal_the_whole_image(setup) -> None:
    _, _, image = setup
    styles, blend = [image, image.flip(-1)], [3, 1]
    whole, tiled = PerceptualLoss.build(), PerceptualLoss.build()
    whole.set_style(styles, blend)
    TiledLoss(tiled, tile=TILE).set_style(styles, blend)
    assert set(tiled.style_grams) == set(whole.style_grams) == set(LossWeights().style_layers)
    for name, ref in whole.style_grams.items():
        assert torch.allclose(tiled.style_grams[name], ref, rtol=EXACT_TOL, atol=EXACT_TOL * float(ref.abs().max()))


def test_one_tile_is_the_untiled_loss(setup, whole) -> None:
    loss, content, image = setup
    tl = TiledLoss(loss, tile=144)
    assert len(tl.tiles(H, W)) == 1
    terms, grad = tl.value_and_grad(image, tl.content_targets(content))
    ref_terms, ref_grad = whole
    assert all(rel(terms[k], ref_terms[k]) < 1e-6 for k in terms)
    assert torch.allclose(grad, ref_grad, rtol=1e-5, atol=1e-6 * float(ref_grad.abs().max()))


def test_no_seam_at_tile_edges(tiled, whole) -> None:
    """With the short halo, the error near an inner tile edge is not larger than elsewhere, and the
    gradient's column-magnitude profile follows the whole image's across every edge."""
    _, ref = whole
    tl, _, _, grad = tiled[SHORT_HALO]
    diff = (grad - ref).abs().sum(1)[0]
    near = torch.zeros(H, W, dtype=torch.bool)
    for y0, _, x0, _ in (t.core for t in tl.tiles(H, W)):
        near[max(0, y0 - 3) : y0 + 3, :] |= y0 > 0
        near[:, max(0, x0 - 3) : x0 + 3] |= x0 > 0
    assert float(diff[near].mean()) < 2 * float(diff[~near].mean())  # measured 1.25 (halo 0: 3.3)
    for dims in ((0, 1, 2), (0, 1, 3)):  # column profile, then row profile; measured 1.1e-4 (halo 16: 2.8e-2)
        profile, ref_profile = grad.abs().sum(dims), ref.abs().sum(dims)
        assert float(((profile - ref_profile).abs() / ref_profile).max()) < 1e-2


def test_gradient_pass_skipped_on_request(setup, tiled) -> None:
    _, _, image = setup
    tl, targets, terms, _ = tiled[SHORT_HALO]
    seen = []
    again, grad = tl.value_and_grad(image, targets, grad_if=lambda t: seen.append(t) or False)
    assert grad is None and again == terms == seen[0]


def test_refuses_what_it_cannot_tile(setup) -> None:
    loss, _, image = setup
    with pytest.raises(NSTError, match="multiple of 16"):
        TiledLoss(loss, tile=100)
    with pytest.raises(NSTError, match="halo must be"):
        TiledLoss(loss, tile=64, halo=20)
    tl = TiledLoss(loss, tile=64)
    wrong = {"relu4_2": torch.zeros(1, 512, 5, 5)}
    with pytest.raises(NSTError, match="content targets for relu4_2"):
        tl.value_and_grad(image, wrong)


def test_plan_tiles_fits_posters_in_their_budgets() -> None:
    gib = 2**30
    assert plan_tiles(512, 512, 6 * gib) is None
    for side, budget in ((2048, 6 * gib), (4096, 16 * gib)):
        tile = plan_tiles(side, side, budget)
        assert tile is not None and tile % 16 == 0 and tile >= 256
        assert estimate_bytes(side, side, tile) <= budget < estimate_bytes(side, side, None)
    with pytest.raises(NSTError, match="does not fit"):
        plan_tiles(4096, 4096, gib)
