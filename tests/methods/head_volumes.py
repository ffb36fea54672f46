"""Tiny concentric T1-like heads with CT, for the cyclegan and bulk-density tests.

Each subject is air / scalp / skull / brain shells around a jittered centre. The MRI
has the T1 ordering that makes MRI -> CT hard (scalp fat bright, brain mid, skull
and air both dark with Rician-like noise); the CT has the matching HU plus noise.
Written with ``medgan.io.write_nifti``, with a decathlon-style datalist.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from medgan.io import write_nifti

LABEL_AIR, LABEL_BRAIN, LABEL_SCALP, LABEL_SKULL = 0, 1, 2, 3
CT_HU = {LABEL_AIR: -1000.0, LABEL_BRAIN: 35.0, LABEL_SCALP: -90.0, LABEL_SKULL: 1200.0}
MRI_SIGNAL = {LABEL_AIR: 0.0, LABEL_BRAIN: 500.0, LABEL_SCALP: 900.0, LABEL_SKULL: 0.0}


def head_labels(size: int, rng: np.random.Generator) -> np.ndarray:
    """Label map of one head: brain, a 2-voxel skull, a 2-voxel scalp, air around."""
    grid = np.stack(np.meshgrid(*[np.arange(size)] * 3, indexing="ij")).astype(np.float32)
    centre = (size - 1) / 2 + rng.uniform(-1.0, 1.0, size=3)
    radius = np.sqrt(((grid - centre[:, None, None, None]) ** 2).sum(0))
    outer = size * rng.uniform(0.38, 0.44)
    labels = np.full((size,) * 3, LABEL_AIR, np.int16)
    labels[radius < outer] = LABEL_SCALP
    labels[radius < outer - 2] = LABEL_SKULL
    labels[radius < outer - 4] = LABEL_BRAIN
    return labels


def write_heads(root: Path, *, subjects: int = 4, size: int = 32, seed: int = 0) -> Path:
    """Write ``subjects`` paired heads of ``size``^3 voxels (2 mm) under ``root``; return the datalist path.

    The last subject is the validation (and test) subject, the others train.
    """
    rng = np.random.default_rng(seed)
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    entries = []
    for index in range(subjects):
        labels = head_labels(size, rng)
        ct = np.vectorize(CT_HU.get)(labels) + rng.normal(0.0, 15.0, labels.shape)
        signal = np.vectorize(MRI_SIGNAL.get)(labels)
        # Rician-like magnitude noise: dark tissue is small but non-zero
        mri = np.hypot(signal + rng.normal(0.0, 12.0, labels.shape), rng.normal(0.0, 12.0, labels.shape))
        folder = root / f"subject_{index:03d}"
        for name, volume in (("mri", mri), ("ct", ct), ("labels", labels)):
            write_nifti(torch.as_tensor(volume.astype(np.float32))[None], folder / f"{name}.nii.gz", affine=affine)
        entries.append({"subject": folder.name, **{k: f"{folder.name}/{k}.nii.gz" for k in ("mri", "ct", "labels")}})
    datalist = {"training": entries[:-1], "validation": entries[-1:], "test": entries[-1:]}
    path = root / "datalist.json"
    path.write_text(json.dumps(datalist, indent=1))
    return path
