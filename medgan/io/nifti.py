"""NIfTI writing (reading and validation live beside it, owned by the io module)."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import torch

from medgan.io.atomic import atomic_path


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


def write_nifti(volume, path: str | Path, *, affine=None, dtype=np.float32) -> Path:
    """Write a 3D volume (array, tensor or channel-first MetaTensor) as NIfTI, atomically.

    The affine is the RAS voxel-to-world matrix (MONAI / nibabel convention); it is
    stored as both sform and qform (code 1, scanner) so every viewer agrees.
    """
    voxels, affine = _as_numpy_and_affine(volume, affine)
    image = nib.Nifti1Image(voxels.astype(dtype, copy=False), affine)
    image.set_sform(affine, code=1)
    image.set_qform(affine, code=1)
    image.header.set_xyzt_units("mm", "sec")
    path = Path(path)
    with atomic_path(path) as tmp:
        nib.save(image, str(tmp))
    return path
