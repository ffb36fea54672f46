"""Small head-like CT volumes (HU) with known properties for the report's tests."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np


def head_ct(seed: int, shape: tuple[int, int, int] = (24, 24, 24)) -> np.ndarray:
    """An ellipsoid head: soft tissue (40 HU + noise) in a bone shell, in air, size varied by the seed."""
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij"))
    radii = 0.75 + 0.1 * rng.random(3)
    radius = np.sqrt(sum((grid[i] / radii[i]) ** 2 for i in range(3)))
    volume = np.full(shape, -1000.0) + rng.normal(0, 5, shape)
    volume[radius < 1.0] = 700.0
    volume[radius < 0.85] = 40.0
    inside = radius < 0.85
    volume[inside] += rng.normal(0, 15, int(inside.sum()))
    volume[(radius < 0.3) & (grid[0] > 0)] = 10.0  # a ventricle-like darker region
    return volume.astype(np.float32)


def write_ct(path: Path, volume: np.ndarray, spacing: float = 4.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(volume.astype(np.float32), np.diag([spacing, spacing, spacing, 1.0])), str(path))
    return path
