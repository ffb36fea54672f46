"""Shapes, ranges, sizes and reduced-precision behaviour of the bundled networks."""

from __future__ import annotations

import pytest
import torch

from medgan.errors import ConfigError
from medgan.models import build_network

TINY_UNET = {"name": "unet3d", "channels": [8, 16, 32], "strides": [2, 2], "num_res_units": 1}
TINY_PATCHGAN = {"name": "patchgan3d", "channels": 8, "num_layers_d": 2}
TINY_DENSENET = {"name": "densenet3d", "init_features": 8, "growth_rate": 4, "block_config": [2, 2]}


def parameter_count(network: torch.nn.Module) -> int:
    return sum(parameter.numel() for parameter in network.parameters())


@pytest.mark.parametrize("size", [16, 32])
def test_unet3d_keeps_the_shape_and_stays_in_network_range(size: int) -> None:
    torch.manual_seed(0)
    generator = build_network(TINY_UNET)
    # Large inputs push the pre-activation far out; tanh must still bound the output.
    source = 50.0 * torch.randn(2, 1, size, size, size)
    generated = generator(source)
    assert generated.shape == (2, 1, size, size, size)
    assert generated.min() >= -1.0 and generated.max() <= 1.0
    assert generated.std() > 0


def test_unet3d_rejects_sizes_its_strides_cannot_halve() -> None:
    generator = build_network(TINY_UNET)
    with pytest.raises(ConfigError, match="multiple of 4"):
        generator(torch.zeros(1, 1, 18, 16, 16))


@pytest.mark.parametrize(("size", "num_layers_d", "logits_size"), [(16, 2, 2), (32, 2, 6), (32, 3, 2)])
def test_patchgan3d_returns_a_logits_map(size: int, num_layers_d: int, logits_size: int) -> None:
    discriminator = build_network({"name": "patchgan3d", "channels": 8, "num_layers_d": num_layers_d})
    logits = discriminator(torch.randn(2, 1, size, size, size))
    assert isinstance(logits, torch.Tensor)
    assert logits.shape == (2, 1, logits_size, logits_size, logits_size)


def test_patchgan3d_can_return_its_intermediate_features() -> None:
    discriminator = build_network({**TINY_PATCHGAN, "in_channels": 2})
    volume = torch.randn(1, 2, 16, 16, 16)
    logits, features = discriminator(volume, return_features=True)
    assert torch.equal(logits, discriminator(volume))
    # first conv + num_layers_d convs, doubling channels from 8
    assert [feature.shape[1] for feature in features] == [8, 16, 32]


@pytest.mark.parametrize("size", [16, 32])
def test_densenet3d_returns_class_logits(size: int) -> None:
    classifier = build_network({**TINY_DENSENET, "num_classes": 3})
    assert classifier(torch.randn(2, 1, size, size, size)).shape == (2, 3)


def test_parameter_counts_match_the_architecture() -> None:
    # Pinned so an accidental change of a default (width, depth, norm) shows up in review.
    assert parameter_count(build_network(TINY_UNET)) == 34517  # batch norm (affine) since window-invariant inference
    assert parameter_count(build_network(TINY_PATCHGAN)) == 43529
    default_unet = parameter_count(build_network({"name": "unet3d"}))
    default_patchgan = parameter_count(build_network({"name": "patchgan3d"}))
    assert default_unet == 1186972
    assert default_patchgan == 2770977
    # the classifier defaults are small, far below DenseNet-121's ~11M
    assert parameter_count(build_network({"name": "densenet3d"})) < 200_000


@pytest.mark.parametrize("spec", [TINY_UNET, TINY_PATCHGAN, TINY_DENSENET], ids=lambda spec: spec["name"])
def test_channels_last_bf16_autocast_matches_fp32(spec: dict) -> None:
    torch.manual_seed(0)
    network = build_network(spec).eval()
    volume = torch.randn(2, 1, 16, 16, 16)
    with torch.no_grad():
        reference = network(volume)
        network = network.to(memory_format=torch.channels_last_3d)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            reduced = network(volume.to(memory_format=torch.channels_last_3d))
    assert reduced.shape == reference.shape
    assert torch.isfinite(reduced.float()).all()
    # bf16 keeps ~3 significant digits; allow a few percent of the output scale.
    scale = reference.abs().max().item()
    assert (reduced.float() - reference).abs().max().item() < 0.1 * max(scale, 1e-3)
