"""3D lesion segmenters for the downstream study's detection task.

MONAI's ``SegResNet`` (Myronenko 2018) at CPU size: widths and depths are constructor
arguments with small defaults. It returns one logit map per output channel (no sigmoid),
which the detector turns into a lesion probability map.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.networks.nets import SegResNet
from torch import nn

from medgan.models.registry import InputRequirement, register_network


@register_network("segresnet3d")
class SegResNet3D(nn.Module):
    """3D SegResNet returning ``out_channels`` logit maps of the input's size.

    Args:
        in_channels: input channels.
        out_channels: logit maps (1 for lesion vs background).
        init_filters: channels of the first level (doubled per level).
        blocks_down: residual blocks per encoder level; the number of levels sets the
            downsampling (2 ** (levels - 1)).
        blocks_up: residual blocks per decoder level (one fewer than blocks_down).
        norm: MONAI norm name; instance norm keeps a scan's output independent of the batch.
        dropout: dropout probability after the stem.
    """

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 1,
        init_filters: int = 8,
        blocks_down: Sequence[int] = (1, 2, 2),
        blocks_up: Sequence[int] = (1, 1),
        norm: str = "instance",
        dropout: float | None = None,
    ) -> None:
        super().__init__()
        if len(blocks_up) != len(blocks_down) - 1:
            raise ValueError(f"blocks_up needs len(blocks_down) - 1 = {len(blocks_down) - 1} entries")
        self.segresnet = SegResNet(
            spatial_dims=3,
            in_channels=in_channels,
            out_channels=out_channels,
            init_filters=init_filters,
            blocks_down=tuple(blocks_down),
            blocks_up=tuple(blocks_up),
            norm=norm,
            dropout_prob=dropout,
        )

    @classmethod
    def input_requirement(cls, *, blocks_down: Sequence[int], **other_arguments: object) -> InputRequirement:
        """Edges must be multiples of the total downsampling, with >= 2 voxels at the coarsest level."""
        factor = 2 ** (len(blocks_down) - 1)
        return InputRequirement(min_size=2 * factor, multiple=factor)

    def forward(self, volume: torch.Tensor) -> torch.Tensor:
        """Logit maps (B, out_channels, D, H, W) of ``volume`` (B, in_channels, D, H, W)."""
        return self.segresnet(volume)
