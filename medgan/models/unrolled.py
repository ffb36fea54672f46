"""An unrolled reconstruction network: cascades of (CNN refinement, hard data consistency) on complex images.

Each cascade refines the current complex image, held as two channels (real, imaginary),
with its own 3D U-Net (or one shared by all cascades) as a residual step, then puts the
measured k-space samples back (:func:`medgan.data.kspace.data_consistency`). The output
therefore agrees with the measurement exactly where the mask sampled, whatever the
networks learned (Schlemper et al. 2018, "A deep cascade of CNNs for MR reconstruction").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from medgan.data.kspace import data_consistency, fft_centered, ifft_centered
from medgan.models.registry import InputRequirement, build_network, input_requirement, register_network


def as_channels(image: torch.Tensor) -> torch.Tensor:
    """Complex ``(B, 1, ...)`` -> real ``(B, 2, ...)`` (real, imaginary)."""
    return torch.cat([image.real, image.imag], dim=1)


def as_complex(channels: torch.Tensor) -> torch.Tensor:
    """Real ``(B, 2, ...)`` -> complex ``(B, 1, ...)``."""
    return torch.complex(channels[:, :1].float(), channels[:, 1:2].float())


@register_network("unrolled3d")
class UnrolledReconstruction3D(nn.Module):
    """``cascades`` x (residual CNN on (real, imag), hard data consistency) over 3D k-space.

    Args:
        cascades: number of refinement + DC steps.
        share_weights: one CNN for every cascade (fewer parameters) or one each.
        block: network spec of each cascade's CNN (a registered network with 2 in / 2 out channels).
    """

    def __init__(self, cascades: int = 3, share_weights: bool = False, block: Mapping[str, Any] | None = None):
        super().__init__()
        spec = {"name": "unet3d", "channels": [16, 32], "strides": [2], "num_res_units": 1, **(block or {})}
        spec |= {"in_channels": 2, "out_channels": 2}
        self.block_spec = spec
        count = 1 if share_weights else cascades
        self.blocks = nn.ModuleList(build_network(dict(spec)) for _ in range(count))
        self.cascades = cascades

    @classmethod
    def input_requirement(cls, *, block: Mapping[str, Any] | None = None, **_: object) -> InputRequirement:
        """What the cascade CNN needs."""
        spec = {"name": "unet3d", "channels": [16, 32], "strides": [2], "num_res_units": 1, **(block or {})}
        return input_requirement(spec)

    def forward(self, measured_kspace: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Complex image ``(B, 1, D, H, W)`` from complex k-space ``(B, 1, D, H, W)`` sampled where ``mask`` is 1."""
        image = ifft_centered(measured_kspace, spatial_dims=3)
        for index in range(self.cascades):
            block = self.blocks[0 if len(self.blocks) == 1 else index]
            channels = as_channels(image)
            refined = as_complex(channels + block(channels))
            image = ifft_centered(
                data_consistency(fft_centered(refined, spatial_dims=3), measured_kspace, mask), spatial_dims=3
            )
        return image
