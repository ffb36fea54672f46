"""The enrich job: exact copies outside the lesion band, masks where lesions belong, a datalist MONAI reads,
single == sharded == resumed, and bad cases named."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from monai.data import load_decathlon_datalist
from scipy import ndimage

from medgan.config.enrich import EnrichConfig
from medgan.data.datalist import load_datalist
from medgan.errors import InputError
from medgan.jobs.manifest import merge_manifests
from pipelines.enrich import run_enrich

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data"
DATALIST = SAMPLE / "datalist.json"


def config(out: Path, **changes: object) -> EnrichConfig:
    """Lesions into the 2 healthy validation heads, fitted on the 8 lesion heads of the training list."""
    base = {"datalist": DATALIST, "split": "validation", "fit_split": "training", "out": out}
    return EnrichConfig(**{**base, **changes})


def read(path: Path) -> np.ndarray:
    return np.asarray(nib.load(path).dataobj)


@pytest.fixture(scope="module")
def enriched(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("enriched")
    summary = run_enrich(config(out, cases_per_source=2), progress=False)
    assert summary.n_done == 4 and summary.n_failed == 0
    return out


def test_only_the_lesion_band_changes_and_masks_sit_in_the_fitted_host_tissues(enriched: Path) -> None:
    shape_model = json.loads((enriched / "models" / "lesion_shape_model.json").read_text())
    hosts = {int(k) for k, share in shape_model["host_labels"].items() if share >= 0.05 and k != "0"}
    for case_dir in sorted(enriched.glob("subject_*_syn*")):
        sidecar = json.loads((case_dir / "case.json").read_text())
        source = SAMPLE / sidecar["source_subject"]
        mask = read(case_dir / "lesion_mask.nii.gz") > 0
        assert mask.any() and sidecar["label"] == 1 and sidecar["synthetic"]
        band = ndimage.binary_dilation(mask, structure=ndimage.generate_binary_structure(3, 1), iterations=3)
        for key in ("mri", "ct"):
            new, old = read(case_dir / f"{key}.nii.gz"), read(source / f"{key}.nii.gz").astype(np.float32)
            assert np.array_equal(new[~band], old[~band]), key  # exact copies outside the band
            assert not np.array_equal(new[mask], old[mask])
            assert np.allclose(nib.load(case_dir / f"{key}.nii.gz").affine, nib.load(source / f"{key}.nii.gz").affine)
        tissues = read(source / "labels.nii.gz")
        assert set(np.unique(tissues[mask]).tolist()) <= hosts
        assert sidecar["lesions"][0]["volume_ml"] == pytest.approx(mask.sum() * 0.125)
    report = json.loads((enriched / "models" / "fit_report.json").read_text())
    assert report["fitted_cases"] == 8 and report["sampled"]["lesions"] == 4


def test_datalist_keeps_the_sources_and_adds_flagged_cases_both_loaders_read(enriched: Path) -> None:
    datalist = enriched / "datalist.json"
    validation = load_datalist(datalist, "validation", require_keys=("mri", "ct", "label"))
    synthetic = [e for e in validation if e.get("synthetic")]
    assert len(validation) == 4 + 4 and len(synthetic) == 4
    assert {e["source_subject"] for e in synthetic} == {"subject_010", "subject_014"}
    assert all(e["label"] == 1 and Path(e["lesion_mask"]).is_file() for e in synthetic)
    for entry in synthetic:  # the case's lesion type, for a downstream study that tells types apart
        sidecar = json.loads((enriched / entry["subject"] / "case.json").read_text())
        assert entry["lesion_type"] == sidecar["lesions"][0]["lesion_type"]
    assert len(load_datalist(datalist, "training")) == 16  # the other lists unchanged
    monai_entries = load_decathlon_datalist(str(datalist), data_list_key="validation", base_dir=str(enriched))
    assert all(Path(entry["ct"]).is_file() for entry in monai_entries)


def test_sharded_and_resumed_jobs_write_the_same_cases_as_one_run(enriched: Path, tmp_path: Path) -> None:
    sharded = tmp_path / "sharded"
    for shard in ("1/2", "0/2"):
        run_enrich(config(sharded, cases_per_source=2), shard=shard, progress=False)
    again = run_enrich(config(sharded, cases_per_source=2), progress=False)  # resumed: nothing left to do
    assert again.n_done == 0 and again.n_skipped == 4
    for case_dir in sorted(enriched.glob("subject_*_syn*")):
        for name in ("mri.nii.gz", "ct.nii.gz", "lesion_mask.nii.gz"):
            assert (case_dir / name).read_bytes() == (sharded / case_dir.name / name).read_bytes()
    assert len(load_datalist(sharded / "datalist.json", "validation")) == 8


def test_bad_cases_are_named_and_recorded(tmp_path: Path) -> None:
    content = json.loads(DATALIST.read_text())
    for split in ("training", "validation"):
        for entry in content[split]:
            for key in ("mri", "ct", "labels", "lesion_mask"):
                if key in entry:
                    entry[key] = str(SAMPLE / entry[key])
    healthy = next(e for e in content["validation"] if e["label"] == 0)
    healthy["lesion_mask"] = content["training"][[e["label"] for e in content["training"]].index(1)]["lesion_mask"]
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(content))
    summary = run_enrich(config(tmp_path / "out", datalist=broken), progress=False)
    assert summary.n_failed == 1 and summary.n_done == 1
    record = merge_manifests(tmp_path / "out")[f"{healthy['subject']}_syn00"]
    assert "labelled healthy" in record.error and healthy["subject"] in record.error
    impossible = run_enrich(config(tmp_path / "big", volume_range_ml=(5000.0, 6000.0)), progress=False)
    assert impossible.n_failed == 2
    assert "could not place" in merge_manifests(tmp_path / "big")["subject_010_syn00"].error
    unknown = run_enrich(config(tmp_path / "unknown", allowed_labels=[99]), progress=False)
    assert unknown.n_failed == 2
    assert "none of the allowed tissue labels" in merge_manifests(tmp_path / "unknown")["subject_010_syn00"].error
    small = np.zeros((8, 8, 8), dtype=np.uint8)
    small[2:4, 2:4, 2:4] = 1
    nib.save(nib.Nifti1Image(small, np.eye(4)), tmp_path / "small_mask.nii.gz")
    lesion_index = [e["label"] for e in content["training"]].index(1)
    content["training"][lesion_index]["lesion_mask"] = str(tmp_path / "small_mask.nii.gz")
    broken.write_text(json.dumps(content))
    with pytest.raises(InputError, match="lesion mask has shape|on the image grid") as caught:
        run_enrich(config(tmp_path / "grid", datalist=broken), progress=False)
    assert "small_mask" in str(caught.value)


def test_dicom_cases_keep_the_source_geometry_and_carry_no_identity(tmp_path: Path) -> None:
    import pydicom
    import SimpleITK as sitk

    out = tmp_path / "dicom"
    assert run_enrich(config(out, images={"ct": "ct"}, output_format="dicom"), progress=False).exit_code == 0
    case_dir = out / "subject_010_syn00"
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(case_dir / "ct")))
    image = reader.Execute()
    source = sitk.ReadImage(str(SAMPLE / "subject_010" / "ct.nii.gz"))
    assert image.GetSize() == source.GetSize()
    np.testing.assert_allclose(image.GetSpacing(), source.GetSpacing(), atol=1e-4)
    np.testing.assert_allclose(image.GetOrigin(), source.GetOrigin(), atol=1e-3)
    first = pydicom.dcmread(sorted((case_dir / "ct").glob("*.dcm"))[0])
    assert list(first.ImageType)[:2] == ["DERIVED", "SECONDARY"] and "synthetic" in first.SeriesDescription
    assert str(first.PatientName) == "SYNTHETIC^MEDGAN" and not any(element.tag.is_private for element in first)
    entry = next(e for e in load_datalist(out / "datalist.json", "validation") if e.get("synthetic"))
    assert Path(entry["ct"]).is_dir() and Path(entry["lesion_mask"]).is_file()


def test_the_gan_painter_inpaints_with_a_trained_run_and_keeps_everything_beyond_the_band(tmp_path: Path) -> None:
    import yaml
    from tiny_data import tiny_method_config, write_tiny_dataset

    from pipelines.train import run_training

    datalist = write_tiny_dataset(tmp_path / "data", subjects=5)
    run_config = tiny_method_config(datalist, "lesion", steps=4, sample_every=0, validate_every=0, checkpoint_every=4)
    run_config["data"]["validation_volumes"] = 0
    (tmp_path / "lesion.yaml").write_text(yaml.safe_dump(run_config))
    run = run_training(tmp_path / "lesion.yaml", run_dir=tmp_path / "run", quiet=True)
    settings = EnrichConfig(
        datalist=datalist, split="training", method="lesion", run=run, lesion_type_key=None, out=tmp_path / "out"
    )
    summary = run_enrich(settings, progress=False)
    assert summary.n_done == 2 and summary.n_failed == 0  # the healthy training subjects 0 and 2
    case_dir = tmp_path / "out" / "subject_000_syn00"
    sidecar = json.loads((case_dir / "case.json").read_text())
    assert sidecar["method"] == "lesion" and sidecar["run"] == str(run)
    mask = read(case_dir / "lesion_mask.nii.gz") > 0
    band = ndimage.binary_dilation(mask, structure=np.ones((3, 3, 3), bool), iterations=3)
    for key in ("mri", "ct"):
        new = read(case_dir / f"{key}.nii.gz")
        old = read(tmp_path / "data" / "subject_000" / f"{key}.nii.gz").astype(np.float32)
        assert np.array_equal(new[~band], old[~band]) and not np.array_equal(new[mask], old[mask])
    wrong = EnrichConfig(
        **{**settings.model_dump(), "images": {"ct": "ct"}, "out": tmp_path / "wrong"}
    )  # a key missing
    with pytest.raises(Exception, match="the run inpaints images"):
        run_enrich(wrong, progress=False)
