"""Fast vs iterative (`compare`, `nst compare`): a trained network against the optimizer on the same photos,
scored by one perceptual loss, with the optimizer's iterations to match the network.

- ``run``: `compare`, the recipe; ``config``: `CompareConfig`, its settings;
- ``model``: the network under test, ONNX or PyTorch; ``results``: what was measured;
- ``report``: the report folder (grid, curves, ``report.json``); ``cli``: the command.
"""

from nst_core.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "run": ["compare"],
        "config": ["CompareConfig"],
        "results": ["CompareReport"],
        "report": ["write_report"],
    },
)
