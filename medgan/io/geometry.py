"""Voxel-to-world geometry shared by the readers and writers.

medgan keeps affines in **RAS** (MONAI / nibabel); DICOM stores **LPS**. The two
differ by flipping x and y. DICOM voxel order is (i = column, j = row, k = slice),
so the affine's columns are: row direction x column spacing, column direction x
row spacing, slice normal x slice spacing.
"""

from __future__ import annotations

from dataclasses import dataclass

import nibabel as nib
import numpy as np

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def lps_to_ras(affine_lps: np.ndarray) -> np.ndarray:
    """Turn an LPS voxel-to-world affine into RAS (the same matrix flips back: it is its own inverse)."""
    return LPS_TO_RAS @ np.asarray(affine_lps, dtype=np.float64)


def ras_to_lps(affine_ras: np.ndarray) -> np.ndarray:
    """Turn a RAS voxel-to-world affine into LPS, the DICOM patient coordinate system."""
    return LPS_TO_RAS @ np.asarray(affine_ras, dtype=np.float64)


def orientation_code(affine: np.ndarray) -> str:
    """Three-letter axis code of a RAS affine, e.g. ``'RAS'`` or ``'LPS'`` (nibabel's aff2axcodes)."""
    return "".join(str(code) for code in nib.aff2axcodes(np.asarray(affine, dtype=np.float64)))


def voxel_spacing(affine: np.ndarray) -> tuple[float, float, float]:
    """Voxel size along each index axis (mm), the column norms of the affine."""
    return tuple(float(s) for s in np.linalg.norm(np.asarray(affine, dtype=np.float64)[:3, :3], axis=0))


def dicom_affine_ras(
    row_cosine: np.ndarray,
    column_cosine: np.ndarray,
    pixel_spacing: tuple[float, float],
    slice_step: np.ndarray,
    origin_lps: np.ndarray,
) -> np.ndarray:
    """RAS affine of a DICOM stack from its LPS plane geometry.

    ``pixel_spacing`` is DICOM's (row spacing, column spacing); ``slice_step`` is the LPS
    vector from one slice's position to the next; ``origin_lps`` the first slice's position.
    """
    affine_lps = np.eye(4)
    affine_lps[:3, 0] = np.asarray(row_cosine) * pixel_spacing[1]
    affine_lps[:3, 1] = np.asarray(column_cosine) * pixel_spacing[0]
    affine_lps[:3, 2] = np.asarray(slice_step)
    affine_lps[:3, 3] = np.asarray(origin_lps)
    return lps_to_ras(affine_lps)


@dataclass(frozen=True)
class DicomPlane:
    """A volume's geometry in DICOM terms (LPS), ready to be written slice by slice."""

    row_cosine: np.ndarray
    column_cosine: np.ndarray
    pixel_spacing: tuple[float, float]  # (row spacing, column spacing) as DICOM orders them
    slice_step: np.ndarray  # LPS vector between consecutive slice positions, along the normal
    origin_lps: np.ndarray

    @property
    def slice_spacing(self) -> float:
        """Distance between consecutive slices (mm)."""
        return float(np.linalg.norm(self.slice_step))

    def position(self, k: int) -> np.ndarray:
        """ImagePositionPatient (LPS) of slice ``k``."""
        return self.origin_lps + k * self.slice_step


def dicom_plane_from_affine(affine_ras: np.ndarray, n_slices: int) -> tuple[DicomPlane, bool]:
    """Split a RAS affine into DICOM plane geometry; return it and whether slices must be reversed.

    DICOM readers sort slices along the normal row x column, so a left-handed affine (slice axis
    against the normal) is written with its slices reversed; the caller flips the voxels too. The
    world position of every voxel is kept. Raises ``ValueError`` for geometry DICOM cannot hold
    (in-plane axes not perpendicular, slice axis not along the normal, zero-length axes).
    """
    affine_lps = ras_to_lps(affine_ras)
    axes = affine_lps[:3, :3]
    if not np.all(np.isfinite(affine_lps)):
        raise ValueError("the affine has non-finite entries")
    spacings = np.linalg.norm(axes, axis=0)
    if np.any(spacings < 1e-6):
        raise ValueError(f"the affine has a zero-length axis (voxel sizes {spacings.tolist()})")
    unit_axes = axes / spacings
    row_cosine, column_cosine, slice_dir = unit_axes.T
    if abs(float(row_cosine @ column_cosine)) > 1e-4:
        raise ValueError("the affine's first two axes are not perpendicular (a sheared in-plane grid)")
    normal = np.cross(row_cosine, column_cosine)
    normal /= np.linalg.norm(normal)
    alignment = float(slice_dir @ normal)
    if abs(alignment) < 1 - 1e-6:
        raise ValueError(
            f"the slice axis is {np.degrees(np.arccos(min(1.0, abs(alignment)))):.3f} degrees off the "
            "slice normal (a sheared or tilted grid)"
        )
    slice_step = normal * spacings[2]
    origin = affine_lps[:3, 3].copy()
    reverse = alignment < 0
    if reverse:
        origin = origin + (n_slices - 1) * axes[:, 2]
    plane = DicomPlane(
        row_cosine=row_cosine,
        column_cosine=column_cosine,
        pixel_spacing=(float(spacings[1]), float(spacings[0])),
        slice_step=slice_step,
        origin_lps=origin,
    )
    return plane, reverse
