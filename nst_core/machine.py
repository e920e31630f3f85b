"""What machine a report or benchmark ran on: CPU model, cores, threads, GPU, library versions."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any


def cpu_model() -> str:
    """The CPU's marketing name from /proc/cpuinfo (platform.processor() is often empty on Linux)."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(device: str | None = None) -> dict[str, Any]:
    """CPU, cores, threads, GPU, load and versions of torch/onnxruntime/python, for reports."""
    import torch

    info: dict[str, Any] = {
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "load": round(os.getloadavg()[0], 2),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }
    try:
        import onnxruntime

        info["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        info["onnxruntime"] = None
    if device is not None:
        info["device"] = str(device)
    return info


def describe(info: dict[str, Any] | None = None) -> str:
    """One line, e.g. 'AMD EPYC, 2 CPUs, 2 torch threads, no GPU, load 0.31; torch 2.14.1, python 3.11.7'."""
    m = info or machine_info()
    ort = f", onnxruntime {m['onnxruntime']}" if m.get("onnxruntime") else ""
    device = f", device {m['device']}" if m.get("device") else ""
    return (
        f"{m['cpu']}, {m['cpu_count']} CPUs, {m['torch_threads']} torch threads, {m['gpu'] or 'no GPU'}, "
        f"load {m['load']:.2f}{device}; torch {m['torch']}{ort}, python {m['python']}"
    )
