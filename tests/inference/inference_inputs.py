"""Small NIfTI inputs with awkward geometry for the inference tests (imported by the tests)."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

# Not RAS (x flipped, y and z swapped), anisotropic voxels, off-origin.
AWKWARD_AFFINE = np.array(
    [[-0.9, 0.0, 0.0, 12.5], [0.0, 0.0, 2.5, -20.0], [0.0, -1.3, 0.0, 31.0], [0.0, 0.0, 0.0, 1.0]]
)


def head_like_mri(shape: tuple[int, int, int], seed: int = 0) -> np.ndarray:
    """An MRI-like volume: dark background, a bright noisy ellipsoid 'head' with a dark core."""
    rng = np.random.default_rng(seed)
    grid = np.meshgrid(*[np.linspace(-1, 1, size) for size in shape], indexing="ij")
    radius = np.sqrt(sum(axis**2 for axis in grid))
    mri = np.where(radius < 0.8, 300.0, 0.0) + np.where(radius < 0.3, -200.0, 0.0)
    return (mri + rng.normal(0, 5, shape)).clip(0).astype(np.float32)


def save_nifti(path: Path, voxels: np.ndarray, affine: np.ndarray) -> Path:
    """Write a plain NIfTI (sform and qform = ``affine``) as a scanner would hand it over."""
    image = nib.Nifti1Image(voxels, affine)
    image.set_sform(affine, code=1)
    image.set_qform(affine, code=1)
    nib.save(image, str(path))
    return path
