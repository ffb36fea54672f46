"""Tiny paired MRI / CT / label volumes (a skull-like sphere) and a tiny pix2pix config for engine tests."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import yaml


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
        folder = root / f"subject_{index:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        for name, volume in (("mri", mri.astype(np.float32)), ("ct", ct.astype(np.float32)), ("labels", labels)):
            nib.save(nib.Nifti1Image(volume, affine), folder / f"{name}.nii.gz")
        entries.append({"subject": folder.name, **{k: f"{folder.name}/{k}.nii.gz" for k in ("mri", "ct", "labels")}})
    datalist = {"training": entries[:-1], "validation": entries[-1:], "test": entries[-1:]}
    path = root / "datalist.json"
    path.write_text(json.dumps(datalist, indent=1))
    return path


def tiny_config(datalist: Path, **train_overrides: object) -> dict:
    """A pix2pix config small enough to train a few steps in about a second on CPU."""
    return {
        "method": "pix2pix",
        "data": {
            "datalist": str(datalist),
            "patch_size": [16, 16, 16],
            "samples_per_volume": 2,
            "cache": "memory",
            "validation_volumes": 1,
        },
        "model": {
            "generator": {"name": "unet3d", "channels": [4, 8], "strides": [2], "num_res_units": 0},
            "discriminator": {"name": "patchgan3d", "channels": 4, "num_layers_d": 2},
        },
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


@pytest.fixture(scope="session")
def tiny_datalist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A shared tiny dataset (read-only for tests)."""
    return write_tiny_dataset(tmp_path_factory.mktemp("tiny_data"))


@pytest.fixture
def write_config(tmp_path: Path, tiny_datalist: Path):  # noqa: ANN201
    """Write a tiny config YAML (train overrides as kwargs) and return its path."""

    def write(name: str = "tiny", **train_overrides: object) -> Path:
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(tiny_config(tiny_datalist, **train_overrides)))
        return path

    return write


@pytest.fixture
def tiny_experiment(tiny_datalist: Path) -> dict:
    """The tiny pix2pix config as a dict (for building ExperimentConfig directly)."""
    return tiny_config(tiny_datalist)
