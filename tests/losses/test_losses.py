"""Adversarial and masked reconstruction losses give the textbook values and useful gradients."""

from __future__ import annotations

import pytest
import torch

from medgan.errors import ConfigError
from medgan.losses import build_adversarial_loss, discriminator_logits, masked_l1


def test_lsgan_values_match_least_squares_formula() -> None:
    loss = build_adversarial_loss("lsgan")
    real = torch.tensor([0.5, 1.5])
    fake = torch.tensor([0.2, -0.4])
    expected_d = 0.5 * (((real - 1) ** 2).mean() + (fake**2).mean())
    assert torch.allclose(loss.discriminator_loss(real, fake), expected_d)
    assert torch.allclose(loss.generator_loss(fake), ((fake - 1) ** 2).mean())


def test_hinge_values_on_raw_logits() -> None:
    loss = build_adversarial_loss("hinge")
    real = torch.tensor([2.0, 0.5])
    fake = torch.tensor([-3.0, 0.25])
    expected_d = 0.5 * (torch.tensor([0.0, 0.5]).mean() + torch.tensor([0.0, 1.25]).mean())
    assert torch.allclose(loss.discriminator_loss(real, fake), expected_d)
    assert torch.allclose(loss.generator_loss(fake), torch.tensor(2.75 / 2))


def test_nonsaturating_equals_bce_with_logits() -> None:
    loss = build_adversarial_loss("nonsaturating")
    real = torch.tensor([3.0, -1.0, 0.0])
    fake = torch.tensor([-2.0, 4.0, 0.5])
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    expected_d = 0.5 * (bce(real, torch.ones(3)) + bce(fake, torch.zeros(3)))
    assert torch.allclose(loss.discriminator_loss(real, fake), expected_d)
    assert torch.allclose(loss.generator_loss(fake), bce(fake, torch.ones(3)))
    # Large logits stay finite (the sigmoid + BCELoss form would not be stable).
    assert torch.isfinite(loss.generator_loss(torch.tensor([-500.0, 500.0])))


@pytest.mark.parametrize("kind", ["lsgan", "hinge", "nonsaturating"])
def test_generator_loss_pushes_fake_logits_up(kind: str) -> None:
    loss = build_adversarial_loss(kind)
    fake = torch.tensor([-0.5, 0.1], requires_grad=True)
    loss.generator_loss(fake).backward()
    assert (fake.grad < 0).all()  # descending the loss raises the fake scores


def test_list_output_uses_last_map_as_logits() -> None:
    features, logits = torch.randn(2, 4, 3, 3, 3), torch.randn(2, 1, 2, 2, 2)
    assert torch.equal(discriminator_logits([features, logits]), logits)
    loss = build_adversarial_loss("lsgan")
    assert torch.allclose(loss.generator_loss([features, logits]), loss.generator_loss(logits))


def test_unknown_adversarial_kind_lists_known() -> None:
    with pytest.raises(ConfigError, match="hinge"):
        build_adversarial_loss("wasserstein")


def test_masked_l1_averages_inside_mask_only() -> None:
    prediction = torch.zeros(1, 1, 2, 2, 2)
    target = torch.zeros(1, 1, 2, 2, 2)
    target[0, 0, 0] = 2.0  # error 2 on the first slab, 0 elsewhere
    mask = torch.zeros(1, 1, 2, 2, 2)
    mask[0, 0, 0, 0] = 1.0  # two voxels, both in the error slab
    assert masked_l1(prediction, target, mask).item() == pytest.approx(2.0)
    assert masked_l1(prediction, target).item() == pytest.approx(1.0)
    assert masked_l1(prediction, target, torch.zeros_like(mask)).item() == pytest.approx(1.0)
