"""Real and synthetic scans on one grid, in one intensity scale, for the report's comparisons.

Why a common grid: realism, diversity and memorisation compare volumes voxel for voxel or
feature for feature, so every scan is oriented RAS, resampled to one isotropic spacing, cropped
around its body (largest connected component above the modality's body threshold) and centre
padded / cropped to one shape. The grid comes from the *real* scans' headers: spacing = the
median of each scan's coarsest voxel edge (no resolution is invented), shape = the median
physical extent at that spacing, rounded up to a multiple of 8 and capped at ``max_edge`` (the
spacing is coarsened instead). Synthetic scans follow the real grid whatever their own.

Report units: CT stays in HU (unclipped: the out-of-range check needs the raw values), MRI is
mapped per volume by the preset's 0.5 / 99.5 percentile window without clipping (MRI has no
physical unit, so two MRIs are only comparable after that normalisation). ``network`` maps
either into [-1, 1] for the network-based checks. Non-finite voxels are counted on reading and
replaced by air, so one broken sample is reported, not fatal.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import torch
import torch.nn.functional as F
from monai.transforms import Orientation, Spacing
from scipy import ndimage

from medgan.data.presets import get_preset
from medgan.evaluation.report.artifacts import checkerboard_peak, outside_body_share
from medgan.io import ReadOptions, read_volume
from medgan.io.geometry import voxel_spacing

# Air in report units, and the physically possible CT range (12-bit scanners store -1024..3071 HU).
AIR = {"ct": -1024.0, "mri": -1.0}
BODY_THRESHOLD = {"ct": -500.0, "mri": -0.8}
CT_PHYSICAL_RANGE = (-1024.0, 3071.0)
RAS_LABELS = (("L", "R"), ("P", "A"), ("I", "S"))  # MONAI's axis letters, given so it does not warn


@dataclass(frozen=True)
class ReportGrid:
    """The isotropic spacing (mm) and shape (voxels) every volume is brought to."""

    spacing: float
    shape: tuple[int, int, int]

    def to_dict(self) -> dict[str, object]:
        return {"spacing_mm": self.spacing, "shape": list(self.shape)}


@dataclass
class ReportVolume:
    """One scan on the report grid (report units, see the module docstring), with what reading found."""

    name: str
    path: Path
    values: np.ndarray  # (X, Y, Z) float32, RAS
    body: np.ndarray  # (X, Y, Z) bool
    mask: np.ndarray | None  # lesion mask on the same grid, when the case has one
    nonfinite: int  # voxels that were NaN / Inf in the file
    outside_range_share: float  # CT: share of the file's voxels outside CT_PHYSICAL_RANGE; MRI: 0
    checkerboard_peak: float  # artifacts.checkerboard_peak on the file's own grid
    outside_body_share: float  # artifacts.outside_body_share on the report grid
    source: str | None = None  # the real head a synthetic case was made from (enrich's source_subject)


def _is_nifti(path: Path) -> bool:
    return path.name.endswith((".nii", ".nii.gz"))


def _geometry(path: Path) -> tuple[np.ndarray, tuple[float, float, float]]:
    """RAS-ordered physical extent (mm) and voxel spacing of a scan, from its header where possible."""
    if _is_nifti(path):
        header = nib.load(str(path))
        affine, shape = header.affine, header.shape[:3]
    else:  # a DICOM series: no cheap header-only path, read it once
        volume = read_volume(path, options=ReadOptions(nan_policy="replace", nan_fill=0.0))
        affine, shape = np.asarray(volume.affine), volume.shape[1:]
    spacing = voxel_spacing(affine)
    extent = np.zeros(3)
    for index_axis, ras_axis in enumerate(np.abs(np.asarray(affine)[:3, :3]).argmax(axis=0)):
        extent[ras_axis] = shape[index_axis] * spacing[index_axis]
    return extent, spacing


def choose_grid(real_paths: Sequence[Path], *, max_edge: int = 96, spacing: float | None = None) -> ReportGrid:
    """The report grid from the real scans' headers (see the module docstring); ``spacing`` overrides."""
    geometries = [_geometry(Path(p)) for p in real_paths]
    if spacing is None:
        spacing = float(np.median([max(s) for _, s in geometries]))
    extent = np.median([e for e, _ in geometries], axis=0)
    if extent.max() / spacing > max_edge:
        spacing = float(extent.max() / max_edge)
    shape = tuple(int(min(max_edge, 8 * math.ceil(edge / spacing / 8))) for edge in extent)
    return ReportGrid(spacing=round(spacing, 4), shape=shape)  # type: ignore[arg-type]


