"""3D patch discriminators.

MONAI's ``PatchDiscriminator`` returns the list of every layer's output with the
logits last; methods mostly want just the logits map (one real/fake score per
receptive-field patch), and sometimes the intermediate features (feature-matching
losses). :class:`PatchGAN3DDiscriminator` gives both through one ``forward``.
"""

from __future__ import annotations

from typing import Any

import torch
from monai.networks.nets import PatchDiscriminator
from torch import nn

from medgan.models.registry import InputRequirement, normalised_min_edge, register_network, smallest_conv_input

# Padding of every strided layer; passed explicitly (it is MONAI's default) because
# input_requirement's arithmetic depends on it.
_LAYER_PADDING = 1


@register_network("patchgan3d")
class PatchGAN3DDiscriminator(nn.Module):
    """3D PatchGAN discriminator (MONAI ``PatchDiscriminator``) returning a logits map.

    Args:
        in_channels: input channels (1 for an unconditional critic, 2 for pix2pix's
            source-and-target pair concatenated on the channel axis).
        channels: filters of the first convolution, doubled at every following layer.
        num_layers_d: strided conv layers after the first; each but the last halves
            the size. With instance norm, inputs must be large enough that the last
            normalised layer keeps more than one voxel: see :meth:`input_requirement`
            (kernel 4 needs edges >= 12 with 2 layers, >= 24 with 3).
        out_channels: channels of the logits map.
        kernel_size: convolution kernel size.
        norm: normalisation layer name understood by MONAI; instance norm by default
            because GAN batches are tiny.
        dropout: dropout probability in the conv blocks.
    """

    def __init__(
        self,
        in_channels: int = 1,
        channels: int = 32,
        num_layers_d: int = 3,
        out_channels: int = 1,
        kernel_size: int = 4,
        norm: str = "instance",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.patch_discriminator = PatchDiscriminator(
            spatial_dims=3,
            channels=channels,
            in_channels=in_channels,
            out_channels=out_channels,
            num_layers_d=num_layers_d,
            kernel_size=kernel_size,
            norm=norm,
            dropout=dropout,
            padding=_LAYER_PADDING,
        )

    @classmethod
    def input_requirement(
        cls, *, num_layers_d: int, kernel_size: int, norm: Any, **other_arguments: Any
    ) -> InputRequirement:
        """Smallest input edge: every normalised map keeps >= 2 voxels per edge and the logits >= 1.

        MONAI's ``PatchDiscriminator`` stacks, with kernel ``k`` and padding 1:
        ``initial_conv`` (stride 2, not normalised), layers ``0 .. L-2`` (stride 2,
        normalised), layer ``L-1`` (stride 1, normalised) and ``final_conv`` (stride 1,
        padding ``(k - 1) // 2``, the logits). Walking back from the logits with
        :func:`smallest_conv_input` (``n >= stride * (out - 1) + k - 2 * padding``)
        and raising each normalised output to :func:`normalised_min_edge` gives the
        minimum; e.g. k=4, L=3, instance norm: logits 1 <- 2 <- 3 <- 6 <- 12 <- input
        24. Any edge above the minimum works (strided convs round down), so
        ``multiple`` is 1.
        """
        if num_layers_d < 0:
            raise ValueError(f"num_layers_d must be >= 0, got {num_layers_d}")
        # edge the last normalised layer's output needs for the final conv to give 1 logit
        needed = smallest_conv_input(1, kernel_size, stride=1, padding=(kernel_size - 1) // 2)
        layer_strides = [2] * (num_layers_d - 1) + [1] if num_layers_d else []
        for stride in reversed(layer_strides):
            needed = max(needed, normalised_min_edge(norm))  # this layer's output is normalised
            needed = smallest_conv_input(needed, kernel_size, stride=stride, padding=_LAYER_PADDING)
        # ``needed`` is now the initial conv's (not normalised) output
        return InputRequirement(smallest_conv_input(needed, kernel_size, stride=2, padding=_LAYER_PADDING))

    @classmethod
    def input_size_alternatives(cls, *, num_layers_d: int, **other_arguments: Any) -> list[dict[str, Any]]:
        """Shallower variants, mildest first (one layer fewer each time, down to 1), for config fixes."""
        return [{"num_layers_d": layers} for layers in range(num_layers_d - 1, 0, -1)]

    def forward(
        self, volume: torch.Tensor, *, return_features: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        """Score ``volume`` (B, in_channels, D, H, W) patch by patch.

        Returns the raw logits map (B, out_channels, d, h, w), or with
        ``return_features=True`` the pair ``(logits, intermediate_features)``.
        """
        layer_outputs = self.patch_discriminator(volume)
        logits = layer_outputs[-1]
        if return_features:
            return logits, layer_outputs[:-1]
        return logits
