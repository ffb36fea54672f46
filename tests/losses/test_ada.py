"""Adaptive discriminator augmentation: identity at p = 0, differentiable, p controlled by sign(D(real))."""

from __future__ import annotations

import pytest
import torch

from medgan.losses.ada import AdaptiveAugment


def volumes(batch: int = 6, size: int = 16, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    images = torch.full((batch, 1, size, size, size), -1.0)
    images[:, :, 4:12, 3:13, 5:11] = torch.rand((batch, 1, 8, 10, 6), generator=generator) * 1.5 - 0.5
    return images


def test_probability_zero_is_the_identity() -> None:
    images = volumes()
    assert AdaptiveAugment()(images) is images


def test_probability_one_changes_every_volume_and_keeps_gradients() -> None:
    torch.manual_seed(0)
    images = volumes().requires_grad_(True)
    augment = AdaptiveAugment(initial_p=1.0)
    augmented = augment(images)
    assert augmented.shape == images.shape and bool(torch.isfinite(augmented).all())
    changed = (augmented - images).detach().abs().flatten(1).amax(dim=1)
    assert bool((changed > 1e-3).all())
    augmented.sum().backward()
    assert images.grad is not None and float(images.grad.abs().sum()) > 0  # G learns through the augmented fakes


def test_geometric_augmentation_keeps_air_as_air() -> None:
    torch.manual_seed(1)
    air = torch.full((4, 2, 12, 12, 12), -1.0)
    moved = AdaptiveAugment(initial_p=1.0)._geometric(air, 1.0)
    torch.testing.assert_close(moved, air)


def test_p_rises_while_the_discriminator_is_sure_of_reals_and_falls_otherwise() -> None:
    augment = AdaptiveAugment(target=0.6, speed_images=16, interval=2)
    confident = torch.full((4, 1, 3, 3, 3), 5.0)  # r_t = 1 > 0.6: D overfits
    augment.update(confident)
    assert augment.probability == 0.0  # only every `interval` updates
    augment.update(confident)
    assert augment.probability == pytest.approx(8 / 16) and float(augment.last_rt) == 1.0
    for _ in range(4):
        augment.update(confident)
    assert augment.probability == 1.0  # clipped: p never exceeds 1
    unsure = torch.full((4, 1, 3, 3, 3), -5.0)  # r_t = -1 < 0.6
    augment.update(unsure)
    augment.update(unsure)
    assert augment.probability == pytest.approx(0.5)
    for _ in range(6):
        augment.update(unsure)
    assert augment.probability == 0.0


def test_max_p_caps_the_probability() -> None:
    augment = AdaptiveAugment(speed_images=1, interval=1, max_p=0.7)
    augment.update(torch.ones(8, 1))
    assert augment.probability == pytest.approx(0.7)


def test_state_is_saved_and_restored_exactly() -> None:
    augment = AdaptiveAugment(speed_images=100, interval=3)
    for value in (2.0, 1.0, 3.0, 1.0, -1.0):  # r_t = 1 after three updates, then a partial sum
        augment.update(torch.full((5, 1), value))
    restored = AdaptiveAugment(speed_images=100, interval=3)
    restored.load_state_dict(augment.state_dict())
    assert restored.probability == augment.probability > 0
    for name in ("p", "sign_sum", "sign_count", "updates", "last_rt"):
        assert torch.equal(getattr(restored, name), getattr(augment, name)), name
    augment.update(torch.ones(5, 1))
    restored.update(torch.ones(5, 1))
    assert restored.probability == augment.probability


@pytest.mark.parametrize(
    "options", [{"target": 1.0}, {"speed_images": 0}, {"interval": 0}, {"initial_p": 0.9, "max_p": 0.5}]
)
def test_bad_options_are_refused(options: dict) -> None:
    with pytest.raises(ValueError, match="ADA"):
        AdaptiveAugment(**options)
