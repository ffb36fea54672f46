"""The generate job end to end, with a cgan3d run trained for 4 steps by the real engine."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
import yaml
from tiny_data import tiny_method_config

from medgan.errors import ConfigError, InputError
from pipelines.cli import main as cli_main
from pipelines.generate import from_physical, item_labels, item_noise, run_generate, to_physical
from pipelines.train import run_training


@pytest.fixture(scope="module")
def cgan_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tiny_data import write_tiny_dataset

    root = tmp_path_factory.mktemp("generate_run")
    datalist = write_tiny_dataset(root / "data")
    config = tiny_method_config(datalist, "cgan3d", steps=4, sample_every=0, validate_every=0, checkpoint_every=4)
    config["data"]["validation_volumes"] = 0
    config_path = root / "cgan3d.yaml"
    config_path.write_text(yaml.safe_dump(config))
    return run_training(config_path, run_dir=root / "run", quiet=True)


def sample_dirs(out_dir: Path) -> list[Path]:
    return sorted(path for path in out_dir.iterdir() if path.is_dir() and path.name.startswith("sample_"))


def voxels(path: Path) -> np.ndarray:
    return np.asarray(nib.load(path).dataobj)


def test_samples_have_the_grid_labels_units_and_provenance(cgan_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "synthetic"
    summary = run_generate(cgan_run, out, 4, seed=7, progress=False)
    assert summary.exit_code == 0 and summary.n_done == 4
    folders = sample_dirs(out)
    assert [folder.name for folder in folders] == [f"sample_{i:06d}_class{i % 2}" for i in range(4)]
    for index, folder in enumerate(folders):
        image = nib.load(folder / "ct.nii.gz")
        assert image.shape == (16, 16, 16)
        np.testing.assert_allclose(np.diag(image.affine)[:3], [2.0, 2.0, 2.0])  # the tiny data's 2 mm
        np.testing.assert_allclose(image.affine[:3, 3], [-15.0, -15.0, -15.0])  # centred on the origin
        values = voxels(folder / "ct.nii.gz")
        assert values.min() >= -1024.0 - 1e-3 and values.max() <= 3071.0 + 1e-3 and values.std() > 0  # HU
        sidecar = json.loads((folder / "sample.json").read_text())
        assert sidecar["label"] == index % 2 and sidecar["index"] == index and sidecar["synthetic"] is True
        assert sidecar["job_seed"] == 7 and sidecar["units"] == {"ct": "HU"} and sidecar["files"] == {"ct": "ct.nii.gz"}
        assert len(sidecar["checkpoint_sha256"]) == 64 and len(sidecar["config_sha256"]) == 64
        assert sidecar["medgan_version"] and sidecar["spacing_mm"] == [2.0, 2.0, 2.0]
    datalist = json.loads((out / "datalist.json").read_text())
    assert [entry["label"] for entry in datalist["training"]] == [0, 1, 0, 1]
    assert all((out / entry["ct"]).is_file() for entry in datalist["training"])
    assert (out / "montage.png").stat().st_size > 1000
    manifest = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert [row["status"] for row in manifest] == ["done"] * 4


def test_sharded_and_resumed_jobs_write_the_same_samples_as_one_run(cgan_run: Path, tmp_path: Path) -> None:
    # batch size 1: each sample is drawn alone, so the batch make-up cannot change its bytes
    single = tmp_path / "single"
    run_generate(cgan_run, single, 5, seed=3, batch_size=1, progress=False)
    sharded = tmp_path / "sharded"
    for shard in ("0/2", "1/2"):
        assert run_generate(cgan_run, sharded, 5, seed=3, shard=shard, batch_size=1, progress=False).exit_code == 0
    resumed = tmp_path / "resumed"
    run_generate(cgan_run, resumed, 2, seed=3, batch_size=1, progress=False)  # a job stopped after two samples
    again = run_generate(cgan_run, resumed, 5, seed=3, batch_size=1, progress=False)
    assert (again.n_skipped, again.n_done) == (2, 3)
    names = [folder.name for folder in sample_dirs(single)]
    for other in (sharded, resumed):
        assert [folder.name for folder in sample_dirs(other)] == names
        for name in names:
            assert (single / name / "ct.nii.gz").read_bytes() == (other / name / "ct.nii.gz").read_bytes()
    assert len(json.loads((sharded / "datalist.json").read_text())["training"]) == 5


def test_another_batch_size_gives_the_same_samples_within_float_tolerance(cgan_run: Path, tmp_path: Path) -> None:
    one, four = tmp_path / "b1", tmp_path / "b4"
    run_generate(cgan_run, one, 4, seed=5, batch_size=1, progress=False)
    run_generate(cgan_run, four, 4, seed=5, batch_size=4, progress=False)
    for left, right in zip(sample_dirs(one), sample_dirs(four), strict=True):
        np.testing.assert_allclose(voxels(left / "ct.nii.gz"), voxels(right / "ct.nii.gz"), atol=0.05)


def test_dicom_samples_are_readable_with_geometry_and_carry_no_identity(cgan_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "dicom"
    assert run_generate(cgan_run, out, 1, label=1, output_format="dicom", progress=False).exit_code == 0
    series = sample_dirs(out)[0] / "ct"
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(series)))
    image = reader.Execute()
    assert image.GetSize() == (16, 16, 16)
    np.testing.assert_allclose(image.GetSpacing(), (2.0, 2.0, 2.0), atol=1e-4)
    first = pydicom.dcmread(sorted(series.glob("*.dcm"))[0])
    assert list(first.ImageType)[:2] == ["DERIVED", "SECONDARY"] and "synthetic" in first.SeriesDescription
    assert first.BurnedInAnnotation == "NO" and first.PatientIdentityRemoved == "YES" and first.DeidentificationMethod
    assert str(first.PatientName) == "SYNTHETIC^MEDGAN" and first.PatientID.startswith("MEDGAN-")  # no identity
    assert not any(element.tag.is_private for element in first)
    assert not (out / "montage.png").exists()  # a montage is only drawn from NIfTI samples


def test_labels_come_from_the_options_or_a_file(tmp_path: Path) -> None:
    assert item_labels(5, 3) == [0, 1, 2, 0, 1]
    assert item_labels(3, 2, label=1) == [1, 1, 1]
    listed = tmp_path / "labels.txt"
    listed.write_text("1\n0\n1\n")
    assert item_labels(None, 2, labels_from=listed) == [1, 0, 1]
    assert item_labels(2, 2, labels_from=listed) == [1, 0]
    with pytest.raises(ConfigError, match="outside 0..1"):
        item_labels(2, 2, label=4)
    with pytest.raises(InputError, match="lists 3 labels but --n is 5"):
        item_labels(5, 2, labels_from=listed)
    listed.write_text("one\n")
    with pytest.raises(InputError, match="not a list of integers"):
        item_labels(None, 2, labels_from=listed)


def test_noise_is_fixed_by_the_item_seed_and_truncation_bounds_it() -> None:
    assert np.array_equal(item_noise(11, 64).numpy(), item_noise(11, 64).numpy())
    assert not np.array_equal(item_noise(11, 64).numpy(), item_noise(12, 64).numpy())
    assert float(item_noise(11, 4096, truncation=0.5).abs().max()) <= 0.5


@pytest.mark.parametrize(("modality", "units"), [("ct", "HU"), ("mri", "normalised 0-1000")])
def test_written_units_map_back_to_the_network_range(modality: str, units: str) -> None:
    import torch

    volume_net = torch.linspace(-1, 1, 60).reshape(3, 4, 5)
    voxels, written_units = to_physical(volume_net, modality)
    assert written_units == units
    np.testing.assert_allclose(from_physical(voxels, modality).numpy(), volume_net.numpy(), atol=1e-5)


def test_a_translation_run_is_refused(tmp_path: Path, tiny_datalist: Path) -> None:
    config = tiny_method_config(tiny_datalist, "bulk_density", steps=2, sample_every=0, validate_every=0)
    config_path = tmp_path / "bulk.yaml"
    config_path.write_text(yaml.safe_dump(config))
    run = run_training(config_path, run_dir=tmp_path / "bulk_run", quiet=True)
    with pytest.raises(ConfigError, match="needs a method that can sample"):
        run_generate(run, tmp_path / "out", 2, progress=False)


def test_cli_generates_and_reports(cgan_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        cli_main(["generate", "--run", str(cgan_run), "--n", "2", "--out", str(tmp_path / "cli"), "--quiet"])
    assert stop.value.code == 0
    assert "2 written" in capsys.readouterr().out
    with pytest.raises(SystemExit) as stop:
        cli_main(["generate", "--run", str(cgan_run), "--n", "2", "--label", "9", "--out", str(tmp_path / "x")])
    assert stop.value.code == 1
    assert "outside 0..1" in capsys.readouterr().err
