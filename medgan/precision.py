"""Mixed precision: resolve the configured precision for a device and give the autocast context.

Measured (docs/decisions.md): bf16 autocast is several times faster than fp32 for
3D convs on CPUs with AMX (oneDNN runs bf16 convolutions on the AMX tiles), 2-3x
faster on CPUs with AVX-512 BF16 (``vdpbf16ps``), and no faster, or far slower
(emulated), on CPUs with neither. Training's ``auto`` means bf16 on CUDA devices
that support it and fp32 elsewhere (training numerics are not worth the risk);
inference's ``auto`` also takes bf16 on CPUs with native bf16 (:func:`native_bf16`).
fp16 is offered on CUDA only, with a dynamic grad scaler.
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


def native_bf16() -> bool:
    """Whether this CPU runs bf16 convolutions natively: AMX tiles or AVX-512 BF16 instructions.

    Without either, oneDNN emulates bf16: a 128^3 generator sample ran for over 10 minutes
    on a 2-core AVX2 EPYC without finishing (fp32: ~1 s).
    """
    features = cpu_features()
    return features["amx_bf16"] or features["avx512_bf16"]


def cpu_bf16_name() -> str:
    """The CPU feature that decides the inference path, for logs: AMX, AVX-512 BF16, AVX-512 or none."""
    features = cpu_features()
    if features["amx_bf16"]:
        return "AMX"
    if features["avx512_bf16"]:
        return "AVX-512 BF16"
    return "AVX-512" if features["avx512f"] else "no AVX-512"


def resolve_inference_precision(requested: str, device: torch.device) -> str:
    """``fp32`` or ``bf16`` for inference on ``device``.

    ``auto``: bf16 on CUDA with bf16 support and on CPUs with native bf16 (AMX or
    AVX-512 BF16, :func:`native_bf16`), fp32 elsewhere. An explicit ``bf16`` is
    honoured everywhere (it runs, if slowly).
    """
    if requested == "auto":
        if device.type == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
        return "bf16" if native_bf16() else "fp32"
    if requested not in ("fp32", "bf16"):
        raise ConfigError(f"unknown inference precision {requested!r}", fix="use auto, fp32 or bf16")
    return requested
