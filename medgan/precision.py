"""Mixed precision: resolve the configured precision for a device and give the autocast context.

Measured on this project's CPU (docs/decisions.md):
bf16 autocast is not faster than fp32 for 3D convs on CPUs without AMX, so
``auto`` means bf16 on CUDA devices that support it and fp32 elsewhere.
fp16 is offered on CUDA only, with a dynamic grad scaler.
"""

from __future__ import annotations

import contextlib

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
