"""Modality presets: how each modality enters and leaves the network range, found by name.

A preset bundles what the transform chains and the inference code need to know
about a modality: its intensity transform (physical units <-> [-1, 1]), the default
target spacing, interpolation modes, the network-range value that means
"background" (used to pad), and the threshold that separates body from background.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torch
from monai.config import KeysCollection
from monai.data import MetaTensor

from medgan.data.intensity import (
    CT_HU_WINDOW,
    META_HIGH,
    META_LOW,
    MRI_PERCENTILES,
    CTWindowd,
    IntensityWindow,
    MRIPercentileScaled,
    ScaleToNetworkd,
    percentile_window,
)
from medgan.errors import ConfigError


@dataclass(frozen=True)
class ModalityPreset:
    """Everything modality-specific about getting a volume into and out of a network.

    ``fixed_window`` is the physical window for modalities with absolute units (CT in
    HU); ``None`` means the window is measured per volume (MRI percentiles), so
    mapping back needs the window recorded when the volume was mapped in.
    ``body_threshold`` is in network range: voxels above it are body, not background.
    ``dicom_modality`` is the DICOM Modality (0008,0060) code written on a series of
    this modality ("CT", "MR"). ``background`` is the physical value of air outside
    the body (CT: -1000 HU), written there by the translate job; None for
    modalities without absolute units (MRI background depends on the scanner).
    ``outline_threshold`` (network range) separates the head, skin edge included,
    from the air around it, for the air mask of translated volumes; None uses
    ``body_threshold``. ``nifti_dtype`` is how the translate job stores this
    modality's outputs: CT as int16 HU (rounded), as scanners and the sample data
    do, which halves the file and its write time; float32 otherwise.
    """

    name: str
    intensity_transform: Callable[[KeysCollection], ScaleToNetworkd]
    fixed_window: IntensityWindow | None
    window_of_volume: Callable[[torch.Tensor], IntensityWindow]
    body_threshold: float
    dicom_modality: str
    target_spacing: tuple[float, float, float] | None = (1.0, 1.0, 1.0)
    image_interpolation: str = "bilinear"
    label_interpolation: str = "nearest"
    pad_value: float = -1.0
    clip: bool = True
    background: float | None = None
    outline_threshold: float | None = None
    nifti_dtype: str = "float32"

    def to_network(self, volume: torch.Tensor, window: IntensityWindow | None = None) -> torch.Tensor:
        """Map a volume in physical units to [-1, 1] (same mapping as the preset's transform).

        The window is the preset's fixed one, else measured on this volume; a
        MetaTensor result records it in ``meta`` so :meth:`from_network` can undo it.
        """
        volume = volume if isinstance(volume, torch.Tensor) else torch.as_tensor(volume)
        window = window or self.fixed_window or self.window_of_volume(volume)
        mapped = window.to_network(volume.float(), clip=self.clip)
        if isinstance(mapped, MetaTensor):
            mapped.meta[META_LOW], mapped.meta[META_HIGH] = window.low, window.high
        return mapped

    def from_network(self, volume: torch.Tensor, window: IntensityWindow | None = None) -> torch.Tensor:
        """Map network-range values back to physical units (exact inverse of :meth:`to_network`).

        The window comes from the argument, else the preset's fixed window, else the
        MetaTensor meta written by :meth:`to_network` / the intensity transform.
        """
        volume = volume if isinstance(volume, torch.Tensor) else torch.as_tensor(volume)
        window = window or self.fixed_window or _window_from_meta(volume)
        if window is None:
            raise ValueError(
                f"{self.name} has no fixed intensity window: pass window= or a MetaTensor whose meta holds "
                f"'{META_LOW}' / '{META_HIGH}' (set by to_network or {self.intensity_transform})"
            )
        restored = window.from_network(volume, clip=self.clip)
        if isinstance(restored, MetaTensor):
            restored.meta.pop(META_LOW, None)
            restored.meta.pop(META_HIGH, None)
        return restored


def _window_from_meta(volume: torch.Tensor) -> IntensityWindow | None:
    """The window a MetaTensor was mapped with, if its meta records one."""
    meta = getattr(volume, "meta", None) or {}
    if META_LOW in meta and META_HIGH in meta:
        return IntensityWindow(float(meta[META_LOW]), float(meta[META_HIGH]))
    return None


def _fixed(window: IntensityWindow, _volume: torch.Tensor) -> IntensityWindow:
    return window


_CT_WINDOW = IntensityWindow(*CT_HU_WINDOW)

PRESETS: dict[str, ModalityPreset] = {
    "ct": ModalityPreset(
        name="ct",
        intensity_transform=partial(CTWindowd, hu_min=CT_HU_WINDOW[0], hu_max=CT_HU_WINDOW[1]),
        fixed_window=_CT_WINDOW,
        window_of_volume=partial(_fixed, _CT_WINDOW),
        # -500 HU: well above noisy air (~-1000), below every soft tissue (fat ~-100).
        body_threshold=float(_CT_WINDOW.to_network(torch.tensor(-500.0))),
        dicom_modality="CT",
        background=-1000.0,
        nifti_dtype="int16",
    ),
    "mri": ModalityPreset(
        name="mri",
        intensity_transform=partial(MRIPercentileScaled, lower=MRI_PERCENTILES[0], upper=MRI_PERCENTILES[1]),
        fixed_window=None,
        window_of_volume=partial(percentile_window, lower=MRI_PERCENTILES[0], upper=MRI_PERCENTILES[1]),
        # 10 % of the robust range: above background noise, below dark tissue such as CSF on T1.
        body_threshold=-0.8,
        # 5 % of the robust range: the skin's partial-volume edge is body, background noise is not
        # (test heads: outside-body MAE 17 HU vs 55 HU with -0.8 grown by a voxel; docs/decisions.md).
        outline_threshold=-0.9,
        dicom_modality="MR",
    ),
}
"""Known presets by lower-case name; add an entry here to support a new modality."""

_ALIASES = {"mr": "mri"}  # other spellings of a preset's name, e.g. the DICOM Modality code


def canonical_modality(modality: str) -> str:
    """The preset name a modality is spelled as: case-insensitive, aliases applied ("MR" -> "mri").

    Raises :class:`ConfigError` listing the known modalities when there is no preset for it.
    """
    name = _ALIASES.get(modality.lower(), modality.lower()) if isinstance(modality, str) else modality
    if name not in PRESETS:
        raise ConfigError(
            f"unknown modality {modality!r}",
            fix=f"use one of: {', '.join(sorted(PRESETS))}",
        )
    return name


def get_preset(modality: str) -> ModalityPreset:
    """The preset for a modality name (case-insensitive: "ct", "mri"; DICOM's "MR" works too)."""
    return PRESETS[canonical_modality(modality)]
