"""Exact, invertible intensity mappings between physical units and the network range [-1, 1].

Networks see float32 in [-1, 1]; everything written to disk is back in physical
units. Both mappings here are the same affine map of a window ``[low, high]`` onto
``[-1, 1]``: CT uses a fixed HU window, MRI a per-volume window from robust
percentiles of its foreground (nonzero) voxels. The window each volume used is kept
in its MetaTensor meta (``intensity_low`` / ``intensity_high``) and in the transform
trace, so ``.inverse()`` / ``monai.transforms.Invertd`` undo the mapping exactly
(values outside the window were clipped and come back as the window's edge).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Hashable, Mapping
from dataclasses import dataclass

import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import InvertibleTransform, MapTransform
from monai.utils import TraceKeys, convert_to_tensor

from medgan.errors import InputError

CT_HU_WINDOW = (-1024.0, 3071.0)
"""Default CT window in HU: air (-1024) to the top of the 12-bit scanner range (3071)."""

MRI_PERCENTILES = (0.5, 99.5)
"""Default MRI percentiles (of the nonzero voxels) mapped to -1 and +1."""

META_LOW, META_HIGH = "intensity_low", "intensity_high"


@dataclass(frozen=True)
class IntensityWindow:
    """The physical interval ``[low, high]`` that maps linearly onto the network range [-1, 1]."""

    low: float
    high: float

    def __post_init__(self) -> None:
        if not self.high > self.low:
            raise ValueError(f"intensity window needs high > low, got [{self.low}, {self.high}]")

    def to_network(self, values: torch.Tensor, *, clip: bool = True) -> torch.Tensor:
        """Map physical values to [-1, 1]; with ``clip`` values beyond the window land on its edge."""
        # One new tensor, then in place: bit-identical to the out-of-place formula, ~2.5x faster on a 13 M-voxel head.
        values = values if values.is_floating_point() else values.float()
        shifted = torch.clamp(values, self.low, self.high).sub_(self.low) if clip else values - self.low
        mapped = shifted.mul_(2.0 / (self.high - self.low)).sub_(1.0)
        return mapped.clamp_(-1.0, 1.0) if clip else mapped  # float rounding may step a hair past +-1

    def from_network(self, values: torch.Tensor, *, clip: bool = True) -> torch.Tensor:
        """Map network values back to physical units; with ``clip`` the result stays inside the window."""
        values = values if values.is_floating_point() else values.float()
        shifted = torch.clamp(values, -1.0, 1.0).add_(1.0) if clip else values + 1.0
        return shifted.mul_((self.high - self.low) / 2.0).add_(self.low)


def _source_name(volume: torch.Tensor) -> str | None:
    """The file a MetaTensor was read from, for error messages (None for plain tensors)."""
    meta = getattr(volume, "meta", None) or {}
    name = meta.get("filename_or_obj")
    return str(name) if name else None


def percentile_window(
    volume: torch.Tensor, lower: float = MRI_PERCENTILES[0], upper: float = MRI_PERCENTILES[1]
) -> IntensityWindow:
    """Robust MRI window: the ``lower`` / ``upper`` percentiles of the volume's nonzero voxels.

    Only nonzero voxels count so that a large zero background (skull-stripped or
    zero-filled volumes) does not pull the lower percentile to 0. A volume without
    two distinct foreground values cannot be scaled and raises InputError.
    """
    if not 0.0 <= lower < upper <= 100.0:
        raise ValueError(f"percentiles need 0 <= lower < upper <= 100, got {lower}, {upper}")
    # float32 as read: no float64 copy of the volume (0.18 s instead of 0.22 s of percentiles on a 13 M-voxel head)
    voxels = torch.as_tensor(volume).detach().reshape(-1).cpu().numpy()
    foreground = voxels[np.isfinite(voxels) & (voxels != 0)]
    low, high = (float(v) for v in np.percentile(foreground, [lower, upper])) if foreground.size else (0.0, 0.0)
    if not high > low:
        raise InputError(
            f"MRI volume has no usable foreground for percentile scaling ({foreground.size} nonzero voxels, "
            f"percentiles {lower}/{upper} give [{low}, {high}])",
            path=_source_name(volume),
            fix="check that the file holds an MRI image (not an empty or constant mask)",
        )
    return IntensityWindow(low, high)


class ScaleToNetworkd(MapTransform, InvertibleTransform):
    """Base of the intensity dictionary transforms: map a window of physical values to [-1, 1].

    Subclasses only say which window a volume uses (:meth:`window_for`). The window
    is pushed onto the transform trace, so the inverse is exact for every volume,
    and written to the MetaTensor meta for code that maps network outputs by hand.
    """

    def __init__(self, keys: KeysCollection, *, clip: bool = True, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.clip = clip

    @abstractmethod
    def window_for(self, volume: torch.Tensor) -> IntensityWindow:
        """The window that maps this volume to the network range."""

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        """Map every key to [-1, 1] and record the window used."""
        d = dict(data)
        for key in self.key_iterator(d):
            volume = convert_to_tensor(d[key], track_meta=True, dtype=torch.float32)
            window = self.window_for(volume)
            mapped = window.to_network(volume, clip=self.clip)
            if isinstance(mapped, MetaTensor):
                mapped.meta[META_LOW], mapped.meta[META_HIGH] = window.low, window.high
            self.push_transform(mapped, extra_info={"low": window.low, "high": window.high, "clip": self.clip})
            d[key] = mapped
        return d

    def inverse(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        """Map every key back to physical units with the window recorded in its trace."""
        d = dict(data)
        for key in self.key_iterator(d):
            info = self.pop_transform(d[key])[TraceKeys.EXTRA_INFO]
            restored = IntensityWindow(info["low"], info["high"]).from_network(d[key], clip=info["clip"])
            if isinstance(restored, MetaTensor):
                restored.meta.pop(META_LOW, None)
                restored.meta.pop(META_HIGH, None)
            d[key] = restored
        return d


class CTWindowd(ScaleToNetworkd):
    """CT in HU -> [-1, 1]: clip to a fixed HU window (default [-1024, 3071]) and scale linearly."""

    def __init__(
        self,
        keys: KeysCollection,
        hu_min: float = CT_HU_WINDOW[0],
        hu_max: float = CT_HU_WINDOW[1],
        *,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, clip=True, allow_missing_keys=allow_missing_keys)
        self.window = IntensityWindow(hu_min, hu_max)

    def window_for(self, volume: torch.Tensor) -> IntensityWindow:
        """The fixed HU window, whatever the volume."""
        return self.window


class MRIPercentileScaled(ScaleToNetworkd):
    """MRI -> [-1, 1]: the per-volume [lower, upper] percentiles of nonzero voxels map to [-1, 1].

    ``clip=True`` (default) clamps values beyond the percentiles so the network input
    stays in [-1, 1] like the tanh outputs it is compared with; the brightest 0.5 %
    (vessels, fat, noise spikes) is saturated. ``clip=False`` keeps the map linear
    and lets those values exceed [-1, 1], for models that want them.
    """

    def __init__(
        self,
        keys: KeysCollection,
        lower: float = MRI_PERCENTILES[0],
        upper: float = MRI_PERCENTILES[1],
        *,
        clip: bool = True,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, clip=clip, allow_missing_keys=allow_missing_keys)
        if not 0.0 <= lower < upper <= 100.0:
            raise ValueError(f"percentiles need 0 <= lower < upper <= 100, got {lower}, {upper}")
        self.lower, self.upper = lower, upper

    def window_for(self, volume: torch.Tensor) -> IntensityWindow:
        """The volume's own robust percentile window."""
        return percentile_window(volume, self.lower, self.upper)
