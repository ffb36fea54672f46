"""Shared test data: a tiny paired dataset and a tiny config per registered method.

The tiny data are 3 subjects of 24^3 voxels (2 mm): a skull-like shell around a
brain, with MRI, CT (HU) and labels. ``TINY_METHOD_MODELS`` holds each method's
smallest ``model`` section; the method contract test
(``tests/methods/test_contract.py``) requires an entry for every registered
method, so a new method cannot join without one.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import nibabel as nib
import numpy as np


def write_tiny_dataset(root: Path, *, subjects: int = 3, size: int = 24, seed: int = 0) -> Path:
    """Write ``subjects`` paired volumes of ``size``^3 voxels (2 mm) and a datalist; return its path."""
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(*[np.arange(size)] * 3, indexing="ij")).astype(np.float32)
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    entries = []
    for index in range(subjects):
        centre = size / 2 + rng.uniform(-1.5, 1.5, size=3)
        radius = np.sqrt(((grid - centre[:, None, None, None]) ** 2).sum(0))
        outer = size * rng.uniform(0.34, 0.4)
        labels = np.zeros((size,) * 3, np.int16)
        labels[radius < outer] = 2  # bone shell
        labels[radius < outer - 2] = 1  # brain
        ct = np.select([labels == 2, labels == 1], [1200.0, 40.0], -1000.0) + rng.normal(0, 10, labels.shape)
        mri = np.select([labels == 2, labels == 1], [80.0, 600.0], 5.0) + np.abs(rng.normal(0, 5, labels.shape))
        volumes = [("mri", mri.astype(np.float32)), ("ct", ct.astype(np.float32)), ("labels", labels)]
        if index % 2:  # class 1 subjects carry a small lesion (for cgan3d's class and the lesion method)
            lesion = (np.sqrt(((grid - (centre + 2.0)[:, None, None, None]) ** 2).sum(0)) < 2.5) & (labels == 1)
            ct[lesion] += 40.0
            mri[lesion] -= 250.0
            volumes = [("mri", mri.astype(np.float32)), ("ct", ct.astype(np.float32)), ("labels", labels)]
            volumes.append(("lesion_mask", lesion.astype(np.uint8)))
        folder = root / f"subject_{index:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        for name, volume in volumes:
            nib.save(nib.Nifti1Image(volume, affine), folder / f"{name}.nii.gz")
        files = {name: f"{folder.name}/{name}.nii.gz" for name, _ in volumes}
        entries.append({"subject": folder.name, **files, "label": index % 2})  # a class label for cgan3d
    datalist = {"training": entries[:-1], "validation": entries[-1:], "test": entries[-1:]}
    path = root / "datalist.json"
    path.write_text(json.dumps(datalist, indent=1))
    return path


TINY_UNET = {"name": "unet3d", "channels": [4, 8], "strides": [2], "num_res_units": 0}
TINY_PATCHGAN = {"name": "patchgan3d", "channels": 4, "num_layers_d": 2}
TINY_METHOD_MODELS: dict[str, dict] = {
    "pix2pix": {"generator": TINY_UNET, "discriminator": TINY_PATCHGAN},
    "cyclegan": {"generator": TINY_UNET, "discriminator": TINY_PATCHGAN, "losses": {"pool_size": 4}},
    "bulk_density": {"generator": {"name": "bulk_density3d", "dark_threshold": -0.7, "closing_radius": 1}},
    "lesion": {"generator": TINY_UNET, "discriminator": TINY_PATCHGAN, "images": {"mri": "mri", "ct": "ct"}},
    "recon": {
        "generator": {
            "name": "unrolled3d",
            "cascades": 2,
            "block": {"channels": [4, 8], "strides": [2], "num_res_units": 0},
        },
        "discriminator": TINY_PATCHGAN,
    },
    "cgan3d": {
        "generator": {"name": "cond_generator3d", "channels": [8, 4], "latent_dim": 8, "embedding_dim": 4},
        "discriminator": {"name": "projection3d", "channels": [4, 8]},
        "losses": {"r1_interval": 2},
        "ada": {"initial_p": 0.5, "interval": 1},
    },
}


def tiny_method_config(datalist: Path, method: str = "pix2pix", **train_overrides: object) -> dict:
    """A config of ``method`` small enough to train a few steps in about a second on CPU."""
    return {
        "method": method,
        "data": {
            "datalist": str(datalist),
            "patch_size": [16, 16, 16],
            "samples_per_volume": 2,
            "cache": "memory",
            "validation_volumes": 1,
        },
        "model": copy.deepcopy(TINY_METHOD_MODELS[method]),
        "train": {
            "steps": 4,
            "batch_size": 2,
            "seed": 3,
            "lr_schedule": "constant",
            "ema_decay": 0.5,
            "device": "cpu",
            "precision": "fp32",
            "checkpoint_every": 2,
            "validate_every": 2,
            "log_every": 1,
            "sample_every": 4,
            **train_overrides,
        },
        "inference": {"roi_size": [16, 16, 16], "sw_batch_size": 2},
    }
