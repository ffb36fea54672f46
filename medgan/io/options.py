"""Options that control how strictly medgan reads a volume.

One small frozen dataclass passed to :func:`medgan.io.read_volume` (and through
:class:`medgan.io.MedganImageReader` into MONAI transform chains), so the choices
that can silently change voxel values (replacing NaNs, resampling a tilted or
gappy series, accepting a 2D image) are always explicit and default to "refuse".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from medgan.errors import ConfigError

DEFAULT_MAX_BYTES = 2 * 1024**3


@dataclass(frozen=True)
class ReadOptions:
    """How to read a volume; every lenient choice is opt-in.

    - ``nan_policy``: ``"error"`` (default) refuses NaN/Inf voxels; ``"replace"`` sets them to
      ``nan_fill``, logs it and records the count in ``meta["nonfinite_replaced"]``.
    - ``max_bytes``: memory budget for the float32 volume, checked from the header before any
      pixel is loaded (default 2 GiB).
    - ``min_slices``: fewest slices along the third axis accepted. The default 2 makes a 2D image
      (one DICOM file, a NIfTI of shape (I, J) or (I, J, 1)) an error; ``min_slices=1`` reads it
      as a one-slice volume of shape (1, I, J, 1).
    - ``allow_gantry_tilt``: a tilted CT series (slices sheared along the table) is an error unless
      True, which resamples each slice onto an orthogonal grid (linear interpolation).
    - ``allow_nonuniform_spacing``: a series with gaps (missing slices) is an error unless True,
      which interpolates linearly along the slice normal onto the usual spacing.
    - ``spacing_tolerance``: relative deviation of a slice step from the usual step that still
      counts as uniform (default 1 %).
    """

    nan_policy: Literal["error", "replace"] = "error"
    nan_fill: float = 0.0
    max_bytes: int = DEFAULT_MAX_BYTES
    min_slices: int = 2
    allow_gantry_tilt: bool = False
    allow_nonuniform_spacing: bool = False
    spacing_tolerance: float = 0.01

    def __post_init__(self) -> None:
        if self.nan_policy not in ("error", "replace"):
            raise ConfigError(
                f"ReadOptions.nan_policy is {self.nan_policy!r}",
                fix="use nan_policy='error' (refuse NaN/Inf voxels) or 'replace' (set them to nan_fill)",
            )
        if not self.max_bytes > 0:
            raise ConfigError(f"ReadOptions.max_bytes is {self.max_bytes}", fix="give a positive byte count")
        if self.min_slices < 1:
            raise ConfigError(f"ReadOptions.min_slices is {self.min_slices}", fix="use 1 or more")
        if not 0 < self.spacing_tolerance < 0.5:
            raise ConfigError(
                f"ReadOptions.spacing_tolerance is {self.spacing_tolerance}", fix="use a fraction such as 0.01"
            )
