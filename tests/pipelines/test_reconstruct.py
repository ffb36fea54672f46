"""The reconstruct job: outputs on the input grid, metrics and hallucination report, resume, refusals."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import yaml
from tiny_data import tiny_method_config, write_tiny_dataset

from medgan.errors import ConfigError
from medgan.jobs.manifest import merge_manifests
from pipelines.reconstruct import run_reconstruct
from pipelines.train import run_training


@pytest.fixture(scope="module")
def recon_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("recon_run")
    datalist = write_tiny_dataset(root / "data")
    config = tiny_method_config(datalist, "recon", steps=4, sample_every=0, validate_every=0, checkpoint_every=4)
    config["data"]["validation_volumes"] = 0
    (root / "recon.yaml").write_text(yaml.safe_dump(config))
    return run_training(root / "recon.yaml", run_dir=root / "run", quiet=True), root / "data"


def test_outputs_sit_on_the_input_grid_with_metrics_and_resume_skips(recon_run, tmp_path: Path) -> None:
    run, data = recon_run
    mri = data / "subject_000" / "mri.nii.gz"
    summary = run_reconstruct(run, [mri], tmp_path / "out", acceleration=4, progress=False)
    assert summary.n_done == 1
    folder = tmp_path / "out" / "mri"
    for name in ("zero_filled", "reconstruction"):
        image = nib.load(folder / f"{name}.nii.gz")
        assert image.shape == nib.load(mri).shape and np.allclose(image.affine, nib.load(mri).affine)
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
