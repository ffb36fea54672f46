"""3D volume classifiers for the downstream study (e.g. lesion present / absent).

A small MONAI ``DenseNet``: the DenseNet-121 layout is far larger than the
phantom volumes need, so the block configuration and widths are constructor
arguments with small defaults.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from monai.networks.nets import DenseNet
from torch import nn

from medgan.models.registry import InputRequirement, normalised_min_edge, register_network, smallest_conv_input


@register_network("densenet3d")
class DenseNet3DClassifier(nn.Module):
    """3D DenseNet classifier returning class logits (B, num_classes).

    Args:
        in_channels: input channels.
        num_classes: number of output classes (logits, no softmax).
        init_features: channels of the stem convolution.
        growth_rate: channels each dense layer adds.
        block_config: dense layers per block; the number of blocks sets the depth
            (DenseNet-121 is ``(6, 12, 24, 16)`` with 64 / 32 widths).
        bn_size: bottleneck width multiplier.
        norm: normalisation layer name understood by MONAI.
        dropout: dropout probability inside the dense layers.
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 2,
        init_features: int = 16,
        growth_rate: int = 8,
        block_config: Sequence[int] = (2, 4, 4),
        bn_size: int = 4,
        norm: str = "batch",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.densenet = DenseNet(
            spatial_dims=3,
            in_channels=in_channels,
            out_channels=num_classes,
            init_features=init_features,
            growth_rate=growth_rate,
            block_config=tuple(block_config),
            bn_size=bn_size,
            norm=norm,
            dropout_prob=dropout,
        )

    @classmethod
    def input_requirement(cls, *, block_config: Sequence[int], norm: Any, **other_arguments: Any) -> InputRequirement:
        """Smallest input edge for which the last dense block's (normalised) maps keep >= 2 voxels per edge.

        MONAI's ``DenseNet``: ``conv0`` (kernel 7, stride 2, padding 3, normalised
        by ``norm0``), ``pool0`` (max, kernel 3, stride 2, padding 1), then dense
        blocks that keep the size (1x1 and padded 3x3 convs, each normalising its
        input), with a transition (norm, 1x1 conv, avg-pool kernel 2 stride 2, which
        rounds down) between blocks and ``norm5`` after the last; the adaptive
        average pool at the end takes any size. Walking back with
        :func:`smallest_conv_input` from :func:`normalised_min_edge` at the last
        block: for 3 blocks and a norm, 2 <- 4 <- 8 <- pool0 15 <- input 29. Any
        larger edge works, so ``multiple`` is 1.
        """
        # no blocks: nothing after pool0 is normalised
        needed = normalised_min_edge(norm) if len(block_config) else 1
        for _ in range(len(block_config) - 1):
            needed = smallest_conv_input(needed, kernel_size=2, stride=2)  # transition avg-pool
        needed = smallest_conv_input(needed, kernel_size=3, stride=2, padding=1)  # pool0
        needed = max(needed, normalised_min_edge(norm))  # norm0 on conv0's output
        return InputRequirement(smallest_conv_input(needed, kernel_size=7, stride=2, padding=3))

    @classmethod
    def input_size_alternatives(cls, *, block_config: Sequence[int], **other_arguments: Any) -> list[dict[str, Any]]:
        """Shallower variants, mildest first: the last dense block dropped, then the next (keeping >= 1)."""
        return [{"block_config": list(block_config[:-dropped])} for dropped in range(1, len(block_config))]

    def forward(self, volume: torch.Tensor) -> torch.Tensor:
        """Return class logits (B, num_classes) for ``volume`` (B, in_channels, D, H, W)."""
        return self.densenet(volume)
