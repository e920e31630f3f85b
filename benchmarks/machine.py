"""One line naming the machine a benchmark ran on (CPU model, cores, threads, GPU, versions)."""

from __future__ import annotations

import os
import platform

from nst_core.machine import cpu_model


def describe() -> str:
    """E.g. 'AMD EPYC, 2 CPUs, 2 torch threads, no GPU, load 0.31; torch 2.14.1, python 3.11.7'."""
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (
        f"{cpu_model()}, {os.cpu_count()} CPUs, {torch.get_num_threads()} torch threads, {gpu}, "
        f"load {os.getloadavg()[0]:.2f}; torch {torch.__version__}, python {platform.python_version()}"
    )
