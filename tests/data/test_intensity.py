"""Intensity mappings: exact round trips inside the window, clipping outside, inverse via the trace."""

import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.transforms import Compose

from medgan.data.intensity import CTWindowd, IntensityWindow, MRIPercentileScaled, percentile_window
from medgan.errors import InputError


def test_ct_window_maps_hu_to_network_range_and_back():
    hu = MetaTensor(torch.linspace(-2000.0, 4000.0, 4096).reshape(1, 16, 16, 16))
    window = CTWindowd("ct")
    ct_norm = window({"ct": hu})["ct"]
    assert ct_norm.min() == -1.0 and float(ct_norm.max()) == pytest.approx(1.0, abs=1e-6)
    edges = window({"ct": MetaTensor(torch.tensor([[-1024.0, 3071.0]]))})["ct"]
    assert edges.flatten().tolist() == pytest.approx([-1.0, 1.0], abs=1e-6)

    ct_hu = window.inverse({"ct": ct_norm})["ct"]
    inside = (hu > -1024) & (hu < 3071)
    torch.testing.assert_close(ct_hu[inside], hu[inside], atol=1e-3, rtol=0)
    assert torch.allclose(ct_hu[hu <= -1024], torch.tensor(-1024.0), atol=1e-3)
    assert torch.allclose(ct_hu[hu >= 3071], torch.tensor(3071.0), atol=1e-3)
    assert ct_hu.applied_operations == []


def test_mri_percentiles_come_from_nonzero_voxels_and_invert_exactly():
    rng = np.random.default_rng(0)
    mri = np.zeros((24, 24, 24), np.float32)
    mri[4:20, 4:20, 4:20] = rng.gamma(4.0, 100.0, size=(16, 16, 16))  # large zero background around it
    volume = MetaTensor(torch.from_numpy(mri)[None], meta={"filename_or_obj": "mri.nii.gz"})
    scale = MRIPercentileScaled("mri")
    mri_norm = scale({"mri": volume})["mri"]

    low, high = np.percentile(mri[mri != 0], [0.5, 99.5])
    extra = mri_norm.applied_operations[-1]["extra_info"]
    assert extra["low"] == pytest.approx(low) and extra["high"] == pytest.approx(high)
    assert mri_norm.meta["intensity_low"] == pytest.approx(low)
    assert mri_norm.min() == -1.0 and float(mri_norm.max()) == pytest.approx(1.0, abs=1e-6)

    restored = scale.inverse({"mri": mri_norm})["mri"]
    inside = (volume > low) & (volume < high)
    torch.testing.assert_close(restored[inside], volume[inside], atol=1e-3, rtol=1e-5)
    assert torch.allclose(restored[volume <= low], torch.tensor(low, dtype=torch.float32), atol=1e-3)
    assert "intensity_low" not in restored.meta


def test_mri_without_clipping_is_linear_everywhere():
    volume = MetaTensor(torch.arange(1.0, 1001.0).reshape(1, 10, 10, 10))
    scale = MRIPercentileScaled("mri", lower=10.0, upper=90.0, clip=False)
    mri_norm = scale({"mri": volume})["mri"]
    assert mri_norm.min() < -1.0 and mri_norm.max() > 1.0
    torch.testing.assert_close(scale.inverse({"mri": mri_norm})["mri"], volume, atol=1e-3, rtol=0)


def test_compose_inverse_undoes_intensity_for_several_keys():
    chain = Compose([CTWindowd("ct"), MRIPercentileScaled("mri")])
    data = {
        "ct": MetaTensor(torch.linspace(-1000.0, 3000.0, 512).reshape(1, 8, 8, 8)),
        "mri": MetaTensor(torch.linspace(1.0, 500.0, 512).reshape(1, 8, 8, 8)),
    }
    mapped = chain({k: v.clone() for k, v in data.items()})
    restored = chain.inverse(mapped)
    torch.testing.assert_close(restored["ct"], data["ct"], atol=1e-3, rtol=0)
    inner = (data["mri"] > 4) & (data["mri"] < 497)  # strictly inside the 0.5/99.5 percentiles
    torch.testing.assert_close(restored["mri"][inner], data["mri"][inner], atol=1e-3, rtol=0)


def test_empty_mri_is_an_input_error_naming_the_file():
    empty = MetaTensor(torch.zeros(1, 8, 8, 8), meta={"filename_or_obj": "/data/s1/mri.nii.gz"})
    with pytest.raises(InputError, match="s1/mri.nii.gz.*no usable foreground"):
        MRIPercentileScaled("mri")({"mri": empty})


def test_window_rejects_empty_interval_and_bad_percentiles():
    with pytest.raises(ValueError):
        IntensityWindow(5.0, 5.0)
    with pytest.raises(ValueError):
        percentile_window(torch.ones(4), lower=60, upper=40)


def test_window_mapping_leaves_its_input_untouched_and_promotes_integers():
    """The mapping works in place on a new tensor, never on the caller's (a read volume is reused)."""
    window = IntensityWindow(-1024.0, 3071.0)
    hu = torch.tensor([-2000.0, -1024.0, 0.0, 1500.0, 4000.0])
    before = hu.clone()
    for clip in (True, False):
        mapped = window.to_network(hu, clip=clip)
        assert torch.equal(hu, before)
        mapped_before = mapped.clone()
        window.from_network(mapped, clip=clip)
        assert torch.equal(mapped, mapped_before)
    np.testing.assert_allclose(window.to_network(hu.to(torch.int32)).numpy(), window.to_network(hu).numpy())
