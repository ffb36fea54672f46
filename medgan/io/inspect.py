"""``validate_volume_file``: what ``medgan info PATH`` shows: geometry, intensities, problems.

Never raises for a bad input: a read error becomes the report's problem, so a
user (or a batch check) sees every file's state in one pass.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from medgan.errors import MedganError
from medgan.io.geometry import orientation_code, voxel_spacing
from medgan.io.options import ReadOptions
from medgan.io.reader import read_volume, read_warnings_of

# HU outside this range in a CT suggests the rescale was not applied (or the data is not HU).
PLAUSIBLE_HU = (-1200.0, 4000.0)
ANISOTROPY_WARNING_RATIO = 5.0


@dataclass
class VolumeReport:
    """Geometry, intensity summary and problems of one volume file; ``ok`` when it can be used as is."""

    path: str
    ok: bool
    source_format: str = ""
    modality: str = ""
    shape: tuple[int, ...] = ()
    spacing: tuple[float, ...] = ()
    orientation: str = ""
    origin: tuple[float, ...] = ()
    intensity_min: float | None = None
    intensity_max: float | None = None
    intensity_mean: float | None = None
    problems: list[str] = field(default_factory=list)  # errors: the file cannot be read as it is
    warnings: list[str] = field(default_factory=list)  # read, but something was dropped or looks odd

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (for ``medgan info --json``)."""
        return asdict(self)


def _plausibility_warnings(report: VolumeReport) -> list[str]:
    """Soft checks on a volume that did read: HU range for CT, strong anisotropy."""
    found = []
    if report.modality == "CT" and report.intensity_min is not None and (
        report.intensity_min < PLAUSIBLE_HU[0] or report.intensity_max > PLAUSIBLE_HU[1]
    ):
        found.append(
            f"CT values {report.intensity_min:.0f}..{report.intensity_max:.0f} fall outside the plausible HU "
            f"range {PLAUSIBLE_HU[0]:.0f}..{PLAUSIBLE_HU[1]:.0f}; the rescale may be missing"
        )
    if report.spacing and min(report.spacing) > 0 and max(report.spacing) / min(report.spacing) > \
            ANISOTROPY_WARNING_RATIO:
        found.append(f"voxels are strongly anisotropic (spacing {tuple(round(s, 3) for s in report.spacing)} mm)")
    return found


def validate_volume_file(path: str | Path, *, series_uid: str | None = None,
                         options: ReadOptions | None = None) -> VolumeReport:
    """Read ``path`` as medgan would and report geometry, intensities and problems; never raises on bad input.

    A read error (any :class:`MedganError`) is returned as the single problem with ``ok=False``;
    read warnings (dropped slices, replaced NaNs, header fixes) and plausibility checks are warnings.
    """
    try:
        volume = read_volume(path, series_uid=series_uid, options=options)
    except MedganError as err:
        return VolumeReport(path=str(path), ok=False, problems=[str(err)])
    affine = volume.affine.numpy()
    voxels = volume.numpy()
    report = VolumeReport(
        path=str(path),
        ok=True,
        source_format=volume.meta["source_format"],
        modality=volume.meta["modality"],
        shape=tuple(int(n) for n in voxels.shape[1:]),
        spacing=voxel_spacing(affine),
        orientation=orientation_code(affine),
        origin=tuple(float(v) for v in affine[:3, 3]),
        intensity_min=float(voxels.min()),
        intensity_max=float(voxels.max()),
        intensity_mean=float(np.mean(voxels, dtype=np.float64)),
    )
    report.warnings = read_warnings_of(volume) + _plausibility_warnings(report)
    return report
