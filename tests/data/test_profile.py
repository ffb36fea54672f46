"""The training data profile: geometry per RAS axis, intensity features, aggregates, JSON round trip."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from medgan.data.profile import DataProfile, build_data_profile, intensity_features, ras_geometry
from medgan.errors import ConfigError


def test_profile_of_the_tiny_dataset(tiny_datalist: Path, tmp_path: Path) -> None:
    profile = build_data_profile(
        tiny_datalist, source_key="mri", source_modality="mri", target_key="ct", target_modality="CT"
    )
    assert profile.split == "training" and profile.source.n_entries == 2 and len(profile.source.images) == 2
    assert profile.source.median_spacing == pytest.approx((2.0, 2.0, 2.0))
    assert profile.source.min_fov_mm == pytest.approx((48.0, 48.0, 48.0))
    assert profile.source.modality == "mri" and profile.source.modality_tags == []  # NIfTI: no tag
    mri = profile.source.images[0].intensity
    assert mri.fraction_negative == 0.0 and mri.fraction_air == 0.0 and 0 < mri.p1 < mri.p50 < mri.p99 <= 700
    ct = profile.target
    assert ct is not None and ct.modality == "ct"
    assert ct.median_fraction_air > 0.3 and ct.percentile_ranges["p1"][1] < -900  # air around the head
    assert 1000 < ct.median_percentiles["p99"] < 1300  # the bone shell

    path = profile.save(tmp_path / "data_profile.json")
    assert DataProfile.load(path) == profile
    assert DataProfile.from_dict(json.loads(path.read_text())).to_dict() == profile.to_dict()


def test_geometry_is_per_ras_axis_and_aggregated(tmp_path: Path) -> None:
    # Voxel axes i, j, k run along -x, z, -y (LPS-like, permuted); spacing 0.5, 3, 1 mm.
    affine = np.array([[-0.5, 0, 0, 0], [0, 0, -1.0, 0], [0, 3.0, 0, 0], [0, 0, 0, 1]])
    spacing, fov = ras_geometry(affine, (40, 10, 30))
    assert spacing == pytest.approx((0.5, 1.0, 3.0)) and fov == pytest.approx((20.0, 30.0, 30.0))

    entries = []
    for index, (spacing, size) in enumerate([(1.0, 40), (2.0, 30), (4.0, 12)]):
        path = tmp_path / f"s{index}.nii.gz"
        nib.save(nib.Nifti1Image(np.full((size,) * 3, 10.0 + index, np.float32), np.diag([spacing] * 3 + [1])), path)
        entries.append({"mri": path.name})
    datalist = tmp_path / "datalist.json"
    datalist.write_text(json.dumps({"training": entries}))
    profile = build_data_profile(datalist, source_key="mri", source_modality="MR")
    assert profile.target is None
    assert profile.source.median_spacing == pytest.approx((2.0, 2.0, 2.0))
    assert profile.source.min_fov_mm == pytest.approx((40.0, 40.0, 40.0))
    assert profile.source.median_fov_mm == pytest.approx((48.0, 48.0, 48.0))
    with pytest.raises(ConfigError, match="no split 'test'"):
        build_data_profile(datalist, split="test", source_key="mri", source_modality="mri")


def test_intensity_features_subsample_but_keep_exact_extremes() -> None:
    values = np.concatenate([np.full(9_000, -1000.0), np.full(990_000, 40.0), np.full(1_000, 1500.0)])
    features = intensity_features(np.random.default_rng(0).permutation(values), max_voxels=10_000)
    assert (features.min, features.max) == (-1000.0, 1500.0)
    assert features.p50 == 40.0
    assert features.fraction_air == pytest.approx(0.009, abs=0.003)
    assert features.fraction_below_minus500 == pytest.approx(0.009)
