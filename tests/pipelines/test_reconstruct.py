"""The reconstruct job: outputs on the input grid, metrics and hallucination report, resume, refusals."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import nibabel as nib
import numpy as np
import pytest
import torch
import yaml
from tiny_data import tiny_method_config, write_tiny_dataset

from medgan.data.kspace import fft_centered, ifft_centered
from medgan.errors import ConfigError
from medgan.io.kspace_h5 import write_kspace_h5
from medgan.jobs.manifest import merge_manifests
from pipelines.reconstruct import run_reconstruct
from pipelines.reconstruct_inputs import centre_crop
from pipelines.train import run_training


def train_tiny_recon(root: Path, steps: int, generator: dict | None = None) -> tuple[Path, Path]:
    """A tiny recon run on a tiny data set under ``root``: (run folder, data folder)."""
    datalist = write_tiny_dataset(root / "data")
    config = tiny_method_config(
        datalist, "recon", steps=steps, sample_every=0, validate_every=0, checkpoint_every=steps
    )
    config["data"]["validation_volumes"] = 0
    if generator is not None:
        config["model"]["generator"] = generator
    (root / "recon.yaml").write_text(yaml.safe_dump(config))
    return run_training(root / "recon.yaml", run_dir=root / "run", quiet=True), root / "data"


@pytest.fixture(scope="module")
def recon_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return train_tiny_recon(tmp_path_factory.mktemp("recon_run"), steps=4)


def test_outputs_sit_on_the_input_grid_with_metrics_and_resume_skips(recon_run, tmp_path: Path) -> None:
    run, data = recon_run
    mri = data / "subject_000" / "mri.nii.gz"
    summary = run_reconstruct(run, [mri], tmp_path / "out", acceleration=4, progress=False)
    assert summary.n_done == 1
    folder = tmp_path / "out" / "mri"
    for name in ("zero_filled", "reconstruction"):
        image = nib.load(folder / f"{name}.nii.gz")
        assert image.shape == nib.load(mri).shape and np.allclose(image.affine, nib.load(mri).affine)
    assert (folder / "error_map.png").stat().st_size > 1000
    report = json.loads((folder / "recon.json").read_text())
    assert report["acceleration_achieved"] == pytest.approx(4, rel=0.5)
    assert set(report["metrics"]) == {"zero_filled", "reconstruction"}
    assert (
        0 < report["metrics"]["zero_filled"]["nmse"] < 1
        and report["hallucination"]["reconstruction"]["noise_sigma"] > 0
    )
    assert run_reconstruct(run, [mri], tmp_path / "out", acceleration=4, progress=False).n_skipped == 1
    again = run_reconstruct(run, [mri], tmp_path / "out", acceleration=8, center_fraction=0.04, progress=False)
    assert again.n_done == 1  # other settings: redone, not skipped


def test_bad_inputs_are_refused_by_name(recon_run, tmp_path: Path) -> None:
    run, _ = recon_run
    kspace = tmp_path / "scan.h5"
    kspace.write_bytes(b"")
    summary = run_reconstruct(run, [kspace], tmp_path / "out", progress=False)
    assert summary.n_failed == 1 and "2D per slice" in merge_manifests(tmp_path / "out")[str(kspace)].error
    with pytest.raises(ConfigError, match="acceleration must be >= 1"):
        run_reconstruct(run, [kspace], tmp_path / "out2", acceleration=0.5, progress=False)
    with pytest.raises(ConfigError, match="center fraction"):
        run_reconstruct(run, [kspace], tmp_path / "out3", center_fraction=1.5, progress=False)


@pytest.fixture(scope="module")
def slice_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    generator = {"name": "unrolled2d", "cascades": 2, "block": {"channels": [4, 8]}}
    return train_tiny_recon(tmp_path_factory.mktemp("recon_2d_run"), steps=2, generator=generator)


def test_a_slice_wise_run_reconstructs_images_and_fastmri_files(slice_run, tmp_path: Path) -> None:
    run, data = slice_run
    mri = data / "subject_000" / "mri.nii.gz"
    image = nib.load(mri).get_fdata().astype(np.float32)
    full = fft_centered(torch.from_numpy(image), spatial_dims=2)  # 2D k-space per slice of the first axis
    target = centre_crop(ifft_centered(full, 2).abs().numpy(), (12, 12))
    fully_sampled = write_kspace_h5(tmp_path / "full.h5", full, torch.from_numpy(target))
    mask = torch.zeros(image.shape[-1])
    mask[::2] = 1
    masked = write_kspace_h5(tmp_path / "masked.h5", full * mask, mask=mask)
    summary = run_reconstruct(run, [mri, fully_sampled, masked], tmp_path / "out", acceleration=4, progress=False)
    assert summary.n_done == 3
    nifti = json.loads((tmp_path / "out" / "mri" / "recon.json").read_text())
    assert nifti["kspace_dims"] == 2 and set(nifti["metrics"]) == {"zero_filled", "reconstruction"}
    assert nib.load(tmp_path / "out" / "mri" / "reconstruction.nii.gz").shape == image.shape
    scored = json.loads((tmp_path / "out" / "full" / "recon.json").read_text())
    assert "reconstruction_esc" in scored["reference"] and scored["acceleration_achieved"] == pytest.approx(4, rel=0.5)
    assert 0 < scored["metrics"]["zero_filled"]["nmse"] < 1 and "hallucination" in scored
    with h5py.File(tmp_path / "out" / "full" / "reconstruction.h5") as handle:
        assert handle["reconstruction"].shape == (image.shape[0], 12, 12)  # the target's crop, fastMRI's layout
    with h5py.File(tmp_path / "out" / "full" / "zero_filled.h5") as handle:
        zero_filled = handle["reconstruction"][()]
    assert np.corrcoef(zero_filled.ravel(), target.ravel())[0, 1] > 0.8  # the file's units, aligned with the target
    unscored = json.loads((tmp_path / "out" / "masked" / "recon.json").read_text())
    assert unscored["acceleration_achieved"] == pytest.approx(2.0) and unscored["metrics"] == {}
    assert "file's mask" in unscored["mask_source"] and unscored["reference"] is None


def test_multi_coil_files_and_3d_runs_on_kspace_are_refused_by_name(recon_run, slice_run, tmp_path: Path) -> None:
    multi = write_kspace_h5(tmp_path / "multi.h5", torch.randn(2, 3, 8, 8, dtype=torch.complex64))
    single = write_kspace_h5(tmp_path / "single.h5", torch.randn(2, 8, 8, dtype=torch.complex64))
    summary = run_reconstruct(slice_run[0], [multi], tmp_path / "out", progress=False)
    error = merge_manifests(tmp_path / "out")[str(multi)].error
    assert summary.n_failed == 1 and "multi-coil" in error and "multi.h5" in error
    run_reconstruct(recon_run[0], [single], tmp_path / "out3d", progress=False)
    assert "unrolled2d" in merge_manifests(tmp_path / "out3d")[str(single)].error
