"""validate_volume_file: the report behind `medgan info`, for clean, repaired and broken inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from dicom_factory import make_series

from medgan.io import validate_volume_file, write_nifti


def test_report_of_a_clean_dicom_series(tmp_path: Path) -> None:
    _, expected = make_series(tmp_path, n_slices=3, pixel_spacing=(0.8, 0.6), slice_spacing=2.0)
    report = validate_volume_file(tmp_path)
    assert report.ok and report.problems == [] and report.warnings == []
    assert report.source_format == "dicom" and report.modality == "CT"
    assert report.shape == (5, 6, 3) and report.orientation == "LPS"
    assert report.spacing == pytest.approx((0.6, 0.8, 2.0))
    assert report.origin == pytest.approx((10.0, -20.0, 5.0))
    assert report.intensity_min == pytest.approx(expected.min())
    assert report.intensity_max == pytest.approx(expected.max())
    assert report.intensity_mean == pytest.approx(expected.mean(), rel=1e-5)
    assert report.to_dict()["shape"] == (5, 6, 3)


def test_report_of_a_broken_file_holds_the_error_instead_of_raising(tmp_path: Path) -> None:
    values = np.zeros((2, 2, 2), np.float32)
    values[0, 0, 0] = np.nan
    path = write_nifti(values, tmp_path / "nan.nii.gz", affine=np.eye(4))
    report = validate_volume_file(path)
    assert not report.ok and len(report.problems) == 1
    assert "not finite" in report.problems[0] and "nan.nii.gz" in report.problems[0]
    missing = validate_volume_file(tmp_path / "nowhere")
    assert not missing.ok and "not found" in missing.problems[0]


def test_report_warns_about_implausible_ct_and_shows_2d_refusal(tmp_path: Path) -> None:
    # A wrong RescaleIntercept (+6000) puts the values at 6000..9000, which is not HU.
    make_series(tmp_path, n_slices=3, intercept=6000.0)
    report = validate_volume_file(tmp_path)
    assert report.ok and any("plausible HU" in w for w in report.warnings)
    ct_small = pydicom.data.get_testdata_file("CT_small.dcm")
    single = validate_volume_file(ct_small)
    assert not single.ok and "min_slices=1" in single.problems[0]
