"""3D image-to-image generators.

The generator maps a network-range volume (e.g. MRI in [-1, 1]) to another
network-range volume (e.g. CT in [-1, 1]). It is MONAI's ``UNet`` with a ``tanh``
on top so its output always lands in the [-1, 1] range the modality presets
invert back to physical units.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from monai.networks.nets import UNet
from torch import nn

from medgan.errors import ConfigError
from medgan.models.registry import InputRequirement, normalised_min_edge, register_network


@register_network("unet3d")
class UNet3DGenerator(nn.Module):
    """3D U-Net generator (MONAI ``UNet``) whose output is squashed into [-1, 1] by ``tanh``.

    Args:
        in_channels: channels of the source volume (1 for a single MRI contrast).
        out_channels: channels of the generated volume (1 for CT).
        channels: feature channels per resolution level, e.g. ``(16, 32, 64, 128)``.
        strides: downsampling stride between consecutive levels; ``len(channels) - 1`` entries.
            Input spatial sizes must be multiples of their product.
        num_res_units: residual units per block (0 = plain conv blocks).
        norm: normalisation layer name understood by MONAI ("batch", "instance", ...).
            Batch norm is the default: in eval mode it normalises with fixed (running)
            statistics, so a voxel's output does not depend on the window it was
            translated in; instance norm computes statistics per window, so the
            translated volume changes with the window size (measured: ~1,400 HU
            for 96^3 vs 32^3 windows on the test heads, docs/decisions.md).
        dropout: dropout probability inside the blocks (pix2pix uses dropout as its noise source).
        act: activation name understood by MONAI.
        kernel_size: convolution kernel size.
    """

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 1,
        channels: Sequence[int] = (16, 32, 64, 128),
        strides: Sequence[int] = (2, 2, 2),
        num_res_units: int = 2,
        norm: str = "batch",
        dropout: float = 0.0,
        act: str = "PRELU",
        kernel_size: int = 3,
    ) -> None:
        super().__init__()
        self.spatial_dims = getattr(type(self), "SPATIAL_DIMS", 3)
        if len(strides) != len(channels) - 1:
            raise ValueError(f"strides needs len(channels) - 1 = {len(channels) - 1} entries, got {list(strides)}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.size_multiple = math.prod(strides)
        self.unet = UNet(
            spatial_dims=self.spatial_dims,
            in_channels=in_channels,
            out_channels=out_channels,
            channels=tuple(channels),
            strides=tuple(strides),
            kernel_size=kernel_size,
            num_res_units=num_res_units,
            act=act,
            norm=norm,
            dropout=dropout,
        )

    @classmethod
    def input_requirement(cls, *, strides: Sequence[int], norm: Any, **other_arguments: Any) -> InputRequirement:
        """Input edges must be multiples of ``prod(strides)`` and leave a bottleneck of >= 2 voxels when normalised.

        Every MONAI UNet conv has an odd kernel (MONAI refuses even ones) with "same" padding ``(k - 1) / 2``,
        so a stride-``s`` layer maps an edge ``n`` to ``ceil(n / s)``; the skip
        concatenations only line up when every level divides exactly, hence
        ``multiple = prod(strides)`` (``forward`` refuses other sizes). The deepest
        map (the stride-1 bottom layer) then has edge ``n / prod(strides)`` and is
        normalised like every level, so it needs :func:`normalised_min_edge` voxels:
        ``min_size = prod(strides) * 2`` with a norm (16 for strides (2, 2, 2)),
        ``prod(strides)`` without.
        """
        size_multiple = math.prod(strides)
        if size_multiple < 1:
            raise ValueError(f"strides must be >= 1, got {list(strides)}")
        return InputRequirement(size_multiple * normalised_min_edge(norm), size_multiple)

    @classmethod
    def input_size_alternatives(
        cls, *, channels: Sequence[int], strides: Sequence[int], **other_arguments: Any
    ) -> list[dict[str, Any]]:
        """Shallower variants, mildest first: the deepest level dropped, then the next (keeping >= 2 levels)."""
        return [
            {"channels": list(channels[:-dropped]), "strides": list(strides[:-dropped])}
            for dropped in range(1, len(channels) - 1)
        ]

    def forward(self, source: torch.Tensor) -> torch.Tensor:
        """Map ``source`` (B, in_channels, D, H, W) to (B, out_channels, D, H, W) in [-1, 1]."""
        spatial = tuple(source.shape[2:])
        if any(size % self.size_multiple for size in spatial):
            raise ConfigError(
                f"unet{self.spatial_dims}d input of spatial size {spatial} is not a multiple of {self.size_multiple} "
                "(the product of its strides)",
                fix=f"use patch / crop sizes that are multiples of {self.size_multiple}, or fewer strides",
            )
        return torch.tanh(self.unet(source))


@register_network("unet2d")
class UNet2DGenerator(UNet3DGenerator):
    """The same U-Net on 2D images ``(B, C, H, W)``: the slice-wise cascades of ``unrolled2d`` use it."""

    SPATIAL_DIMS = 2
