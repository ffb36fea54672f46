"""The coarse-grid form of nearest-x2-then-conv equals the direct form, and the generator samples the same."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from medgan.models import build_network
from medgan.models.conditional import use_coarse_grid_upsampling
from medgan.models.upsample_conv import upsample_conv3d


@pytest.mark.parametrize(("shape", "bias"), [((2, 3, 4, 5, 6), True), ((1, 2, 1, 3, 2), False)])
def test_upsample_conv_equals_conv_of_upsampled(shape: tuple[int, ...], bias: bool) -> None:
    torch.manual_seed(0)
    coarse = torch.randn(shape)
    conv = nn.Conv3d(shape[1], 5, 3, padding=1, bias=bias)
    direct = conv(F.interpolate(coarse, scale_factor=2, mode="nearest"))
    fast = upsample_conv3d(coarse, conv)
    assert fast.shape == direct.shape == (shape[0], 5, *(2 * edge for edge in shape[2:]))
    torch.testing.assert_close(fast, direct, atol=1e-5, rtol=1e-5)  # borders and odd sizes included


def test_upsample_conv_refuses_other_convolutions() -> None:
    with pytest.raises(ValueError, match="3x3x3"):
        upsample_conv3d(torch.zeros(1, 2, 4, 4, 4), nn.Conv3d(2, 2, 3, padding=1, stride=2))


def test_generator_samples_are_the_same_in_the_coarse_grid_form() -> None:
    torch.manual_seed(1)
    generator = build_network({"name": "cond_generator3d", "out_size": [16, 16, 16], "channels": [16, 8, 4]})
    generator.eval()
    noise, labels = torch.randn(3, 128), torch.tensor([0, 1, 1])
    with torch.no_grad():
        fast = generator(noise, labels)
        direct = use_coarse_grid_upsampling(generator, False)(noise, labels)
    assert fast.shape == (3, 1, 16, 16, 16) and fast.std() > 0
    torch.testing.assert_close(fast, direct, atol=1e-5, rtol=1e-5)


def test_training_gradients_match_the_direct_form() -> None:
    torch.manual_seed(2)
    coarse = torch.randn(2, 3, 4, 4, 4, requires_grad=True)
    conv = nn.Conv3d(3, 4, 3, padding=1)
    target = torch.randn(2, 4, 8, 8, 8)
    grads = []
    for form in ("direct", "coarse"):
        conv.zero_grad()
        coarse.grad = None
        out = (
            conv(F.interpolate(coarse, scale_factor=2, mode="nearest"))
            if form == "direct"
            else upsample_conv3d(coarse, conv)
        )
        ((out - target) ** 2).mean().backward()
        grads.append((conv.weight.grad.clone(), conv.bias.grad.clone(), coarse.grad.clone()))
    for direct, fast in zip(*grads, strict=True):
        torch.testing.assert_close(fast, direct, atol=1e-5, rtol=1e-5)
