"""The pretrained models that ship with the package: the ``.onnx`` files in this folder, each describing itself
in its metadata (``shipped``: the registry, and how every ``--model`` resolves a name), listed by
`nst models` (``cli``). The maintainers' release tool that writes them is ``tools/ship.py`` in the repository."""

from nst_core.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "shipped": ["ShippedModel", "shipped_models", "find_shipped", "resolve_model", "models_dir"],
    },
)
