"""One style weight for every painting: scaled by the painting's Gram energy.

The Gram loss grows with the energy of the painting's Gram matrices (the sum of their squared entries over
the style layers). At one style weight, a painting of soft contrast and few strong textures is therefore
learnt paler than one of bold texture: at 256 px with Johnson et al.'s layers, udnie's and great_wave's
energy is 2-2.5x under starry_night's (on which the default weight was calibrated) and their shipped
networks look pale beside their paintings, while candy's is 2.3x over it. The energy rule scales the
weight by the reference painting's energy over this painting's, so every painting pulls as hard as the
reference did at the weight given.
"""

from __future__ import annotations

import torch

from nst_core.losses.perceptual import PerceptualLoss, gram_matrix
from nst_core.losses.weights import LossWeights

#: The painting the trainer's style weight was calibrated on (configs/default.yaml), a built-in style.
REFERENCE_STYLE = "starry_night"


@torch.no_grad()
def gram_energy(loss: PerceptualLoss, image: torch.Tensor) -> float:
    """Sum over the style layers of each layer's weight times its squared Gram entries; ``image`` (3, H, W)."""
    feats = loss.encoder(image.unsqueeze(0).to(next(loss.encoder.parameters()).device))
    w = loss.weights
    return float(sum(w.layer_weights[n] * gram_matrix(feats[n].float()).square().sum() for n in w.style_layers))


def energy_scaled_style_weight(
    weights: LossWeights, style: torch.Tensor, reference: torch.Tensor, vgg_weights: str = "caffe"
) -> tuple[float, float, float]:
    """(the style weight for ``style``, its energy, the reference's): ``weights.style`` times the reference
    painting's Gram energy over ``style``'s, both images as the loss sees them (same size and layers)."""
    loss = PerceptualLoss.build(weights, vgg_weights=vgg_weights)
    mine, ref = gram_energy(loss, style), gram_energy(loss, reference)
    return weights.style * ref / mine, mine, ref
