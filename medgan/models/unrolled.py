"""Unrolled reconstruction networks: cascades of (CNN refinement, data consistency) on complex images.

Each cascade refines the current complex image, held as two channels (real, imaginary),
with its own U-Net (or one shared by all cascades) as a residual step, then puts the
measured k-space samples back (:func:`medgan.data.kspace.data_consistency`). With hard data
consistency the output agrees with the measurement exactly where the mask sampled, whatever
the networks learned (Schlemper et al. 2018, "A deep cascade of CNNs for MR reconstruction");
soft data consistency learns one weight per cascade instead (the rule of MONAI's
``VarNetBlock``: ``k - w * mask * (k - measured)``, ``w = 1`` being hard consistency).

``unrolled3d`` works on 3D k-space (a 3D acquisition); ``unrolled2d`` on 2D k-space per slice
(fastMRI's single-coil data, ``(slices, H, W)``): every leading axis is folded into the batch,
so a ``(B, 1, D, H, W)`` stack of slices goes through a 2D U-Net slice by slice. Both pad the
cascade CNN's input to the sizes it accepts and crop its output, so any image size works.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import torch
from torch import nn

from medgan.data.kspace import data_consistency, fft_centered, ifft_centered
from medgan.errors import ConfigError
from medgan.models.registry import (
    InputRequirement,
    build_network,
    get_network_class,
    input_requirement,
    register_network,
)

DC_KINDS = ("hard", "soft")


def as_channels(image: torch.Tensor) -> torch.Tensor:
    """Complex ``(B, 1, ...)`` -> real ``(B, 2, ...)`` (real, imaginary)."""
    return torch.cat([image.real, image.imag], dim=1)


def as_complex(channels: torch.Tensor) -> torch.Tensor:
    """Real ``(B, 2, ...)`` -> complex ``(B, 1, ...)``."""
    return torch.complex(channels[:, :1].float(), channels[:, 1:2].float())


class PaddedBlock(nn.Module):
    """A CNN whose input is zero-padded to the smallest size it accepts and whose output is cropped back."""

    def __init__(self, spec: Mapping[str, Any]) -> None:
        super().__init__()
        self.network = build_network(dict(spec))
        self.requirement = input_requirement(spec)

    def forward(self, channels: torch.Tensor) -> torch.Tensor:
        size = list(channels.shape[2:])
        padded = self.requirement.smallest_accepted(size)
        if padded == size:
            return self.network(channels)
        pads: list[int] = []
        for edge, target in zip(reversed(size), reversed(padded), strict=True):
            pads += [0, target - edge]
        output = self.network(nn.functional.pad(channels, pads))
        return output[(slice(None), slice(None), *[slice(0, edge) for edge in size])]


class UnrolledReconstruction(nn.Module):
    """``cascades`` x (residual CNN on (real, imag), data consistency) over k-space of ``SPATIAL_DIMS`` axes.

    Args:
        cascades: number of refinement + DC steps.
        share_weights: one CNN for every cascade (fewer parameters) or one each.
        block: network spec of each cascade's CNN (a registered network with 2 in / 2 out channels).
        data_consistency: ``hard`` (measured samples put back exactly) or ``soft`` (a learned weight
            per cascade, initialised to 1 = hard).
    """

    SPATIAL_DIMS = 3
    DEFAULT_BLOCK = "unet3d"

    def __init__(
        self,
        cascades: int = 3,
        share_weights: bool = False,
        block: Mapping[str, Any] | None = None,
        data_consistency: Literal["hard", "soft"] = "hard",
    ) -> None:
        super().__init__()
        if data_consistency not in DC_KINDS:
            raise ConfigError(f"unknown data_consistency {data_consistency!r}", fix=f"use one of {', '.join(DC_KINDS)}")
        spec = {**self.block_defaults(), **(block or {})} | {"in_channels": 2, "out_channels": 2}
        block_dims = getattr(get_network_class(spec["name"]), "SPATIAL_DIMS", 3)
        if block_dims != self.SPATIAL_DIMS:
            raise ConfigError(
                f"the cascade block {spec['name']!r} is {block_dims}D but this network's k-space is "
                f"{self.SPATIAL_DIMS}D",
                fix=f"use block name {self.DEFAULT_BLOCK} (or leave block.name out: it defaults to it)",
            )
        self.block_spec = spec
        count = 1 if share_weights else cascades
        self.blocks = nn.ModuleList(PaddedBlock(spec) for _ in range(count))
        self.cascades = cascades
        self.data_consistency = data_consistency
        self.dc_weights = nn.Parameter(torch.ones(cascades)) if data_consistency == "soft" else None

    @property
    def spatial_dims(self) -> int:
        return self.SPATIAL_DIMS

    @classmethod
    def block_defaults(cls) -> dict[str, Any]:
        return {"name": cls.DEFAULT_BLOCK, "channels": [16, 32], "strides": [2], "num_res_units": 1}

    @classmethod
    def input_requirement(cls, **_: object) -> InputRequirement:
        """Any size: the cascade CNN's input is padded to what it accepts."""
        return InputRequirement(1, 1)

    def _consistent(self, predicted: torch.Tensor, measured: torch.Tensor, mask: torch.Tensor, index: int):
        if self.dc_weights is None:
            return data_consistency(predicted, measured, mask)
        return predicted - self.dc_weights[index] * mask.to(predicted.real.dtype) * (predicted - measured)

    def forward(self, measured_kspace: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Complex image shaped like ``measured_kspace`` (``(B, 1, *spatial)``, complex) sampled where ``mask`` is 1.

        For ``unrolled2d`` the k-space is 2D over the last two axes and any axes before them
        (e.g. ``(B, 1, D, H, W)``: D slices per sample) are folded into the batch.
        """
        dims = self.spatial_dims
        shape = measured_kspace.shape
        if len(shape) < dims + 2:
            raise ValueError(f"k-space of shape {tuple(shape)} has fewer than {dims} spatial axes after (B, C)")
        mask = mask.to(measured_kspace.real.dtype).expand(shape)
        folded = (-1, 1, *shape[-dims:])
        measured, mask = measured_kspace.reshape(folded), mask.reshape(folded)
        image = ifft_centered(measured, spatial_dims=dims)
        for index in range(self.cascades):
            block = self.blocks[0 if len(self.blocks) == 1 else index]
            channels = as_channels(image)
            refined = as_complex(channels + block(channels))
            consistent = self._consistent(fft_centered(refined, spatial_dims=dims), measured, mask, index)
            image = ifft_centered(consistent, spatial_dims=dims)
        return image.reshape(shape)


@register_network("unrolled3d")
class UnrolledReconstruction3D(UnrolledReconstruction):
    """Cascades over 3D k-space (a 3D acquisition), with 3D U-Nets."""


@register_network("unrolled2d")
class UnrolledReconstruction2D(UnrolledReconstruction):
    """Cascades over 2D k-space per slice (fastMRI's single-coil data), with 2D U-Nets."""

    SPATIAL_DIMS = 2
    DEFAULT_BLOCK = "unet2d"
