"""Perceptual losses: a frozen VGG encoder, the content, Gram style and total-variation terms, and their weights.

- ``weights``: `LossWeights`, the loss configuration as one object, and the VGG layer tables (no torch:
  command-line parsers build their defaults from it);
- ``vgg``: `VGGFeatures`, the frozen encoder and its weights;
- ``perceptual``: `PerceptualLoss` and the terms it adds up.
"""

from nst_core.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "LossWeights": "weights",
        "layer_names": "weights",
        "check_layers": "weights",
        "loss_section": "weights",
        "VGGFeatures": "vgg",
        "PerceptualLoss": "perceptual",
        "blend_weights": "perceptual",
        "gram_matrix": "perceptual",
        "style_loss": "perceptual",
        "total_variation": "perceptual",
    },
)
