"""DICOM series reading: geometry, sorting, rescale, and every bad-input case, on series built in code."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from dicom_factory import make_series, write_slice

from medgan.errors import DicomSeriesError, InputError
from medgan.io import ReadOptions, read_volume, read_warnings_of

PYDICOM_FILES = Path(pydicom.data.__file__).parent / "test_files"
OBLIQUE = (0.8660254038, 0.5, 0.0, -0.5, 0.8660254038, 0.0)


def test_series_voxels_and_affine_match_the_headers(tmp_path: Path) -> None:
    _, expected = make_series(tmp_path, n_slices=4, rows=6, columns=5, slice_spacing=2.0,
                              pixel_spacing=(0.8, 0.6), origin=(-10.0, 20.0, 5.0))
    volume = read_volume(tmp_path)
    assert volume.shape == (1, 5, 6, 4) and volume.dtype.is_floating_point
    np.testing.assert_allclose(volume[0].numpy(), expected)
    # RAS = LPS with x, y negated; i runs along columns (spacing 0.6), j along rows (0.8).
    np.testing.assert_allclose(volume.affine.numpy(), [[-0.6, 0, 0, 10.0], [0, -0.8, 0, -20.0],
                                                       [0, 0, 2.0, 5.0], [0, 0, 0, 1]], atol=1e-6)
    assert volume.meta["modality"] == "CT" and volume.meta["source_format"] == "dicom"
    assert volume.meta["dicom_geometry"]["patient_position"] == "HFS"
    assert read_warnings_of(volume) == []


def test_oblique_series_matches_simpleitk_geometry_and_voxels(tmp_path: Path) -> None:
    _, expected = make_series(tmp_path, orientation=OBLIQUE, pixel_spacing=(0.7, 1.1), slice_spacing=1.5)
    volume = read_volume(tmp_path)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(tmp_path)))
    image = reader.Execute()
    affine_lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ volume.affine.numpy()
    direction = np.asarray(image.GetDirection()).reshape(3, 3)
    np.testing.assert_allclose(affine_lps[:3, 3], image.GetOrigin(), atol=1e-4)
    np.testing.assert_allclose(affine_lps[:3, :3], direction * np.asarray(image.GetSpacing()), atol=1e-4)
    np.testing.assert_allclose(volume[0].numpy(), sitk.GetArrayFromImage(image).transpose(2, 1, 0))
    np.testing.assert_allclose(volume[0].numpy(), expected)


def test_sorting_uses_position_along_normal_not_file_order(tmp_path: Path) -> None:
    # Descending z in file order and a flipped normal: the reader must still sort along the normal.
    flipped = (1.0, 0.0, 0.0, 0.0, -1.0, 0.0)  # normal = -z
    _, expected = make_series(tmp_path, orientation=flipped, n_slices=5)
    volume = read_volume(tmp_path)
    np.testing.assert_allclose(volume[0].numpy(), expected)
    assert volume.affine[2, 2] == pytest.approx(-2.0)


def test_rescale_is_applied_per_slice_in_float(tmp_path: Path) -> None:
    uid = pydicom.uid.generate_uid()
    stored = np.full((3, 3), 100, dtype=np.int16)
    for k, (slope, intercept) in enumerate([(1.0, -1024.0), (0.5, -1000.0), (2.5, 0.25)]):
        write_slice(tmp_path / f"s{k}.dcm", stored, position=(0, 0, k), series_uid=uid, slope=slope,
                    intercept=intercept)
    volume = read_volume(tmp_path)
    assert volume[0, 0, 0].tolist() == pytest.approx([-924.0, -950.0, 250.25])


def test_missing_slice_is_reported_with_positions_and_spacing(tmp_path: Path) -> None:
    make_series(tmp_path, locations=[0.0, 2.0, 4.0, 8.0, 10.0])
    with pytest.raises(DicomSeriesError) as caught:
        read_volume(tmp_path)
    message = str(caught.value)
    # origin z is 5 mm, so the slices sit at 5, 7, 9, 13, 15 mm along the normal.
    assert "9.00 mm" in message and "13.00 mm" in message and "2.00 mm is expected" in message
    assert "about 1 missing slice" in message and str(tmp_path) in message


def test_gap_can_be_interpolated_when_allowed(tmp_path: Path) -> None:
    _, expected = make_series(tmp_path, locations=[0.0, 2.0, 6.0, 8.0])
    volume = read_volume(tmp_path, options=ReadOptions(allow_nonuniform_spacing=True))
    assert volume.shape[-1] == 5
    np.testing.assert_allclose(volume[0, ..., 2].numpy(), (expected[..., 1] + expected[..., 2]) / 2, rtol=1e-6)
    np.testing.assert_allclose(volume[0, ..., 4].numpy(), expected[..., 3])
    assert "interpolated" in volume.meta["read_warnings"]


def test_duplicate_sop_instance_is_dropped_with_warning(tmp_path: Path, caplog) -> None:
    _, expected = make_series(tmp_path, n_slices=3)
    shutil.copy(tmp_path / "img001.dcm", tmp_path / "img001_copy.dcm")
    with caplog.at_level(logging.WARNING, logger="medgan.io"):
        volume = read_volume(tmp_path)
    np.testing.assert_allclose(volume[0].numpy(), expected)
    assert any("img001_copy.dcm" in w and "SOPInstanceUID" in w for w in read_warnings_of(volume))
    assert "img001_copy.dcm" in caplog.text


def test_same_position_same_pixels_is_dropped_but_different_pixels_is_an_error(tmp_path: Path) -> None:
    uid = pydicom.uid.generate_uid()
    pixels = np.arange(9, dtype=np.int16).reshape(3, 3)
    for k in range(3):
        write_slice(tmp_path / f"s{k}.dcm", pixels + k, position=(0, 0, 2 * k), series_uid=uid)
    write_slice(tmp_path / "s1_again.dcm", pixels + 1, position=(0, 0, 2), series_uid=uid)
    volume = read_volume(tmp_path)
    assert volume.shape == (1, 3, 3, 3)
    assert any("s1_again.dcm" in w for w in read_warnings_of(volume))
    write_slice(tmp_path / "s1_echo2.dcm", pixels + 50, position=(0, 0, 2), series_uid=uid)
    with pytest.raises(DicomSeriesError, match="same position .* different pixels"):
        read_volume(tmp_path)


def test_several_series_error_lists_them_and_series_uid_selects(tmp_path: Path) -> None:
    uid_a, expected_a = make_series(tmp_path, name_prefix="a", series_description="T1 axial")
    uid_b, _ = make_series(tmp_path, name_prefix="b", n_slices=3, seed=1, series_description="CT bone")
    with pytest.raises(DicomSeriesError) as caught:
        read_volume(tmp_path)
    message = str(caught.value)
    assert uid_a in message and uid_b in message and "T1 axial" in message and "CT bone" in message
    assert "4 file(s)" in message and "3 file(s)" in message and "series_uid" in message
    np.testing.assert_allclose(read_volume(tmp_path, series_uid=uid_a)[0].numpy(), expected_a)
    with pytest.raises(DicomSeriesError, match="not in this folder"):
        read_volume(tmp_path, series_uid="1.2.3.999")


def test_localizer_in_series_is_dropped_with_warning(tmp_path: Path) -> None:
    uid, expected = make_series(tmp_path, n_slices=4)
    write_slice(tmp_path / "scout.dcm", np.zeros((8, 8), np.int16), position=(0, -50, 0), series_uid=uid,
                orientation=(1, 0, 0, 0, 0, -1), image_type=("ORIGINAL", "PRIMARY", "LOCALIZER"))
    volume = read_volume(tmp_path)
    np.testing.assert_allclose(volume[0].numpy(), expected)
    assert any("scout.dcm" in w and "localizer" in w for w in read_warnings_of(volume))


def test_gantry_tilt_is_an_error_unless_resampling_is_allowed(tmp_path: Path) -> None:
    # 1 mm drift along y per 2 mm slice: about a 26.6 degree tilt.
    _, expected = make_series(tmp_path, n_slices=3, rows=8, columns=4, pixel_spacing=(1.0, 1.0),
                              tilt_shift_per_slice=(0.0, 1.0, 0.0))
    with pytest.raises(DicomSeriesError, match=r"gantry tilt of about 26\.\d+ degrees") as caught:
        read_volume(tmp_path)
    assert "allow_gantry_tilt=True" in str(caught.value)
    volume = read_volume(tmp_path, options=ReadOptions(allow_gantry_tilt=True))
    # Slice k was drawn k mm further along +y (= +row index j); on the orthogonal grid of slice 0,
    # grid row j of slice k holds the stored row j - k.
    np.testing.assert_allclose(volume[0, :, 2:, 2].numpy(), expected[:, :-2, 2])
    np.testing.assert_allclose(volume[0, :, :, 0].numpy(), expected[:, :, 0])
    assert volume.affine[1, 2] == pytest.approx(0.0) and volume.affine[2, 2] == pytest.approx(2.0)


def test_compressed_pixels_without_decoder_name_the_plugin(tmp_path: Path) -> None:
    source = PYDICOM_FILES / "MR_small_jpeg_ls_lossless.dcm"
    with pytest.raises(InputError) as caught:
        read_volume(source, options=ReadOptions(min_slices=1))
    message = str(caught.value)
    assert "JPEG-LS" in message and "pyjpegls" in message and "python-gdcm" in message
    assert "MR_small_jpeg_ls_lossless.dcm" in message


def test_truncated_pixel_data_is_an_error_with_sizes(tmp_path: Path) -> None:
    uid = pydicom.uid.generate_uid()
    pixels = np.ones((4, 4), np.int16)
    write_slice(tmp_path / "a.dcm", pixels, position=(0, 0, 0), series_uid=uid)
    write_slice(tmp_path / "b.dcm", pixels, position=(0, 0, 1), series_uid=uid, drop_pixel_bytes=6)
    with pytest.raises(InputError, match=r"pixel data is truncated: 26 bytes .* needs 32") as caught:
        read_volume(tmp_path)
    assert "b.dcm" in str(caught.value)
    with pytest.raises(InputError, match="truncated"):
        read_volume(PYDICOM_FILES / "MR_truncated.dcm", options=ReadOptions(min_slices=1))


def test_non_dicom_files_are_ignored_but_a_folder_without_dicom_is_an_error(tmp_path: Path, caplog) -> None:
    _, expected = make_series(tmp_path / "series")
    (tmp_path / "series" / "README").write_text("scanner export notes")
    (tmp_path / "series" / "DICOMDIR").write_bytes(b"\0" * 200)
    with caplog.at_level(logging.INFO, logger="medgan.io"):
        np.testing.assert_allclose(read_volume(tmp_path / "series")[0].numpy(), expected)
    assert "README" in caplog.text
    empty = tmp_path / "notes"
    empty.mkdir()
    (empty / "README").write_text("nothing here")
    with pytest.raises(InputError, match="no DICOM image files"):
        read_volume(empty)


def test_single_file_is_2d_unless_allowed(tmp_path: Path) -> None:
    ct_small = pydicom.data.get_testdata_file("CT_small.dcm")
    with pytest.raises(InputError, match=r"shape \(128, 128, 1\)"):
        read_volume(ct_small)
    volume = read_volume(ct_small, options=ReadOptions(min_slices=1))
    assert volume.shape == (1, 128, 128, 1) and volume.meta["modality"] == "CT"
    # Soft tissue and air in HU: the rescale (intercept -1024) was applied.
    assert -1100 < float(volume.min()) < -800 and 1000 < float(volume.max()) < 3000
    assert volume.affine[0, 0] == pytest.approx(-0.661468) and volume.affine[2, 3] == pytest.approx(-75.7)


def test_mr_small_reads_without_rescale() -> None:
    mr_small = pydicom.data.get_testdata_file("MR_small.dcm")
    volume = read_volume(mr_small, options=ReadOptions(min_slices=1))
    raw = pydicom.dcmread(mr_small).pixel_array
    np.testing.assert_array_equal(volume[0, :, :, 0].numpy(), raw.T)
    assert volume.meta["modality"] == "MR"


def test_pydicom_ct2_series_reports_its_real_gap() -> None:
    folder = PYDICOM_FILES / "dicomdirtests" / "77654033" / "CT2"
    with pytest.raises(DicomSeriesError, match=r"-99\.48 mm .* 103\.02 mm .* 1\.25 mm is expected"):
        read_volume(folder)
    volume = read_volume(folder, options=ReadOptions(allow_nonuniform_spacing=True))
    assert volume.shape == (1, 16, 16, 165)
    assert volume.affine[2, 2] == pytest.approx(1.25) and volume.affine[2, 3] == pytest.approx(-99.48)


def test_memory_budget_is_checked_before_pixels(tmp_path: Path) -> None:
    make_series(tmp_path, n_slices=4, rows=6, columns=5)
    with pytest.raises(InputError, match="memory budget") as caught:
        read_volume(tmp_path, options=ReadOptions(max_bytes=100))
    assert "max_bytes" in str(caught.value)
