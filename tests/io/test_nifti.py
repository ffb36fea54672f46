"""NIfTI reading and writing: header rules, shapes, damaged files, NaN policy, memory budget."""

from __future__ import annotations

import gzip
import logging
import struct
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from medgan.errors import InputError
from medgan.io import ReadOptions, read_volume, read_warnings_of, write_nifti

NIBABEL_DATA = Path(nib.__file__).parent / "tests" / "data"
SCL_SLOPE_OFFSET = 112  # byte offsets of scl_slope and scl_inter (float32) in a NIfTI-1 header
SCL_INTER_OFFSET = 116


def _oblique_affine() -> np.ndarray:
    angle = np.radians(20)
    affine = np.eye(4)
    affine[:3, :3] = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0],
                               [0, 0, 1]]) @ np.diag([0.5, 0.9, 2.0])
    affine[:3, 3] = [-30.0, 12.5, 7.0]
    return affine


def test_write_then_read_round_trip(tmp_path: Path) -> None:
    values = np.random.default_rng(0).normal(size=(4, 5, 3)).astype(np.float32)
    path = write_nifti(values, tmp_path / "v.nii.gz", affine=_oblique_affine())
    volume = read_volume(path)
    assert volume.shape == (1, 4, 5, 3) and volume.dtype.is_floating_point
    np.testing.assert_array_equal(volume[0].numpy(), values)
    np.testing.assert_allclose(volume.affine.numpy(), _oblique_affine(), atol=1e-6)
    assert volume.meta["source_format"] == "nifti" and volume.meta["modality"] == ""
    assert volume.meta["original_channel_dim"] == 0
    assert not list(tmp_path.glob(".*"))  # no temp file left by the atomic write


@pytest.mark.parametrize(("stored", "slope", "inter"), [(np.int16, 1.0, 0.0), (np.int16, 2.5, -1024.0),
                                                       (np.uint8, 1.0, 0.0), (np.float64, 1.0, 0.0)])
def test_read_gives_nibabels_float32_values_in_c_order(tmp_path: Path, stored, slope: float, inter: float) -> None:
    raw = np.random.default_rng(1).integers(0, 200, size=(6, 7, 5)).astype(stored)
    image = nib.Nifti1Image(raw, np.eye(4))
    image.header.set_slope_inter(slope, inter)
    nib.save(image, str(tmp_path / "v.nii.gz"))
    expected = np.asarray(nib.load(str(tmp_path / "v.nii.gz")).dataobj, dtype=np.float32)
    voxels = read_volume(tmp_path / "v.nii.gz")[0].numpy()
    assert voxels.dtype == np.float32 and voxels.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(voxels, expected)


def test_integer_writes_round_and_refuse_values_that_do_not_fit(tmp_path: Path) -> None:
    hu = np.array([[[-1000.4, -0.6], [2.5, 3071.49]]], dtype=np.float32)
    path = write_nifti(hu, tmp_path / "ct.nii.gz", affine=np.eye(4), dtype=np.int16)
    stored = np.asarray(nib.load(str(path)).dataobj)
    assert stored.dtype == np.int16
    np.testing.assert_array_equal(stored, [[[-1000, -1], [2, 3071]]])  # nearest, ties to even
    with pytest.raises(ValueError, match="outside int16"):
        write_nifti(hu * 20, tmp_path / "wraps.nii.gz", affine=np.eye(4), dtype=np.int16)
    assert not (tmp_path / "wraps.nii.gz").exists()


def test_nibabel_anatomical_and_4d_examples() -> None:
    anatomical = read_volume(NIBABEL_DATA / "anatomical.nii")
    image = nib.load(NIBABEL_DATA / "anatomical.nii")
    assert anatomical.shape == (1, *image.shape)
    np.testing.assert_allclose(anatomical.affine.numpy(), image.affine)
    np.testing.assert_allclose(anatomical[0].numpy(), image.get_fdata(), rtol=1e-6)
    with pytest.raises(InputError, match=r"shape \(128, 96, 24, 2\) is 4D") as caught:
        read_volume(NIBABEL_DATA / "example4d.nii.gz")
    assert "example4d.nii.gz" in str(caught.value) and "fix:" in str(caught.value)
    with pytest.raises(InputError, match=r"shape \(17, 21, 3, 20\)"):
        read_volume(NIBABEL_DATA / "functional.nii")


def test_4d_with_one_volume_is_squeezed_and_2d_needs_min_slices(tmp_path: Path) -> None:
    nib.save(nib.Nifti1Image(np.ones((3, 4, 2, 1), np.float32), np.eye(4)), tmp_path / "one.nii.gz")
    assert read_volume(tmp_path / "one.nii.gz").shape == (1, 3, 4, 2)
    nib.save(nib.Nifti1Image(np.ones((3, 4), np.float32), np.eye(4)), tmp_path / "flat.nii.gz")
    with pytest.raises(InputError, match=r"shape \(3, 4, 1\) has 1 slice") as caught:
        read_volume(tmp_path / "flat.nii.gz")
    assert "min_slices=1" in str(caught.value)
    assert read_volume(tmp_path / "flat.nii.gz", options=ReadOptions(min_slices=1)).shape == (1, 3, 4, 1)


