"""The classical bulk-density pseudo-CT as a (tiny) network: segment the MRI, paint one value per class.

Bulk-density assignment is the oldest MRI-only radiotherapy planning approach
(e.g. J.H. Jonsson et al., "Treatment planning using MRI data: an analysis of the
dose calculation accuracy for different treatment regions", Radiat Oncol 2010;5:62;
reviewed in J.M. Edmund & T. Nyholm, "A review of substitute CT generation for
MRI-only radiation therapy", Radiat Oncol 2017;12:28). It is the baseline every
learned MRI -> CT model has to beat.

Segmentation, from the MRI alone (network range [-1, 1]):

* ``bright`` = source > ``dark_threshold``: tissue with MR signal -> **soft tissue**;
* the head outline = morphological closing of ``bright`` with a cube of side
  ``2 * closing_radius + 1``: it bridges dark gaps narrower than the cube (the
  skull between scalp and brain) but not the large dark space around the head;
* dark voxels inside the outline -> **bone**; dark voxels outside -> **air**.
  (Cortical bone and air are both dark on T1; only the position tells them apart,
  so dark cavities inside the head narrower than the cube, such as small sinuses,
  become bone: the known weakness of the method.)

The class values are an ``nn.Parameter`` of three CT values in network range, so
the method fits them with the ordinary engine and optimizer on an L1 loss; the
L1 minimiser of a constant per class is the class **median** of the training CT,
which is robust to the partial-volume voxels at class boundaries. The closing is
computed with max-pooling inside the given volume or patch only (voxels outside
it are neither body nor background), so it works on sliding-window patches.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from medgan.models.registry import InputRequirement, register_network

AIR, SOFT_TISSUE, BONE = 0, 1, 2
CLASS_NAMES = ("air", "soft_tissue", "bone")


def binary_closing(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """Morphological closing of a {0, 1} float mask (B, C, D, H, W) with a cube of side ``2 * radius + 1``.

    Dilation and erosion are max-pools; max-pool padding never wins, so voxels
    outside the volume take part in neither (no border effect either way).
    """
    if radius <= 0:
        return mask
    kernel = 2 * radius + 1
    dilated = F.max_pool3d(mask, kernel, stride=1, padding=radius)
    return -F.max_pool3d(-dilated, kernel, stride=1, padding=radius)


@register_network("bulk_density3d")
class BulkDensity3D(nn.Module):
    """Three-class bulk-density pseudo-CT: air / soft tissue / bone, one fitted value each.

    Args:
        dark_threshold: source intensity (network range) at or below which a voxel
            has no usable MR signal (air or cortical bone). The default -0.8 is the
            MRI preset's body threshold: 10 % of the robust intensity range.
        closing_radius: half-width in voxels of the cube that closes the head
            outline; it must exceed half the skull thickness in voxels.
        initial_value: starting value of every class, network range (-0.5 is
            about 0 HU, water, in the default CT window).
    """

    def __init__(self, dark_threshold: float = -0.8, closing_radius: int = 3, initial_value: float = -0.5) -> None:
        super().__init__()
        if closing_radius < 0:
            raise ValueError(f"closing_radius must be >= 0, got {closing_radius}")
        if not -1.0 <= dark_threshold <= 1.0:
            raise ValueError(f"dark_threshold is in network range [-1, 1], got {dark_threshold}")
        self.dark_threshold = dark_threshold
        self.closing_radius = closing_radius
        self.class_values = nn.Parameter(torch.full((len(CLASS_NAMES),), float(initial_value)))

    @classmethod
    def input_requirement(cls, **constructor_arguments: Any) -> InputRequirement:
        """Any size: segmentation is per voxel and the closing keeps every edge, whatever ``closing_radius``.

        The closing's max-pools have kernel ``2r + 1``, stride 1 and padding ``r``,
        so an edge ``n`` maps to ``n + 2r - (2r + 1) + 1 = n``, for ``n = 1`` too
        (torch allows padding up to half the kernel, and padding never wins a max).
        """
        return InputRequirement(1, 1)

    def segment(self, source: torch.Tensor) -> torch.Tensor:
        """Class index per voxel (B, 1, D, H, W, int64): 0 air, 1 soft tissue, 2 bone."""
        if source.shape[1] != 1:
            raise ValueError(f"bulk_density3d segments a single-channel source, got {source.shape[1]} channels")
        bright = (source > self.dark_threshold).float()
        inside_head = binary_closing(bright, self.closing_radius) > 0.5
        classes = torch.full_like(source, AIR, dtype=torch.int64)
        classes[inside_head] = BONE
        classes[bright > 0.5] = SOFT_TISSUE
        return classes

    def forward(self, source: torch.Tensor) -> torch.Tensor:
        """Pseudo-target (B, 1, D, H, W) in [-1, 1]: each voxel gets its class value.

        The clamp to [-1, 1] passes gradients straight through, so a value pushed
        past the range edge by the optimizer is still pulled back by the loss.
        """
        values = self.class_values
        values = values + (values.clamp(-1.0, 1.0) - values).detach()
        return values[self.segment(source)].to(source.dtype)

    def class_values_dict(self) -> dict[str, float]:
        """The fitted value of every class (network range), by class name."""
        return dict(zip(CLASS_NAMES, self.class_values.detach().cpu().tolist(), strict=True))

    def extra_repr(self) -> str:
        """Thresholds, for ``print(module)``."""
        return f"dark_threshold={self.dark_threshold}, closing_radius={self.closing_radius}"


def class_fractions(classes: torch.Tensor) -> Sequence[float]:
    """Fraction of voxels in each class (air, soft tissue, bone) of a segmentation from ``segment``."""
    counts = torch.bincount(classes.reshape(-1), minlength=len(CLASS_NAMES)).float()
    return (counts / counts.sum().clamp_min(1.0)).tolist()
