"""Inference for trained style networks, one sub-package per command:

- ``stylize``: `Stylizer`, instant stylization with onnxruntime (images, folders, videos with their sound,
  tiles for large images, execution providers) and the `nst stylize` command;
- ``live``: a camera or stream stylized live (`nst live`);
- ``models``: the pretrained models that ship with the package (`nst models`);
- ``export``: a trained network to ONNX, checked against PyTorch, fp16 and int8 copies (`nst export`);
- ``compare``: the fast network against the iterative optimizer on your photos (`nst compare`);
- ``app``: the Gradio web app over all of it (`nst app`).

``stylize``, ``live`` and ``models`` need no torch (the light install); the others do.
"""

from nst_core.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "stylize.stylizer": ["Stylizer"],
        "models.shipped": ["resolve_model", "shipped_models"],
    },
)
