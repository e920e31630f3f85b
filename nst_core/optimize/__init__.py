"""The iterative method (Gatys et al.): `optimize` one image from a photo and one or more styles.

- ``scales``: `optimize`, the coarse-to-fine loop over sizes, and its `OptimizeResult`;
- ``config``: `OptimizeConfig`, every setting of a run, and the convergence rule;
- ``run``: one scale's optimiser steps (L-BFGS or Adam), best-point tracking, the time limit;
- ``tiled_loss``: the perceptual loss computed in VGG tiles, for images larger than memory allows;
- ``checkpoint``: `--resume` / `--max-time` checkpoints;
- ``cli``: the `nst optimize` command.
"""

from nst_core.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "scales": ["optimize", "OptimizeResult", "resolve_device"],
        "config": ["OptimizeConfig", "OPTIMIZERS", "auto_scales"],
        "tiled_loss": ["TiledLoss", "plan_tiles"],
        "checkpoint": ["OptimizeCheckpointer"],
    },
)
