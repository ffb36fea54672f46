"""Which torch device to compute on: the one rule for training, the translate job and the rest.

Callers name a device as config and the CLI do (``auto``, ``cpu``, ``cuda``,
``cuda:N``) or pass a ``torch.device``. ``auto`` and a bare ``cuda`` pick this
process's GPU, ``local_rank % device_count``, so torchrun ranks on one machine
spread over its GPUs. medgan computes on CPU or CUDA only; anything else, and
CUDA asked for where there is none, is a :class:`ConfigError` that says what to use.
"""

from __future__ import annotations

import torch

from medgan.errors import ConfigError

_CHOICES = "auto, cpu, cuda or cuda:N"


def resolve_device(requested: str | torch.device = "auto", local_rank: int = 0) -> torch.device:
    """The ``torch.device`` for ``requested`` on the process with ``local_rank`` (0 outside torchrun).

    ``"auto"``: CUDA device ``local_rank % device_count`` when CUDA is available, else
    the CPU. ``"cpu"``: the CPU. ``"cuda"`` (or a ``torch.device("cuda")`` without an
    index): this process's GPU, as for auto. ``"cuda:N"``: GPU N, which must exist.
    Raises :class:`ConfigError` for other names and for CUDA without a CUDA device.
    """
    if str(requested) == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = requested if isinstance(requested, torch.device) else torch.device(requested)
    except (RuntimeError, TypeError):
        device = None
    if device is None or device.type not in ("cpu", "cuda"):
        raise ConfigError(f"unknown device {str(requested)!r}", fix=f"use {_CHOICES}")
    if device.type == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ConfigError(
            f"device {str(requested)!r} was asked for but CUDA is not available", fix="use device auto or cpu"
        )
    count = torch.cuda.device_count()
    index = local_rank % count if device.index is None else device.index
    if index >= count:
        raise ConfigError(
            f"device {str(requested)!r} was asked for but this machine has {count} CUDA device(s)",
            fix=f"use cuda:0 ... cuda:{count - 1}, cuda or auto",
        )
    return torch.device("cuda", index)
