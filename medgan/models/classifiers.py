"""3D volume classifiers for the downstream study (e.g. lesion present / absent).

A small MONAI ``DenseNet``: the DenseNet-121 layout is far larger than the
phantom volumes need, so the block configuration and widths are constructor
arguments with small defaults.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.networks.nets import DenseNet
from torch import nn

from medgan.models.registry import register_network


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

    def forward(self, volume: torch.Tensor) -> torch.Tensor:
        """Return class logits (B, num_classes) for ``volume`` (B, in_channels, D, H, W)."""
        return self.densenet(volume)
