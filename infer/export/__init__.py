"""A trained network to ONNX (`export_onnx`, `nst export`), checked against PyTorch before anything is written.

- ``exporter``: `export_onnx` (to a file) and `build_onnx` (in memory), the check against PyTorch;
- ``graph``: the network rewritten for inference and traced with dynamic batch, height and width;
- ``format``: opsets, tensor names and the ``nst.*`` metadata every exported file carries (no torch);
- ``precision``: fp16 and calibrated int8 copies;
- ``cli``: the `nst export` command.
"""

from nst_core.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "exporter": ["export_onnx", "build_onnx", "ExportResult"],
        "format": ["DEFAULT_OPSET", "DEFAULT_TOLERANCE", "EXPORTERS"],
    },
)
