"""NIfTI reading (with the header checks nibabel leaves to its caller) and atomic writing."""

from __future__ import annotations

import logging
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np
import torch
from nibabel.filebasedimages import ImageFileError
from nibabel.openers import ImageOpener
from nibabel.spatialimages import HeaderDataError

from medgan.errors import InputError
from medgan.io.atomic import atomic_path
from medgan.io.checks import check_memory_budget, check_slice_count, record_warning
from medgan.io.loaded import LoadedVolume
from medgan.io.options import ReadOptions

logger = logging.getLogger(__name__)

NIFTI_SUFFIXES = (".nii", ".nii.gz")
# qform and sform closer than this (mm, per affine entry) are taken to agree.
_FORM_AGREEMENT_MM = 1e-3


def is_nifti_path(path: Path) -> bool:
    """True when the file name ends in .nii or .nii.gz."""
    return path.name.lower().endswith(NIFTI_SUFFIXES)


def _spatial_shape(shape: tuple[int, ...], path: Path) -> tuple[int, int, int]:
    """Reduce a NIfTI shape to (I, J, K): drop trailing singleton dims, pad 2D to one slice; refuse 4D+."""
    squeezed = list(shape)
    while len(squeezed) > 3 and squeezed[-1] == 1:
        squeezed.pop()
    if len(squeezed) > 3:
        raise InputError(
            f"image of shape {tuple(shape)} is {len(squeezed)}D; a 3D volume is expected",
            path=path,
            fix="extract one volume first (e.g. nibabel: img.slicer[..., 0], or fslroi / fslsplit)",
        )
    if len(squeezed) < 2:
        raise InputError(f"image of shape {tuple(shape)} is not an image volume", path=path,
                         fix="give a 3D NIfTI volume")
    if len(squeezed) == 2:
        squeezed.append(1)
    return tuple(squeezed)  # type: ignore[return-value]


def _choose_affine(image: nib.Nifti1Image, path: Path, read_warnings: list[str]) -> tuple[np.ndarray, str]:
    """RAS affine per the NIfTI rules: sform if coded, else qform if coded, else pixdim only (warned).

    Returns the affine and which header field it came from ("sform", "qform" or "pixdim").
    """
    sform, sform_code = image.header.get_sform(coded=True)
    qform, qform_code = image.header.get_qform(coded=True)
    if sform is not None and qform is not None:
        disagreement = float(np.max(np.abs(sform - qform)))
        if disagreement > _FORM_AGREEMENT_MM:
            record_warning(
                read_warnings,
                f"{path.name}: qform and sform disagree (largest difference {disagreement:.4g} mm); "
                "using the sform, as the NIfTI standard and nibabel do",
            )
    if sform is not None:
        return np.asarray(sform, dtype=np.float64), "sform"
    if qform is not None:
        return np.asarray(qform, dtype=np.float64), "qform"
    record_warning(
        read_warnings,
        f"{path.name}: neither sform nor qform is set; using voxel sizes only (orientation unknown, "
        "assumed RAS at origin 0)",
    )
    return np.asarray(image.header.get_base_affine(), dtype=np.float64), "pixdim"


def _check_scaling(image: nib.Nifti1Image, path: Path, read_warnings: list[str]) -> None:
    """Make nibabel's silent rule explicit: scl_slope 0 or NaN means "no scaling", scl_inter ignored.

    Logged at INFO every time; kept as a read warning when a finite, non-zero scl_inter is
    being ignored (information in the header is discarded, so the user should know).
    """
    # nibabel resets scl_* in image.header after loading (the proxy holds the scaling): reread the raw header.
    with ImageOpener(str(path)) as handle:
        raw_header = image.header_class.from_fileobj(handle)
    raw_slope = float(raw_header["scl_slope"])
    raw_inter = float(raw_header["scl_inter"])
    if raw_slope != 0 and np.isfinite(raw_slope):
        return
    message = (
        f"{path.name}: scl_slope is {raw_slope:g}, which the NIfTI standard reads as 'no scaling'; "
        f"voxels are used as stored (scl_inter {raw_inter:g} ignored)"
    )
    if np.isfinite(raw_inter) and raw_inter != 0:
        record_warning(read_warnings, message)
    else:
        logger.info(message)


def _float32_voxels(dataobj) -> np.ndarray:
    """The voxels as C-ordered float32, as ``np.asarray(dataobj, dtype=np.float32)`` gives them.

    NIfTI stores voxels in Fortran order; converting to float32 and then copying to C
    order walks 13 M voxels twice (0.6 s for a 1 mm head). Unscaled data (slope 1,
    intercept 0, the usual case) is converted straight into a C-ordered array instead
    (0.45 s), with the same values; scaled data takes nibabel's own scaling path.
    """
    slope, inter = getattr(dataobj, "slope", 1.0), getattr(dataobj, "inter", 0.0)
    if hasattr(dataobj, "get_unscaled") and slope == 1.0 and inter == 0.0:  # complex types are refused before
        raw = np.asanyarray(dataobj.get_unscaled())
        voxels = np.empty(raw.shape, dtype=np.float32)
        voxels[...] = raw
        return voxels
    return np.ascontiguousarray(np.asarray(dataobj, dtype=np.float32))


