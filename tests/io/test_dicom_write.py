"""DICOM series writing: exact round trips (hypothesis), SimpleITK agreement, de-identification, atomicity."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from dicom_factory import make_series
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from medgan.errors import InputError, OutputPathError
from medgan.io import read_volume, write_dicom_series, write_nifti
from medgan.io.intensity import quantize_for_dicom

LPS = np.diag([-1.0, -1.0, 1.0])


def _affine(rotation: np.ndarray, spacing, origin) -> np.ndarray:
    affine = np.eye(4)
    affine[:3, :3] = rotation @ np.diag(spacing)
    affine[:3, 3] = origin
    return affine


geometries = st.fixed_dictionaries({
    "shape": st.tuples(st.integers(2, 5), st.integers(2, 5), st.integers(2, 4)),
    "euler": st.tuples(*[st.floats(-180, 180) for _ in range(3)]),
    "spacing": st.tuples(*[st.floats(0.3, 4.0) for _ in range(3)]),
    "origin": st.tuples(*[st.floats(-300, 300) for _ in range(3)]),
    "left_handed": st.booleans(),
    "integral": st.booleans(),
    "seed": st.integers(0, 2**16),
})


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(geometry=geometries, modality=st.sampled_from(["CT", "MR"]))
def test_nifti_to_dicom_to_read_round_trip_is_exact(tmp_path_factory, geometry, modality) -> None:
    work = tmp_path_factory.mktemp("roundtrip")
    rotation = Rotation.from_euler("xyz", geometry["euler"], degrees=True).as_matrix()
    if geometry["left_handed"]:
        rotation = rotation @ np.diag([1.0, 1.0, -1.0])
    affine = _affine(rotation, geometry["spacing"], geometry["origin"])
    rng = np.random.default_rng(geometry["seed"])
    low = -1024 if modality == "CT" else 0
    values = rng.uniform(low, low + 3000, size=geometry["shape"])
    values = np.round(values) if geometry["integral"] else values.astype(np.float32).astype(np.float64)
    nifti = write_nifti(values, work / "source.nii.gz", affine=affine)
    source = read_volume(nifti)
    out = write_dicom_series(source, work / "series", modality=modality)
    back = read_volume(out)

    expected_values, expected_affine = values, affine
    if geometry["left_handed"]:  # written with k reversed so the slice axis follows the DICOM normal
        expected_values = values[:, :, ::-1]
        expected_affine = affine @ np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, -1, values.shape[2] - 1],
                                             [0, 0, 0, 1]], dtype=float)
    precision = quantize_for_dicom(values, modality).precision
    if geometry["integral"]:
        assert precision == 0.0
    np.testing.assert_allclose(back[0].numpy(), expected_values, atol=precision + 1e-3 * (precision > 0), rtol=0)
    np.testing.assert_allclose(back.affine.numpy(), expected_affine, atol=1e-5)
    assert back.meta["modality"] == modality

    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(out)))
    image = reader.Execute()
    expected_lps = LPS @ expected_affine[:3, :3]
    direction = np.asarray(image.GetDirection()).reshape(3, 3)
    np.testing.assert_allclose(direction * np.asarray(image.GetSpacing()), expected_lps, atol=1e-4)
    np.testing.assert_allclose(image.GetOrigin(), LPS @ expected_affine[:3, 3], atol=1e-4)


def test_written_headers_are_deidentified_by_construction(tmp_path: Path) -> None:
    make_series(tmp_path / "source", n_slices=3)
    source = read_volume(tmp_path / "source")
    source_header = pydicom.dcmread(next((tmp_path / "source").iterdir()))
    out = write_dicom_series(source, tmp_path / "out", modality="CT", reference=source)
    files = sorted(out.iterdir())
    assert [f.name for f in files] == ["slice_0000.dcm", "slice_0001.dcm", "slice_0002.dcm"]
    headers = [pydicom.dcmread(f) for f in files]
    first = headers[0]
    assert first.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    assert first.SOPClassUID == pydicom.uid.CTImageStorage
    assert str(first.PatientName) == "SYNTHETIC^MEDGAN" and first.PatientID.startswith("MEDGAN-")
    assert first.PatientIdentityRemoved == "YES" and first.DeidentificationMethod
    assert list(first.ImageType)[:2] == ["DERIVED", "SECONDARY"] and first.BurnedInAnnotation == "NO"
    assert first.PatientPosition == "HFS"  # the one allow-listed value taken from the reference
    assert not any(element.tag.is_private for header in headers for element in header)
    source_uids = {source_header.StudyInstanceUID, source_header.SeriesInstanceUID, source_header.SOPInstanceUID}
    written_uids = {first.StudyInstanceUID, first.SeriesInstanceUID, first.FrameOfReferenceUID}
    assert not source_uids & written_uids
    assert len({h.SOPInstanceUID for h in headers}) == 3
    written_text = b"".join(f.read_bytes() for f in files)
    assert b"Doe" not in written_text and b"REAL-PATIENT-123" not in written_text


def test_uid_seed_makes_output_reproducible(tmp_path: Path) -> None:
    volume = np.zeros((3, 3, 2))
    a = write_dicom_series(volume, tmp_path / "a", affine=np.eye(4), uid_seed="subject-7")
    b = write_dicom_series(volume, tmp_path / "b", affine=np.eye(4), uid_seed="subject-7")
    assert [f.read_bytes() for f in sorted(a.iterdir())] == [f.read_bytes() for f in sorted(b.iterdir())]


def test_reference_supplies_the_affine_for_a_plain_array(tmp_path: Path) -> None:
    make_series(tmp_path / "mri", modality="MR", intercept=0.0)
    mri = read_volume(tmp_path / "mri")
    pseudo_ct = np.full(mri.shape[1:], 40.5)
    out = write_dicom_series(pseudo_ct, tmp_path / "ct", modality="CT", reference=tmp_path / "mri")
    ct = read_volume(out)
    np.testing.assert_allclose(ct.affine.numpy(), mri.affine.numpy(), atol=1e-6)
    np.testing.assert_allclose(ct[0].numpy(), pseudo_ct, atol=1e-6)
    with pytest.raises(InputError, match="differs from the reference"):
        write_dicom_series(np.zeros((2, 2, 2)), tmp_path / "bad", reference=mri)


def test_existing_output_needs_overwrite_and_no_staging_is_left(tmp_path: Path) -> None:
    volume = np.arange(8.0).reshape(2, 2, 2)
    write_dicom_series(volume, tmp_path / "s", affine=np.eye(4))
    with pytest.raises(OutputPathError, match="overwrite=True"):
        write_dicom_series(volume, tmp_path / "s", affine=np.eye(4))
    write_dicom_series(volume + 1, tmp_path / "s", affine=np.eye(4), overwrite=True)
    np.testing.assert_allclose(read_volume(tmp_path / "s")[0].numpy(), volume + 1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s"]


def test_geometry_dicom_cannot_hold_is_refused(tmp_path: Path) -> None:
    sheared = np.eye(4)
    sheared[0, 2] = 0.5  # slice axis leans over: not along the normal
    with pytest.raises(InputError, match="degrees off the slice normal"):
        write_dicom_series(np.zeros((2, 2, 2)), tmp_path / "s", affine=sheared)
    with pytest.raises(InputError, match="NaN/Inf"):
        write_dicom_series(np.full((2, 2, 2), np.nan), tmp_path / "s", affine=np.eye(4))
    with pytest.raises(InputError, match="modality"):
        write_dicom_series(np.zeros((2, 2, 2)), tmp_path / "s", affine=np.eye(4), modality="PT")
    assert not (tmp_path / "s").exists()
