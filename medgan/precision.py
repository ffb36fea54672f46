"""Mixed precision: resolve the configured precision for a device and give the autocast context.

Measured (docs/decisions.md): bf16 autocast is not faster than fp32 for 3D convs
on CPUs without AMX (1.2-1.4x at best), and several times faster on CPUs with AMX
(oneDNN runs bf16 convolutions on the AMX tiles). Training's ``auto`` means bf16
on CUDA devices that support it and fp32 elsewhere (training numerics are not
worth the risk for a small gain); inference's ``auto`` also takes bf16 on CPUs
with AMX. fp16 is offered on CUDA only, with a dynamic grad scaler.
"""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path

import torch

from medgan.errors import ConfigError

_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_precision(requested: str, device: torch.device) -> str:
    """``fp32``, ``bf16`` or ``fp16`` for ``device`` (``auto``: bf16 on capable CUDA, else fp32)."""
    if requested == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return "bf16"
        return "fp32"
    if requested == "fp16" and device.type != "cuda":
        raise ConfigError("train.precision fp16 needs a CUDA device", fix="use precision: bf16, fp32 or auto on CPU")
    return requested


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """The autocast context for ``precision`` (a no-op for fp32)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=_DTYPES[precision])


CPU_FEATURE_FLAGS = ("amx_bf16", "avx512_bf16", "avx512f", "avx2")
"""The /proc/cpuinfo flags that decide (and explain) the CPU inference path."""


@functools.lru_cache(maxsize=1)
def cpu_features() -> dict[str, bool]:
    """Which of :data:`CPU_FEATURE_FLAGS` this CPU reports (all False where /proc/cpuinfo is unreadable)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        text = ""
    flags: set[str] = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            break
    return {name: name in flags for name in CPU_FEATURE_FLAGS}


def resolve_inference_precision(requested: str, device: torch.device) -> str:
    """``fp32`` or ``bf16`` for inference on ``device``.

    ``auto``: bf16 on CUDA with bf16 support and on CPUs with AMX (``amx_bf16``),
    fp32 elsewhere. An explicit ``bf16`` is honoured everywhere (it runs, if slowly).
    """
    if requested == "auto":
        if device.type == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
        return "bf16" if cpu_features()["amx_bf16"] else "fp32"
    if requested not in ("fp32", "bf16"):
        raise ConfigError(f"unknown inference precision {requested!r}", fix="use auto, fp32 or bf16")
    return requested