def read_nifti(path: Path, options: ReadOptions) -> LoadedVolume:
    """Read a 3D NIfTI file as float32 voxels (I, J, K) with its RAS affine.

    Header rules applied, each logged and kept in ``read_warnings``:
    - sform is used when coded, else qform; a qform that disagrees with the sform is a warning.
    - ``scl_slope`` 0 or NaN means the voxels are used as stored and ``scl_inter`` is ignored
      (the NIfTI-1 standard and nibabel agree; medgan just says so out loud).
    - trailing singleton dimensions are dropped (a 4D file with one volume reads as 3D); a true
      4D file is an error showing its shape; a 2D image is subject to ``options.min_slices``.
    - the memory budget is checked from the header before any voxel is read.
    """
    read_warnings: list[str] = []
    try:
        image = nib.load(str(path))
    except FileNotFoundError as err:
        raise InputError("file not found", path=path, fix="check the path") from err
    except HeaderDataError as err:
        raise InputError(f"invalid NIfTI header: {err}", path=path,
                         fix="repair the header (e.g. set scl_slope=1, scl_inter=0) or re-export the file") from err
    except (ImageFileError, OSError, EOFError, ValueError) as err:
        raise InputError(f"not a readable NIfTI file ({err})", path=path,
                         fix="check that the file is a complete .nii / .nii.gz; re-copy or re-export it") from err
    if not isinstance(image, nib.Nifti1Image | nib.Nifti2Image):
        raise InputError(f"{type(image).__name__} is not a NIfTI image", path=path,
                         fix="convert it to NIfTI (.nii.gz)")
    shape = _spatial_shape(tuple(int(n) for n in image.shape), path)
    check_slice_count(shape, path, options)
    check_memory_budget(shape, path, options)
    if np.issubdtype(image.get_data_dtype(), np.complexfloating) or image.get_data_dtype().names:
        raise InputError(f"voxel type {image.get_data_dtype()} is not a real scalar", path=path,
                         fix="save the magnitude (or one component) as a real-valued volume")
    affine, affine_source = _choose_affine(image, path, read_warnings)
    _check_scaling(image, path, read_warnings)
    try:
        voxels = _float32_voxels(image.dataobj)
    except (EOFError, zlib.error, OSError, ValueError) as err:
        raise InputError(f"voxel data cannot be read, the file is truncated or corrupt ({err})", path=path,
                         fix="re-copy or re-export the file; check the download / transfer finished") from err
    voxels = voxels.reshape(shape)
    return LoadedVolume(
        voxels=voxels,
        affine_ras=affine,
        source_format="nifti",
        read_warnings=read_warnings,
        extra_meta={"affine_source": affine_source},
    )


def _as_numpy_and_affine(volume, affine) -> tuple[np.ndarray, np.ndarray]:
    """Split a MetaTensor / tensor / array (optionally channel-first) into voxels and a RAS affine."""
    if affine is None:
        affine = getattr(volume, "affine", None)
        if affine is None:
            raise ValueError("write_nifti needs an affine: pass affine= or a MetaTensor that carries one")
    affine = np.asarray(affine.detach().cpu() if isinstance(affine, torch.Tensor) else affine, dtype=np.float64)
    voxels = volume.detach().cpu().numpy() if isinstance(volume, torch.Tensor) else np.asarray(volume)
    if voxels.ndim == 4 and voxels.shape[0] == 1:
        voxels = voxels[0]
    return voxels, affine


def _as_storage_type(voxels: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``voxels`` as ``dtype``: float voxels rounded for an integer type, refused when they do not fit."""
    if not (np.issubdtype(dtype, np.integer) and np.issubdtype(voxels.dtype, np.floating)):
        return voxels.astype(dtype, copy=False)
    limits = np.iinfo(dtype)
    low, high = (float(voxels.min()), float(voxels.max())) if voxels.size else (0.0, 0.0)
    if not (np.isfinite(low) and np.isfinite(high)) or low < limits.min - 0.5 or high > limits.max + 0.5:
        raise ValueError(f"voxels span {low:g} .. {high:g}, outside {dtype.name}'s {limits.min} .. {limits.max}")
    return np.rint(voxels).astype(dtype)


def write_nifti(volume, path: str | Path, *, affine=None, dtype=np.float32) -> Path:
    """Write a 3D volume (array, tensor or channel-first MetaTensor) as NIfTI, atomically.

    The affine is the RAS voxel-to-world matrix (MONAI / nibabel convention); it is
    stored as both sform and qform (code 1, scanner) so every viewer agrees. An
    integer ``dtype`` rounds float voxels to the nearest integer; values outside its
    range raise ``ValueError`` (they would wrap around).
    """
    voxels, affine = _as_numpy_and_affine(volume, affine)
    if voxels.ndim != 3:
        raise ValueError(f"write_nifti expects a 3D volume or (1, I, J, K); got shape {voxels.shape}")
    if affine.shape != (4, 4):
        raise ValueError(f"write_nifti expects a 4x4 affine; got shape {affine.shape}")
    image = nib.Nifti1Image(_as_storage_type(voxels, np.dtype(dtype)), affine)
    image.set_sform(affine, code=1)
    image.set_qform(affine, code=1)
    image.header.set_xyzt_units("mm", "sec")
    path = Path(path)
    with atomic_path(path) as tmp:
        nib.save(image, str(tmp))
    return path
