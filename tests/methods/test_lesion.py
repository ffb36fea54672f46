"""The lesion inpainting method: exact copies beyond the band, the blend ramp, lesion-centred patches."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tiny_data import tiny_method_config

from medgan.config.schema import ExperimentConfig
from medgan.methods.lesion import MASK_KEY, LesionInpainting, blend_weights, dilate


def test_blend_weights_are_one_on_the_fill_ramp_down_and_vanish_beyond_the_band() -> None:
    lesion = torch.zeros(1, 1, 15, 15, 15)
    lesion[0, 0, 7, 7, 7] = 1.0
    fill, weight = blend_weights(lesion, fill_dilation=1, band_voxels=4)
    assert torch.equal(fill, dilate(lesion, 1)) and weight[fill > 0].min() == 1.0
    assert weight[0, 0, 7, 7, 9].item() == pytest.approx(2 / 3) and weight[0, 0, 7, 7, 10].item() == pytest.approx(
        1 / 3
    )
    assert weight[0, 0, 7, 7, 11].item() == 0.0 and torch.equal(weight > 0, dilate(lesion, 3) > 0)


def test_inpaint_changes_only_the_band_and_fills_the_lesion(tiny_datalist: Path) -> None:
    config = ExperimentConfig.model_validate(tiny_method_config(tiny_datalist, "lesion"))
    method = LesionInpainting(config)
    networks = method.build_networks()
    volume = torch.rand(2, 2, 16, 16, 16) * 2 - 1
    mask = torch.zeros(2, 1, 16, 16, 16)
    mask[:, :, 6:9, 6:9, 6:9] = 1.0
    with torch.no_grad():
        out = method.inpaint(networks, volume, mask)
    outside = (dilate(mask, method.options.band_voxels) == 0).expand_as(volume)
    assert torch.equal(out[outside], volume[outside])
    assert not torch.equal(out[mask.expand_as(volume) > 0], volume[mask.expand_as(volume) > 0])


def test_training_patches_are_centred_on_lesions_of_lesion_cases_only(tiny_datalist: Path) -> None:
    config = ExperimentConfig.model_validate(tiny_method_config(tiny_datalist, "lesion"))
    stream = LesionInpainting(config).training_stream(cache_dir=None)
    assert stream.subjects == ["subject_001"]  # the only training case with a lesion mask
    for draw in (stream[0], stream[1], stream[7]):
        assert draw[MASK_KEY].shape == (2, 1, 16, 16, 16)
        assert all(patch.sum() > 0 for patch in draw[MASK_KEY])  # every patch holds lesion voxels
        assert set(draw[MASK_KEY].unique().tolist()) <= {0.0, 1.0}


def test_band_must_exceed_the_fill(tiny_datalist: Path) -> None:
    raw = tiny_method_config(tiny_datalist, "lesion")
    raw["model"] |= {"fill_dilation": 3, "band_voxels": 3}
    with pytest.raises(Exception, match="band_voxels must exceed fill_dilation"):
        ExperimentConfig.model_validate(raw)


def test_contrast_code_is_measured_on_the_lesion_and_steers_the_generator(tiny_datalist: Path) -> None:
    from medgan.methods.lesion import lesion_contrast

    volume = torch.full((1, 2, 16, 16, 16), -0.5)
    lesion = torch.zeros(1, 1, 16, 16, 16)
    lesion[:, :, 6:9, 6:9, 6:9] = 1.0
    volume[:, 0][lesion[:, 0] > 0] = 0.1  # +0.6 in the first image, none in the second
    assert torch.allclose(lesion_contrast(volume, lesion), torch.tensor([[0.6, 0.0]]), atol=1e-6)
    config = ExperimentConfig.model_validate(tiny_method_config(tiny_datalist, "lesion"))
    method = LesionInpainting(config)
    assert method.generator_spec()["in_channels"] == 2 + 1 + 2
    networks = {name: net.eval() for name, net in method.build_networks().items()}
    with torch.no_grad():
        bright = method.inpaint(networks, volume, lesion, torch.tensor([[0.8, 0.2]]))
        dark = method.inpaint(networks, volume, lesion, torch.tensor([[-0.8, -0.2]]))
    assert not torch.equal(bright, dark)
