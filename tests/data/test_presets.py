"""Modality presets: registry lookup and the plain to_network / from_network mappings."""

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from medgan.data.intensity import CTWindowd, IntensityWindow, MRIPercentileScaled
from medgan.data.presets import PRESETS, canonical_modality, get_preset
from medgan.errors import ConfigError


def test_registry_finds_presets_by_name_case_insensitively():
    assert get_preset("ct") is PRESETS["ct"] and get_preset("CT") is PRESETS["ct"]
    assert get_preset("mri") is PRESETS["mri"] and get_preset("MR") is PRESETS["mri"]
    assert isinstance(get_preset("ct").intensity_transform(keys=["ct"]), CTWindowd)
    assert isinstance(get_preset("mri").intensity_transform(keys=["mri"]), MRIPercentileScaled)


def test_canonical_modality_folds_case_and_dicom_spelling():
    assert [canonical_modality(name) for name in ("ct", "CT", "mri", "MRI", "mr", "MR")] == ["ct"] * 2 + ["mri"] * 4
    with pytest.raises(ConfigError, match="unknown modality 'PET'"):
        canonical_modality("PET")


def test_presets_name_their_dicom_modality_code():
    assert (get_preset("ct").dicom_modality, get_preset("MR").dicom_modality) == ("CT", "MR")


def test_unknown_modality_lists_the_known_ones():
    with pytest.raises(ConfigError, match="unknown modality 'pet'") as err:
        get_preset("pet")
    assert "ct, mri" in str(err.value)


def test_preset_defaults():
    ct, mri = get_preset("ct"), get_preset("mri")
    assert ct.target_spacing == (1.0, 1.0, 1.0) and ct.pad_value == -1.0
    assert (ct.image_interpolation, ct.label_interpolation) == ("bilinear", "nearest")
    assert ct.fixed_window == IntensityWindow(-1024.0, 3071.0) and mri.fixed_window is None
    # the CT pad value is air, and the body threshold sits between air and soft tissue
    assert float(ct.from_network(torch.tensor(ct.pad_value))) == pytest.approx(-1024.0)
    assert float(ct.to_network(torch.tensor(-1000.0))) < ct.body_threshold < float(ct.to_network(torch.tensor(-100.0)))


def test_ct_round_trip_is_identity_inside_the_window_and_clips_outside():
    ct = get_preset("ct")
    ct_hu = torch.linspace(-1500.0, 3500.0, 1001)
    ct_norm = ct.to_network(ct_hu)
    assert ct_norm.min() >= -1.0 and ct_norm.max() <= 1.0
    restored = ct.from_network(ct_norm)
    torch.testing.assert_close(restored, ct_hu.clamp(-1024.0, 3071.0), atol=1e-3, rtol=0)


def test_mri_round_trip_through_meta_and_explicit_window():
    mri = get_preset("mri")
    rng = np.random.default_rng(1)
    volume = MetaTensor(torch.from_numpy(rng.uniform(10.0, 900.0, size=(1, 12, 12, 12)).astype(np.float32)))
    mri_norm = mri.to_network(volume)
    low, high = mri_norm.meta["intensity_low"], mri_norm.meta["intensity_high"]
    assert (low, high) == pytest.approx(tuple(np.percentile(volume.numpy(), [0.5, 99.5])))
    inside = (volume > low) & (volume < high)
    torch.testing.assert_close(mri.from_network(mri_norm)[inside], volume[inside], atol=1e-3, rtol=0)

    plain_norm = mri_norm.as_tensor()
    with pytest.raises(ValueError, match="no fixed intensity window"):
        mri.from_network(plain_norm)
    restored = mri.from_network(plain_norm, window=IntensityWindow(low, high))
    torch.testing.assert_close(restored[inside], volume.as_tensor()[inside], atol=1e-3, rtol=0)


def test_preset_function_matches_its_transform():
    mri = get_preset("mri")
    volume = MetaTensor(torch.linspace(0.0, 300.0, 512).reshape(1, 8, 8, 8))
    by_transform = mri.intensity_transform(keys=["mri"])({"mri": volume.clone()})["mri"]
    torch.testing.assert_close(by_transform.as_tensor(), mri.to_network(volume.clone()).as_tensor())