def test_truncated_gz_and_non_nifti_are_input_errors(tmp_path: Path) -> None:
    path = write_nifti(np.random.default_rng(1).random((16, 16, 16)), tmp_path / "v.nii.gz", affine=np.eye(4))
    data = path.read_bytes()
    (tmp_path / "cut.nii.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="truncated or corrupt") as caught:
        read_volume(tmp_path / "cut.nii.gz")
    assert "cut.nii.gz" in str(caught.value)
    (tmp_path / "text.nii").write_text("not an image")
    with pytest.raises(InputError, match="not a readable NIfTI"):
        read_volume(tmp_path / "text.nii")


def test_qform_sform_disagreement_warns_and_uses_sform(tmp_path: Path, caplog) -> None:
    image = nib.Nifti1Image(np.zeros((2, 3, 4), np.float32), np.eye(4))
    sform = np.diag([2.0, 2.0, 2.0, 1.0])
    image.set_sform(sform, code=1)
    image.set_qform(np.eye(4), code=1)
    nib.save(image, tmp_path / "forms.nii.gz")
    with caplog.at_level(logging.WARNING, logger="medgan.io"):
        volume = read_volume(tmp_path / "forms.nii.gz")
    np.testing.assert_allclose(volume.affine.numpy(), sform)
    assert any("qform and sform disagree" in w for w in read_warnings_of(volume))
    assert "qform and sform disagree" in caplog.text


@pytest.mark.parametrize("bad_slope", [0.0, np.nan])
def test_scl_slope_zero_or_nan_means_no_scaling_and_is_said(tmp_path: Path, bad_slope: float, caplog) -> None:
    image = nib.Nifti1Image(np.arange(24, dtype=np.int16).reshape(2, 3, 4), np.eye(4))
    nib.save(image, tmp_path / "s.nii")  # nibabel writes its own scl fields; patch the bytes after
    raw = bytearray((tmp_path / "s.nii").read_bytes())
    raw[SCL_SLOPE_OFFSET:SCL_SLOPE_OFFSET + 4] = struct.pack("<f", bad_slope)
    raw[SCL_INTER_OFFSET:SCL_INTER_OFFSET + 4] = struct.pack("<f", 100.0)
    (tmp_path / "s.nii").write_bytes(bytes(raw))
    with caplog.at_level(logging.INFO, logger="medgan.io"):
        volume = read_volume(tmp_path / "s.nii")
    np.testing.assert_array_equal(volume[0].numpy(), np.arange(24).reshape(2, 3, 4))
    assert "no scaling" in caplog.text
    assert any("no scaling" in w and "scl_inter 100 ignored" in w for w in read_warnings_of(volume))


def test_nan_voxels_error_by_default_or_are_replaced_and_counted(tmp_path: Path) -> None:
    values = np.ones((3, 3, 3), np.float32)
    values[0, 0, 0], values[1, 1, 1], values[2, 2, 2] = np.nan, np.inf, -np.inf
    path = write_nifti(values, tmp_path / "nan.nii.gz", affine=np.eye(4))
    with pytest.raises(InputError, match=r"3 of 27 voxels are not finite \(1 NaN, 2 Inf\)") as caught:
        read_volume(path)
    assert "nan_policy='replace'" in str(caught.value)
    volume = read_volume(path, options=ReadOptions(nan_policy="replace", nan_fill=-5.0))
    assert volume.meta["nonfinite_replaced"] == 3
    assert float(volume[0, 1, 1, 1]) == -5.0 and bool(volume.isfinite().all())
    assert any("replaced 3 non-finite" in w for w in read_warnings_of(volume))


def test_memory_budget_refuses_before_reading_voxels(tmp_path: Path) -> None:
    path = write_nifti(np.zeros((10, 10, 10)), tmp_path / "v.nii.gz", affine=np.eye(4))
    # Corrupt the compressed voxel stream: a budget error must come first, from the header alone.
    header_only = gzip.decompress(path.read_bytes())[:352]
    (tmp_path / "header_only.nii.gz").write_bytes(gzip.compress(header_only))
    with pytest.raises(InputError, match=r"needs 4,000 bytes .* over the memory budget of 1,000 bytes") as caught:
        read_volume(tmp_path / "header_only.nii.gz", options=ReadOptions(max_bytes=1000))
    assert "max_bytes" in str(caught.value)
    assert read_volume(path, options=ReadOptions(max_bytes=4000)).shape == (1, 10, 10, 10)
