"""The recon method: exact data consistency, per-sample reproducible masks, training beats zero-filling."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tiny_data import tiny_method_config

from medgan.config.schema import ExperimentConfig
from medgan.data.kspace import fft_centered, ifft_centered
from medgan.methods.recon import DataConsistentRecon


def method_of(tiny_datalist: Path, **model: object) -> DataConsistentRecon:
    raw = tiny_method_config(tiny_datalist, "recon")
    raw["model"] |= model
    return DataConsistentRecon(ExperimentConfig.model_validate(raw))


def test_the_unrolled_output_keeps_the_measured_samples_exactly(tiny_datalist: Path) -> None:
    method = method_of(tiny_datalist, phase_amplitude=0.5)
    networks = method.build_networks()
    target = torch.rand(2, 1, 16, 16, 16)
    kspace, mask = method.undersample(target, [1, 2])
    with torch.no_grad():
        image = networks["G"](kspace, mask)
    sampled = (mask > 0).expand_as(kspace)
    assert torch.allclose(fft_centered(image, 3)[sampled], kspace[sampled], atol=1e-5)
    assert method.reconstruct(networks, kspace, mask).shape == (2, 1, 16, 16, 16)


def test_masks_are_per_sample_reproducible_and_at_the_rate(tiny_datalist: Path) -> None:
    method = method_of(tiny_datalist, acceleration=4.0, center_fraction=0.125)
    target = torch.rand(3, 1, 16, 16, 64)
    _, first = method.undersample(target, [5, 6, 5])
    assert torch.equal(first[0], first[2]) and not torch.equal(first[0], first[1])
    assert float(first.mean()) == pytest.approx(0.25, abs=0.1)


def test_a_short_training_beats_zero_filling(tiny_datalist: Path) -> None:
    method = method_of(tiny_datalist, losses={"lambda_adv": 0.0})
    torch.manual_seed(0)
    networks = method.build_networks()
    optimiser = torch.optim.Adam(networks["G"].parameters(), lr=3e-3)
    stream = method.training_stream(cache_dir=None)
    batch = {key: value.float() if value.is_floating_point() else value for key, value in stream[0].items()}
    target = ((method.images_of(batch) + 1) / 2).clamp(0, 1)
    kspace, mask = method.undersample(target, [0, 1])
    zero_filled = (ifft_centered(kspace, 3).abs() - target).abs().mean()
    for _ in range(40):
        loss = (method.reconstruct(networks, kspace, mask) - target).abs().mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    with torch.no_grad():
        trained = (method.reconstruct(networks, kspace, mask) - target).abs().mean()
    assert trained < 0.9 * zero_filled


def test_one_image_only(tiny_datalist: Path) -> None:
    with pytest.raises(Exception, match="one image"):
        method_of(tiny_datalist, images={"mri": "mri", "ct": "ct"})


def test_slice_wise_cascades_keep_each_slices_measured_samples(tiny_datalist: Path) -> None:
    method = method_of(tiny_datalist, generator={"name": "unrolled2d", "cascades": 2, "block": {"channels": [4, 8]}})
    assert method.kspace_dims == 2
    networks = method.build_networks()
    target = torch.rand(2, 1, 3, 20, 22)  # 3 slices of 20 x 22: not multiples of the U-Net's stride
    kspace, mask = method.undersample(target, [1, 2])
    with torch.no_grad():
        image = networks["G"](kspace, mask)
    sampled = (mask > 0).expand_as(kspace)
    assert image.shape == kspace.shape
    assert torch.allclose(fft_centered(image, 2)[sampled], kspace[sampled], atol=1e-5)


def test_soft_data_consistency_learns_a_weight_that_starts_as_hard(tiny_datalist: Path) -> None:
    soft = method_of(tiny_datalist, generator={"name": "unrolled3d", "cascades": 2, "data_consistency": "soft"})
    hard = method_of(tiny_datalist, generator={"name": "unrolled3d", "cascades": 2})
    torch.manual_seed(0)
    soft_net = soft.build_networks()["G"]
    torch.manual_seed(0)
    hard_net = hard.build_networks()["G"]
    kspace, mask = soft.undersample(torch.rand(1, 1, 16, 16, 16), [3])
    with torch.no_grad():
        assert torch.allclose(soft_net(kspace, mask), hard_net(kspace, mask), atol=1e-6)
        soft_net.dc_weights.fill_(0.5)
        half = fft_centered(soft_net(kspace, mask), 3)
    sampled = (mask > 0).expand_as(kspace)
    assert not torch.allclose(half[sampled], kspace[sampled], atol=1e-3)  # no longer equal to the measurement
    assert soft_net.dc_weights.requires_grad and "dc_weights" in dict(soft_net.named_parameters())


def test_a_3d_block_in_a_slice_wise_network_is_a_config_error() -> None:
    from medgan.errors import ConfigError
    from medgan.models import build_network

    with pytest.raises(ConfigError, match="block 'unet3d' is 3D") as caught:
        build_network({"name": "unrolled2d", "block": {"name": "unet3d"}})
    assert "unet2d" in caught.value.fix
