"""Channels-last 3D training: the memory layout of convolution weights and batches.

oneDNN runs 3D convolutions faster on channels-last (NDHWC) tensors on the CPU: one training
step of the translation U-Net (batch 4 x 32^3, fp32, one thread) took 77 ms instead of 113 ms
on a 2-core AVX-512 EPYC (docs/decisions.md). The layout changes where values sit in memory,
not what they are: results agree with the contiguous layout to float rounding. Only 5D tensors
have this layout; 2D networks and everything that is not 5D stay as they are.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal

import torch
from torch import nn


def resolve_channels_last(requested: bool | Literal["auto"], device: torch.device) -> bool:
    """``train.channels_last`` for ``device``: ``auto`` = on the CPU (measured faster), off on CUDA."""
    if requested == "auto":
        return device.type == "cpu"
    return bool(requested)


def memory_format_for(channels_last: bool) -> torch.memory_format:
    """The 5D memory format for the ``channels_last`` setting."""
    return torch.channels_last_3d if channels_last else torch.contiguous_format


def lay_out_weights(networks: Iterable[nn.Module], memory_format: torch.memory_format) -> None:
    """Re-lay every 5D parameter and buffer of ``networks`` in ``memory_format``, in place.

    Parameters keep their identity (only ``.data`` moves), so call this before building
    optimizers, EMA copies or DDP wrappers that should see the new layout.
    """
    for network in networks:
        for module in network.modules():
            for parameter in module.parameters(recurse=False):
                if parameter.dim() == 5:
                    parameter.data = parameter.data.contiguous(memory_format=memory_format)
            for name, buffer in module.named_buffers(recurse=False):
                if buffer.dim() == 5:
                    setattr(module, name, buffer.contiguous(memory_format=memory_format))


def lay_out_batch(batch: Mapping[str, torch.Tensor], memory_format: torch.memory_format) -> dict[str, torch.Tensor]:
    """``batch`` with its 5D tensors in ``memory_format`` (others unchanged)."""
    return {
        key: value.contiguous(memory_format=memory_format) if value.dim() == 5 else value
        for key, value in batch.items()
    }
