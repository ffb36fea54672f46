"""k-space: FFT round trip, data consistency, masks at the requested acceleration, reproducible, bad inputs."""

from __future__ import annotations

import pytest
import torch

from medgan.data.kspace import (
    data_consistency,
    fft_centered,
    ifft_centered,
    line_mask,
    sampled_fraction,
    simulate_kspace,
    variable_density_mask,
)
from medgan.errors import ConfigError


def test_fft_round_trip_is_identity_and_preserves_energy() -> None:
    image = torch.rand(3, 32, 40)
    kspace = fft_centered(image)
    assert kspace.dtype == torch.complex64 and kspace.shape == image.shape
    assert torch.allclose(ifft_centered(kspace).real, image, atol=1e-5)
    assert torch.allclose(ifft_centered(kspace).imag, torch.zeros_like(image), atol=1e-5)
    assert torch.allclose(kspace.abs().square().sum(), image.square().sum(), rtol=1e-4)  # orthonormal
    centre = kspace[0].abs().argmax()
    assert divmod(int(centre), 40) == (16, 20)  # DC in the middle (centred)
    volume = torch.rand(8, 8, 8)
    assert torch.allclose(ifft_centered(fft_centered(volume, 3), 3).real, volume, atol=1e-5)


def test_data_consistency_puts_the_measured_samples_back_exactly() -> None:
    measured = simulate_kspace(torch.rand(32, 32), phase_amplitude=0.8, seed=1)
    mask = line_mask(32, 4, 0.08, seed=0)[None, :]
    predicted = torch.randn(32, 32, dtype=torch.complex64)
    consistent = data_consistency(predicted, measured * mask, mask)
    sampled = mask.expand(32, 32) > 0
    assert torch.equal(consistent[sampled], (measured * mask)[sampled])
    assert torch.equal(consistent[~sampled], predicted[~sampled])


@pytest.mark.parametrize("kind", ["random", "equispaced"])
@pytest.mark.parametrize(("acceleration", "center"), [(4, 0.08), (8, 0.04)])
def test_line_masks_hit_the_acceleration_and_are_reproducible(kind: str, acceleration: int, center: float) -> None:
    masks = [line_mask(368, acceleration, center, kind=kind, seed=seed) for seed in range(20)]
    achieved = sum(sampled_fraction(mask) for mask in masks) / len(masks)
    assert achieved == pytest.approx(1 / acceleration, rel=0.15)
    assert torch.equal(masks[0], line_mask(368, acceleration, center, kind=kind, seed=0))
    centre = masks[0][184 - int(368 * center) // 2 : 184 + int(368 * center) // 2]
    assert centre.min() == 1.0  # the fully sampled centre
    if kind == "random":
        assert not torch.equal(masks[0], masks[1])


def test_variable_density_mask_is_dense_at_the_centre_and_at_the_rate() -> None:
    mask = variable_density_mask((64, 48), 6, 0.1, seed=3)
    assert sampled_fraction(mask) == pytest.approx(1 / 6, rel=0.15)
    assert mask[30:34, 22:26].min() == 1.0 and mask[:4, :4].mean() < 0.2
    assert torch.equal(mask, variable_density_mask((64, 48), 6, 0.1, seed=3))


def test_simulated_phase_makes_the_problem_complex() -> None:
    magnitude = torch.rand(24, 24)
    plain, phased = simulate_kspace(magnitude), simulate_kspace(magnitude, phase_amplitude=1.0, seed=2)
    assert torch.allclose(ifft_centered(phased).abs(), magnitude, atol=1e-5)
    assert ifft_centered(phased).imag.abs().max() > 0.01 and ifft_centered(plain).imag.abs().max() < 1e-5


@pytest.mark.parametrize(
    ("arguments", "words"),
    [((32, 0.5, 0.08), "acceleration must be >= 1"), ((32, 4, 0.0), "center fraction"), ((32, 4, 1.2), "(0, 1)")],
)
def test_bad_sampling_settings_are_config_errors(arguments: tuple, words: str) -> None:
    with pytest.raises(ConfigError, match=words.replace("(", r"\(").replace(")", r"\)")):
        line_mask(*arguments)
    with pytest.raises(ConfigError, match="unknown mask kind"):
        line_mask(32, 4, 0.08, kind="radial")
    for kind in ("random", "equispaced"):
        with pytest.raises(ConfigError, match="samples nothing"):
            line_mask(4, 64, 0.01, kind=kind)  # no centre line and no other: nothing measured
    with pytest.raises(ValueError, match="complex"):
        ifft_centered(torch.rand(4, 4))
