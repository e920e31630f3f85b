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
        "weights": ["LossWeights", "layer_names", "check_layers", "loss_section"],
        "vgg": ["VGGFeatures"],
        "perceptual": ["PerceptualLoss", "blend_weights", "gram_matrix", "style_loss", "total_variation"],
    },
)
