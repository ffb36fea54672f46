"""The network registry builds networks by name and turns bad specs into ConfigErrors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from medgan.errors import ConfigError
from medgan.models import (
    DenseNet3DClassifier,
    PatchGAN3DDiscriminator,
    UNet3DGenerator,
    build_network,
    known_networks,
    network_arguments,
    register_network,
    registry,
)


def test_bundled_networks_are_registered() -> None:
    assert {"unet3d", "patchgan3d", "densenet3d"} <= set(known_networks())
    assert isinstance(build_network({"name": "unet3d"}), UNet3DGenerator)
    assert isinstance(build_network({"name": "patchgan3d"}), PatchGAN3DDiscriminator)
    assert isinstance(build_network({"name": "densenet3d"}), DenseNet3DClassifier)


def test_spec_kwargs_reach_the_constructor() -> None:
    generator = build_network(
        {"name": "unet3d", "in_channels": 2, "out_channels": 3, "channels": [4, 8], "strides": [2]}
    )
    assert generator.in_channels == 2
    assert generator.out_channels == 3
    assert generator(torch.zeros(1, 2, 8, 8, 8)).shape == (1, 3, 8, 8, 8)


def test_build_network_does_not_mutate_the_spec() -> None:
    spec = {"name": "patchgan3d", "channels": 4}
    build_network(spec)
    assert spec == {"name": "patchgan3d", "channels": 4}


def test_unknown_name_lists_the_known_networks() -> None:
    with pytest.raises(ConfigError) as caught:
        build_network({"name": "unet4d"})
    message = str(caught.value)
    assert "unet4d" in message
    assert "unet3d" in message and "patchgan3d" in message and "densenet3d" in message


def test_missing_name_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="name"):
        build_network({"channels": [8, 16]})


def test_unknown_argument_lists_the_valid_ones() -> None:
    with pytest.raises(ConfigError) as caught:
        build_network({"name": "unet3d", "chanels": [8, 16]})
    message = str(caught.value)
    assert "chanels" in message and "unet3d" in message
    for arg in network_arguments("unet3d"):
        assert arg in message


def test_bad_value_is_a_config_error_naming_the_network() -> None:
    with pytest.raises(ConfigError, match="unet3d"):
        build_network({"name": "unet3d", "channels": [8, 16, 32], "strides": [2]})


def test_register_refuses_a_taken_name() -> None:
    with pytest.raises(ValueError, match="unet3d"):

        @register_network("unet3d")
        class Impostor(nn.Module):
            pass


def test_register_adds_a_buildable_network(monkeypatch: pytest.MonkeyPatch) -> None:
    # a private copy of the registry, so the test network does not leak into other tests
    monkeypatch.setattr(registry, "_NETWORKS", dict(registry._NETWORKS))

    @register_network("test_identity3d")
    class Identity3D(nn.Module):
        def __init__(self, scale: float = 1.0) -> None:
            super().__init__()
            self.scale = scale

        def forward(self, volume: torch.Tensor) -> torch.Tensor:
            return volume * self.scale

    network = build_network({"name": "test_identity3d", "scale": 2.0})
    assert torch.equal(network(torch.ones(1)), torch.full((1,), 2.0))
    assert "test_identity3d" in known_networks()
