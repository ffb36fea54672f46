"""Choosing how a float volume is stored as 16-bit DICOM pixels (RescaleSlope / RescaleIntercept).

Rule (so values round-trip within a known precision):
- integral values that fit the 16-bit type: stored as is, slope 1, intercept 0 (exact);
- integral values whose span fits 16 bits: slope 1 and an integer intercept (exact);
- anything else: the value range is mapped linearly onto the 16-bit range; the round-trip
  error is at most ``slope / 2`` (about 0.03 HU for a -1024..3071 HU CT).
CT is always int16 (PixelRepresentation 1); MR is uint16 when no value is negative, else int16.
Slope and intercept are rounded to DICOM decimal strings *before* quantizing, so the
reader's arithmetic is exactly the one assumed here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydicom.valuerep import format_number_as_ds

_RANGES = {np.dtype(np.int16): (-32768, 32767), np.dtype(np.uint16): (0, 65535)}
# Kept free at each end of the 16-bit range so decimal-string rounding can never push a value out.
_MARGIN = 2


@dataclass(frozen=True)
class StoredIntensities:
    """16-bit stored values and the (decimal string) rescale that turns them back into physical units."""

    values: np.ndarray  # (I, J, K) int16 or uint16
    slope_ds: str
    intercept_ds: str
    value_min: float
    value_max: float

    @property
    def pixel_representation(self) -> int:
        """DICOM PixelRepresentation: 1 for signed int16, 0 for uint16."""
        return 1 if self.values.dtype == np.int16 else 0

    @property
    def precision(self) -> float:
        """Largest round-trip error (physical units)."""
        slope = float(self.slope_ds)
        return 0.0 if slope == 1.0 and float(self.intercept_ds).is_integer() else slope / 2


def _integral(values: np.ndarray) -> bool:
    return bool(np.all(values == np.round(values)))


def quantize_for_dicom(voxels: np.ndarray, modality: str) -> StoredIntensities:
    """Store finite float voxels as 16-bit integers with the slope/intercept rule of this module."""
    value_min, value_max = float(voxels.min()), float(voxels.max())
    dtype = np.dtype(np.uint16) if modality == "MR" and value_min >= 0 else np.dtype(np.int16)
    low, high = _RANGES[dtype]
    if _integral(voxels) and value_max - value_min <= high - low:
        fits = value_min >= low and value_max <= high
        intercept = 0.0 if fits else float(np.floor(value_min)) - low
        slope_ds, intercept_ds = "1", format_number_as_ds(intercept)
    elif value_max == value_min:
        slope_ds, intercept_ds = "1", format_number_as_ds(value_min)
    else:
        usable_low, usable_high = low + _MARGIN, high - _MARGIN
        slope_ds = format_number_as_ds((value_max - value_min) / (usable_high - usable_low))
        intercept_ds = format_number_as_ds(value_min - usable_low * float(slope_ds))
    slope, intercept = float(slope_ds), float(intercept_ds)
    stored = np.clip(np.round((voxels - intercept) / slope), low, high).astype(dtype)
    return StoredIntensities(stored, slope_ds, intercept_ds, value_min, value_max)