def _largest_component(mask: np.ndarray) -> np.ndarray:
    components, count = ndimage.label(mask)
    if count <= 1:
        return mask
    sizes = np.bincount(components.ravel())
    sizes[0] = 0
    return components == sizes.argmax()


def _fit(array: np.ndarray, centre: np.ndarray, shape: Sequence[int], fill: float) -> np.ndarray:
    """``shape`` voxels of ``array`` centred on ``centre``, ``fill`` where it lies outside."""
    out = np.full(shape, fill, dtype=array.dtype)
    source, target = [], []
    for axis, edge in enumerate(shape):
        start = int(round(centre[axis])) - edge // 2
        lo, hi = max(start, 0), min(start + edge, array.shape[axis])
        source.append(slice(lo, max(hi, lo)))
        target.append(slice(lo - start, lo - start + max(hi - lo, 0)))
    out[tuple(target)] = array[tuple(source)]
    return out


def prepare_volume(
    path: Path,
    modality: str,
    grid: ReportGrid,
    *,
    name: str,
    mask_path: Path | None = None,
) -> ReportVolume:
    """Read one scan (and its lesion mask) onto ``grid`` in report units."""
    modality = get_preset(modality).name
    air = AIR[modality]
    raw = read_volume(path, options=ReadOptions(nan_policy="replace", nan_fill=air if modality == "ct" else 0.0))
    nonfinite = int(raw.meta.get("nonfinite_replaced", 0))
    outside = 0.0
    if modality == "ct":
        low, high = CT_PHYSICAL_RANGE
        outside = float(((raw < low - 0.5) | (raw > high + 0.5)).float().mean())
    else:
        window = get_preset("mri").window_of_volume(raw)
        raw = window.to_network(raw.float(), clip=False)
    oriented = Orientation(axcodes="RAS", labels=RAS_LABELS)(raw)
    checkerboard = checkerboard_peak(oriented.as_tensor()[0].numpy())
    resample = Spacing(pixdim=(grid.spacing,) * 3, mode="bilinear", padding_mode="border")
    image = resample(oriented)
    values = image.as_tensor()[0].numpy().astype(np.float32)
    body = _largest_component(values > BODY_THRESHOLD[modality])
    centre = np.argwhere(body).mean(axis=0) if body.any() else np.array(values.shape) / 2
    mask = None
    if mask_path is not None:
        mask_volume = read_volume(mask_path)
        mask_grid = Spacing(pixdim=(grid.spacing,) * 3, mode="nearest")(
            Orientation(axcodes="RAS", labels=RAS_LABELS)(mask_volume)
        )
        mask_array = mask_grid.as_tensor()[0].numpy() > 0.5
        if mask_array.shape != values.shape:  # the mask's own grid differs by a voxel: take the common corner
            common = tuple(min(a, b) for a, b in zip(mask_array.shape, values.shape, strict=True))
            padded = np.zeros(values.shape, dtype=bool)
            padded[tuple(slice(0, e) for e in common)] = mask_array[tuple(slice(0, e) for e in common)]
            mask_array = padded
        mask = _fit(mask_array, centre, grid.shape, False)
    values, body = _fit(values, centre, grid.shape, air), _fit(body, centre, grid.shape, False)
    return ReportVolume(
        name=name,
        path=Path(path),
        values=values,
        body=body,
        mask=mask,
        nonfinite=nonfinite,
        outside_range_share=outside,
        checkerboard_peak=checkerboard,
        outside_body_share=outside_body_share(values, body, BODY_THRESHOLD[modality]),
    )


def network(values: np.ndarray, modality: str) -> np.ndarray:
    """Report units -> [-1, 1] (CT through the preset's fixed window; MRI clipped)."""
    if get_preset(modality).name == "ct":
        return get_preset("ct").to_network(torch.from_numpy(np.ascontiguousarray(values))).numpy()
    return np.clip(values, -1.0, 1.0)


def stack_network(volumes: Sequence[ReportVolume], modality: str) -> torch.Tensor:
    """``(N, 1, X, Y, Z)`` float32 tensor of the volumes in [-1, 1]."""
    return torch.from_numpy(np.stack([network(v.values, modality) for v in volumes])[:, None].astype(np.float32))


def downsampled(volumes: torch.Tensor, max_edge: int) -> torch.Tensor:
    """``(N, C, X, Y, Z)`` float volumes scaled (trilinear) so the longest edge is at most ``max_edge`` (>= 8 each)."""
    scale = max_edge / max(volumes.shape[2:])
    if scale >= 1:
        return volumes.float()
    size = [max(8, int(round(edge * scale))) for edge in volumes.shape[2:]]
    return F.interpolate(volumes.float(), size=size, mode="trilinear", align_corners=False)
