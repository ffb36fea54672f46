"""evaluate-translation: pairing outputs with references through the manifest, and its errors."""

import json

import numpy as np
import pytest

from medgan.errors import InputError
from medgan.io import write_nifti
from medgan.jobs.manifest import ManifestRecord, ManifestWriter
from pipelines.evaluate_translation import evaluate_translation


def _record(input_path, output_name):
    return ManifestRecord(
        key=str(input_path),
        status="done",
        input=str(input_path),
        output=output_name,
        input_sha256=None,
        output_sha256=None,
        checkpoint_sha256=None,
        config_sha256=None,
        error=None,
        seconds=0.0,
        finished_at=1.0,
        shard="0/1",
    )


def _head_ct(seed):
    rng = np.random.default_rng(seed)
    grid = np.indices((16, 16, 16)).astype(np.float32) - 7.5
    radius = np.sqrt((grid**2).sum(0))
    ct_hu = np.where(radius < 7, 40.0, -1000.0) + np.where((radius > 5.5) & (radius < 7), 900.0, 0.0)
    return (ct_hu + rng.normal(0, 5, ct_hu.shape)).astype(np.float32)


@pytest.fixture
def job(tmp_path):
    data, out = tmp_path / "data", tmp_path / "pct"
    entries, writer = [], None
    out.mkdir()
    writer = ManifestWriter(out / "manifest.jsonl")
    for index in range(2):
        ct_hu = _head_ct(index)
        write_nifti(ct_hu, data / f"s{index}" / "ct.nii.gz", affine=np.eye(4))
        write_nifti(ct_hu / 10, data / f"s{index}" / "mri.nii.gz", affine=np.eye(4))
        write_nifti(ct_hu + 50.0 * (index + 1), out / f"s{index}.nii.gz", affine=np.eye(4))
        writer.append(_record((data / f"s{index}" / "mri.nii.gz").resolve(), f"s{index}.nii.gz"))
        entries.append({"subject": f"s{index}", "mri": f"s{index}/mri.nii.gz", "ct": f"s{index}/ct.nii.gz"})
    writer.close()
    (data / "datalist.json").write_text(json.dumps({"training": [], "test": entries}))
    return out, data / "datalist.json"


def test_scores_each_subject_with_known_offsets(job):
    out, datalist = job
    report = evaluate_translation(out, datalist)
    assert [row["subject"] for row in report.per_subject] == ["s0", "s1"]
    assert report.per_subject[0]["mae_hu"] == pytest.approx(50.0, abs=1e-3)
    assert report.per_subject[1]["mae_hu"] == pytest.approx(100.0, abs=1e-3)
    assert report.summary["mae_hu"]["mean"] == pytest.approx(75.0, abs=1e-3)
    saved = json.loads(report.report_path.read_text())
    assert saved["split"] == "test"
    # the offset is everywhere, so the background outside the body (CT > -500 HU) is off by it too
    assert report.per_subject[0]["mae_hu_outside_body"] == pytest.approx(50.0, abs=1e-3)
    assert saved["headline"]["mae_hu_outside_body"]["mean"] == pytest.approx(75.0, abs=1e-3)
    assert "outside the body mask" in saved["metric_notes"]["mae_hu_outside_body"]
    assert "mae_hu_outside_body" in report.headline()  # (these heads have no in-body air: mae_hu_air is NaN)
    assert report.montage_path.is_file()


def test_missing_translation_is_named(job):
    out, datalist = job
    content = json.loads(datalist.read_text())
    content["test"].append({"subject": "s9", "mri": "s0/mri.nii.gz", "ct": "s0/ct.nii.gz"})
    content["test"][-1]["mri"] = "s0/ct.nii.gz"
    datalist.write_text(json.dumps(content))
    with pytest.raises(InputError, match="1 of 3 'test' inputs have no finished translation"):
        evaluate_translation(out, datalist)
