"""onnxruntime execution providers: the automatic choice, short names, and how to get a missing one."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from nst_core.errors import NSTError

#: Execution providers tried, in order, when none is forced (those missing from this build are skipped): NVIDIA's
#: (TensorRT before plain CUDA: faster once its engine is built), AMD's, then the platform accelerators (a Mac's
#: CoreML, Windows' DirectML, Intel's OpenVINO), the CPU last. Each onnxruntime build offers its own few.
AUTO_PROVIDERS = (
    "TensorrtExecutionProvider",
    "CUDAExecutionProvider",
    "MIGraphXExecutionProvider",
    "ROCMExecutionProvider",
    "CoreMLExecutionProvider",
    "DmlExecutionProvider",
    "OpenVINOExecutionProvider",
    "CPUExecutionProvider",
)
PROVIDER_ALIASES = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "trt": "TensorrtExecutionProvider",
    "rocm": "ROCMExecutionProvider",
    "migraphx": "MIGraphXExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "dml": "DmlExecutionProvider",
    "directml": "DmlExecutionProvider",
}
PROVIDER_HINTS = {
    "CUDAExecutionProvider": "pip uninstall onnxruntime && pip install onnxruntime-gpu",
    "TensorrtExecutionProvider": "pip install onnxruntime-gpu, with TensorRT's libraries on the library path",
    "DmlExecutionProvider": "pip uninstall onnxruntime && pip install onnxruntime-directml",
    "OpenVINOExecutionProvider": "pip install onnxruntime-openvino",
}


def short_provider(name: str) -> str:
    """``CUDAExecutionProvider`` -> ``cuda``."""
    for alias, full in PROVIDER_ALIASES.items():
        if full == name:
            return alias
    return name.removesuffix("ExecutionProvider").lower()


def available_providers() -> list[str]:
    """The providers this onnxruntime build offers (Azure's remote one left out)."""
    import onnxruntime as ort

    return [p for p in ort.get_available_providers() if p != "AzureExecutionProvider"]


def resolve_providers(provider: str | None) -> list[str]:
    """Providers to ask onnxruntime for: the automatic chain, or the forced one (+ CPU for unsupported ops)."""
    available = available_providers()
    if provider is None or provider.lower() == "auto":
        return [p for p in AUTO_PROVIDERS if p in available] or ["CPUExecutionProvider"]
    name = PROVIDER_ALIASES.get(provider.lower(), provider)
    if name not in available:
        usable = ", ".join(short_provider(p) for p in available)
        hint = f"; to get it: {PROVIDER_HINTS[name]}" if name in PROVIDER_HINTS else ""
        raise NSTError(
            f"execution provider {provider!r} is not available in this onnxruntime build (available: {usable}){hint}"
        )
    return [name] if name == "CPUExecutionProvider" else [name, "CPUExecutionProvider"]


def provider_options(name: str) -> dict[str, Any]:
    """Per-provider session options: TensorRT caches its engines (minutes to build) under ~/.cache/nst."""
    if name == "TensorrtExecutionProvider":
        cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "nst" / "tensorrt"
        try:
            cache.mkdir(parents=True, exist_ok=True)
        except OSError:
            return {}
        return {"trt_engine_cache_enable": True, "trt_engine_cache_path": str(cache)}
    return {}
