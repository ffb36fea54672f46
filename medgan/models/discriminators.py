"""3D patch discriminators.

MONAI's ``PatchDiscriminator`` returns the list of every layer's output with the
logits last; methods mostly want just the logits map (one real/fake score per
receptive-field patch), and sometimes the intermediate features (feature-matching
losses). :class:`PatchGAN3DDiscriminator` gives both through one ``forward``.
"""

from __future__ import annotations

import torch
from monai.networks.nets import PatchDiscriminator
from torch import nn

from medgan.models.registry import register_network


@register_network("patchgan3d")
class PatchGAN3DDiscriminator(nn.Module):
    """3D PatchGAN discriminator (MONAI ``PatchDiscriminator``) returning a logits map.

    Args:
        in_channels: input channels (1 for an unconditional critic, 2 for pix2pix's
            source-and-target pair concatenated on the channel axis).
        channels: filters of the first convolution, doubled at every following layer.
        num_layers_d: strided conv layers after the first; each but the last halves
            the size. With instance norm, inputs must be large enough that the last
            normalised layer keeps more than one voxel (16^3 needs ``num_layers_d <= 2``,
            32^3 and up work with 3).
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
        )

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
