"""The translate job's input guard: wrong modality and blank images refused, doubtful inputs warned about."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from medgan.data.profile import DataProfile, build_data_profile
from medgan.errors import InputError
from medgan.inference.input_guard import InputGuard, check_source_against_profile, resampling_note
from medgan.io import read_volume, write_dicom_series

PATH = Path("/data/study_7/series_3")


@pytest.fixture(scope="module")
def mri_profile(tiny_datalist: Path) -> DataProfile:
    """The tiny dataset's MRIs: 24^3 voxels of 2 mm (FOV 48 mm)."""
    return build_data_profile(tiny_datalist, source_key="mri", source_modality="mri")


def head(size: int = 24, *, inside: float, shell: float, outside: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    grid = np.meshgrid(*[np.linspace(-1, 1, size)] * 3, indexing="ij")
    radius = np.sqrt(sum(axis**2 for axis in grid))
    volume = np.select([radius < 0.6, radius < 0.8], [inside, shell], outside)
    return (volume + np.abs(rng.normal(0, 5, volume.shape))).astype(np.float32)


def mri_like(size: int = 24, seed: int = 0) -> np.ndarray:
    return head(size, inside=600.0, shell=80.0, outside=5.0, seed=seed)


def ct_like(size: int = 24, seed: int = 0) -> np.ndarray:
    return head(size, inside=40.0, shell=1200.0, outside=-1000.0, seed=seed)


def volume(voxels: np.ndarray, spacing: float = 2.0, modality: str = "") -> MetaTensor:
    """A source as read_volume gives it: (1, I, J, K), RAS affine, the DICOM Modality in meta."""
    affine = torch.diag(torch.tensor([spacing, spacing, spacing, 1.0], dtype=torch.float64))
    return MetaTensor(torch.from_numpy(voxels)[None], affine=affine, meta={"modality": modality})


def test_ct_series_is_refused_by_its_modality_tag(tmp_path: Path, mri_profile: DataProfile) -> None:
    # The voxels alone would pass as MRI: the tag decides.
    series = write_dicom_series(volume(mri_like()), tmp_path / "CT series", modality="CT")
    with pytest.raises(InputError, match="DICOM Modality is 'CT' but this run translates MR") as refused:
        check_source_against_profile(read_volume(series), series, mri_profile, "mri")
    assert str(series) in str(refused.value) and "fix:" in str(refused.value)

    mr_series = write_dicom_series(volume(mri_like()), tmp_path / "MR series", modality="MR")
    assert check_source_against_profile(read_volume(mr_series), mr_series, mri_profile, "mri") == []  # MR == mri


def test_ct_without_a_tag_is_refused_by_its_histogram(mri_profile: DataProfile) -> None:
    with pytest.raises(InputError, match="look like CT in HU, not MRI") as refused:
        check_source_against_profile(volume(ct_like()), PATH, mri_profile, "mri")
    assert str(PATH) in str(refused.value)
    with pytest.raises(InputError, match="look like CT"):  # the modality checks need no profile
        check_source_against_profile(volume(ct_like()), PATH, None, "MR")


def test_mri_given_to_a_ct_model_is_refused() -> None:
    with pytest.raises(InputError, match="do not look like CT in HU"):
        check_source_against_profile(volume(mri_like()), PATH, None, "ct")
    with pytest.raises(InputError, match="DICOM Modality is 'MR' but this run translates CT"):
        check_source_against_profile(volume(ct_like(), modality="MR"), PATH, None, "ct")
    assert check_source_against_profile(volume(ct_like()), PATH, None, "ct") == []


@pytest.mark.parametrize("value", [0.0, 312.5])
def test_constant_image_is_refused(value: float, mri_profile: DataProfile) -> None:
    with pytest.raises(InputError, match="constant"):
        check_source_against_profile(volume(np.full((16, 16, 16), value, np.float32)), PATH, mri_profile, "mri")


def test_small_field_of_view_warns(mri_profile: DataProfile) -> None:
    # A skull-stripped-like crop: 12 voxels of 2 mm = 24 mm per axis, half the 48 mm of every training image.
    warnings = check_source_against_profile(volume(mri_like(12)), PATH, mri_profile, "mri")
    assert len(warnings) == 1 and "field of view much smaller" in warnings[0] and "24 mm vs 48 mm" in warnings[0]
    # 16 voxels (32 mm, 0.67x) are within the tolerance
    assert check_source_against_profile(volume(mri_like(16)), PATH, mri_profile, "mri") == []
    assert check_source_against_profile(volume(mri_like(12)), PATH, None, "mri") == []  # no profile: skipped


def test_spacing_far_from_the_trained_spacing_warns(mri_profile: DataProfile) -> None:
    fine = check_source_against_profile(volume(mri_like(100), spacing=0.5), PATH, mri_profile, "mri")
    assert len(fine) == 1 and "more than 2x away from the trained spacing 2 x 2 x 2 mm" in fine[0]
    assert "resampled to the trained spacing and back" in fine[0]
    assert check_source_against_profile(volume(mri_like(32), spacing=1.5), PATH, mri_profile, "mri") == []
    coarse = check_source_against_profile(
        volume(mri_like(24), spacing=5.0), PATH, mri_profile, "mri", trained_spacing=(1.0, 1.0, 1.0)
    )
    assert "more than 2x away from the trained spacing 1 x 1 x 1 mm" in coarse[0]


def test_ct_intensities_far_outside_the_training_range_warn(tiny_datalist: Path) -> None:
    ct_profile = build_data_profile(tiny_datalist, source_key="ct", source_modality="ct")
    assert check_source_against_profile(volume(ct_like(seed=5)), PATH, ct_profile, "ct") == []
    hot = head(inside=40.0, shell=3000.0, outside=-1000.0)  # p99 3000 HU against ~1200 in training
    warnings = check_source_against_profile(volume(hot), PATH, ct_profile, "ct")
    assert len(warnings) == 1 and "intensities far outside" in warnings[0] and "p99 30" in warnings[0]


def test_guard_notes_how_each_input_is_resampled(mri_profile: DataProfile) -> None:
    guard = InputGuard(mri_profile, "mri", trained_spacing=(5.0, 5.0, 5.0))
    assert guard.resampling_note() is None
    guard(volume(mri_like(24), spacing=1.0), PATH)
    assert guard.resampling_note() == "resampled 1 x 1 x 1 mm -> 5 x 5 x 5 mm (trained spacing) and back"
    assert resampling_note((2.0, 2.0, 2.0), (2.0, 2.0, 2.0)).startswith("native spacing 2 x 2 x 2 mm")
    assert "native spacing" in resampling_note((0.8, 0.8, 3.0), None)
