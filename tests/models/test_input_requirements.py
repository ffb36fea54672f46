"""Every network's stated smallest input is the real one: a forward at the minimum works, one below it fails.

The minimums are derived from layer arithmetic (``input_requirement`` classmethods);
these tests check them against real forward passes in training mode, where
normalisation layers refuse 1-voxel maps, with tiny channel counts so they stay fast.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

from medgan.errors import ConfigError
from medgan.models import (
    InputRequirement,
    build_network,
    check_input_size,
    input_requirement,
    register_network,
    registry,
)

# any of these is "the network refused the input": torch's shape / statistics errors,
# or the UNet wrapper's own ConfigError for sizes that are not a stride multiple
REFUSED = (ValueError, RuntimeError, ConfigError)


def forward_cube(spec: dict[str, Any], edge: int, *, batch_size: int = 2) -> torch.Tensor:
    """One training-mode forward of the network ``spec`` on a (batch_size, C, edge, edge, edge) volume."""
    network = build_network(spec)
    network.train()
    in_channels = spec.get("in_channels", 1)
    torch.manual_seed(0)
    return network(torch.rand(batch_size, in_channels, edge, edge, edge) * 2 - 1)


PATCHGAN = {"name": "patchgan3d", "channels": 2}
UNET = {"name": "unet3d", "norm": "instance", "channels": [2, 2], "strides": [2], "num_res_units": 1}
DENSENET = {"name": "densenet3d", "init_features": 2, "growth_rate": 2, "bn_size": 1}

# (spec, the minimum edge the arithmetic must give, the multiple, batch size of the forwards).
# Batch norm is held to the instance-norm rule (see normalised_min_edge), which is exact
# for batch size 1, so its configurations run with batch size 1.
CASES = [
    pytest.param({**PATCHGAN, "num_layers_d": 1}, 6, 1, 2, id="patchgan-L1-k4-instance"),
    pytest.param({**PATCHGAN, "num_layers_d": 2}, 12, 1, 2, id="patchgan-L2-k4-instance"),
    pytest.param({**PATCHGAN, "num_layers_d": 3}, 24, 1, 2, id="patchgan-L3-k4-instance"),
    pytest.param({**PATCHGAN, "num_layers_d": 3, "kernel_size": 3}, 9, 1, 2, id="patchgan-L3-k3-instance"),
    pytest.param({**PATCHGAN, "num_layers_d": 2, "norm": "batch"}, 12, 1, 1, id="patchgan-L2-k4-batch"),
    pytest.param({**PATCHGAN, "num_layers_d": 2, "norm": None}, 12, 1, 2, id="patchgan-L2-k4-none"),
    pytest.param({**PATCHGAN, "num_layers_d": 3, "kernel_size": 3, "norm": None}, 1, 1, 2, id="patchgan-L3-k3-none"),
    pytest.param(UNET, 4, 2, 2, id="unet-s2-instance"),
    pytest.param({**UNET, "channels": [2, 2, 2, 2], "strides": [2, 2, 2]}, 16, 8, 2, id="unet-s222-instance"),
    pytest.param({**UNET, "channels": [2, 2, 2], "strides": [2, 3], "num_res_units": 0}, 12, 6, 2, id="unet-s23"),
    pytest.param({**UNET, "channels": [2, 2, 2], "strides": [2, 2], "norm": "batch"}, 8, 4, 1, id="unet-s22-batch"),
    pytest.param({**UNET, "norm": None}, 2, 2, 2, id="unet-s2-none"),
    pytest.param(DENSENET, 29, 1, 1, id="densenet-3blocks-batch"),
    pytest.param({**DENSENET, "norm": "instance"}, 29, 1, 2, id="densenet-3blocks-instance"),
    pytest.param({**DENSENET, "block_config": [2]}, 5, 1, 1, id="densenet-1block-batch"),
    pytest.param({"name": "bulk_density3d", "closing_radius": 3}, 1, 1, 2, id="bulk-density-r3"),
]


@pytest.mark.parametrize(("spec", "min_size", "multiple", "batch_size"), CASES)
def test_the_stated_minimum_is_the_real_one(
    spec: dict[str, Any], min_size: int, multiple: int, batch_size: int
) -> None:
    assert input_requirement(spec) == InputRequirement(min_size, multiple)
    output = forward_cube(spec, min_size, batch_size=batch_size)
    assert torch.isfinite(output).all()
    largest_invalid = min_size - multiple
    if largest_invalid >= 1:
        with pytest.raises(REFUSED):
            forward_cube(spec, largest_invalid, batch_size=batch_size)


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param({**PATCHGAN, "num_layers_d": 3}, id="patchgan"),
        pytest.param({**UNET, "channels": [2, 2, 2], "strides": [2, 2]}, id="unet"),
        pytest.param(DENSENET, id="densenet"),
    ],
)
def test_sizes_above_the_minimum_work_as_stated(spec: dict[str, Any]) -> None:
    requirement = input_requirement(spec)
    accepted = requirement.min_size + requirement.multiple
    forward_cube(spec, accepted)
    if requirement.multiple > 1:
        with pytest.raises(REFUSED):
            forward_cube(spec, requirement.min_size + 1)


def test_the_default_configs() -> None:
    assert input_requirement({"name": "unet3d"}) == InputRequirement(16, 8)
    assert input_requirement({"name": "patchgan3d", "channels": 16}) == InputRequirement(24)
    assert input_requirement({"name": "patchgan3d", "channels": 16, "num_layers_d": 2}) == InputRequirement(12)
    assert input_requirement({"name": "densenet3d"}) == InputRequirement(29)
    assert input_requirement({"name": "bulk_density3d"}) == InputRequirement(1)


def test_check_names_the_keys_the_size_and_the_fix() -> None:
    spec = {"name": "patchgan3d", "channels": 16, "num_layers_d": 3}
    with pytest.raises(ConfigError) as caught:
        check_input_size(spec, [16, 16, 16], spec_key="model.discriminator", size_key="data.patch_size")
    error = caught.value
    for part in ("patchgan3d", "model.discriminator", "data.patch_size", "[16, 16, 16]", "24"):
        assert part in error.problem
    assert error.fix is not None
    assert "data.patch_size to at least [24, 24, 24]" in error.fix
    assert "model.discriminator.num_layers_d to 2" in error.fix
    # the suggested shallower network really takes the patch
    forward_cube({**spec, "channels": 2, "num_layers_d": 2}, 16)


def test_check_names_the_multiple_and_a_shallower_unet() -> None:
    with pytest.raises(ConfigError) as caught:
        check_input_size({"name": "unet3d"}, [20, 24, 24], spec_key="model.generator", size_key="data.patch_size")
    error = caught.value
    assert "multiple of 8" in error.problem and "20" in error.problem and "16" in error.problem
    assert error.fix is not None
    assert "data.patch_size to [24, 24, 24]" in error.fix
    assert "model.generator.channels to [16, 32, 64] and model.generator.strides to [2, 2]" in error.fix


def test_check_without_a_shallower_fit_only_suggests_the_size() -> None:
    with pytest.raises(ConfigError) as caught:
        check_input_size(
            {"name": "patchgan3d", "num_layers_d": 1}, [4, 8, 8], spec_key="model.discriminator", size_key="size"
        )
    assert caught.value.fix == "set size to at least [6, 8, 8]"


def test_check_accepts_valid_sizes() -> None:
    check_input_size({"name": "patchgan3d"}, [24, 32, 40], spec_key="model.discriminator", size_key="data.patch_size")
    check_input_size({"name": "unet3d"}, (16, 24, 64), spec_key="model.generator", size_key="data.patch_size")
    check_input_size({"name": "bulk_density3d"}, [1, 1, 1], spec_key="model.generator", size_key="data.patch_size")


@pytest.mark.parametrize(
    "bad_spec",
    [
        pytest.param({"channels": 16}, id="no-name"),
        pytest.param({"name": "patchgan2d"}, id="unknown-name"),
        pytest.param({"name": "patchgan3d", "num_layers": 2}, id="unknown-argument"),
        pytest.param(["patchgan3d"], id="not-a-mapping"),
    ],
)
def test_bad_specs_are_config_errors(bad_spec: Any) -> None:
    with pytest.raises(ConfigError):
        input_requirement(bad_spec)
    with pytest.raises(ConfigError):
        check_input_size(bad_spec, [32, 32, 32], spec_key="model.discriminator", size_key="data.patch_size")


def test_unknown_name_lists_the_known_networks() -> None:
    with pytest.raises(ConfigError, match="patchgan3d"):
        input_requirement({"name": "patchgan2d"})


def test_a_network_without_the_classmethod_accepts_any_size(monkeypatch: pytest.MonkeyPatch) -> None:
    # a private copy of the registry, so the test network does not leak into other tests
    monkeypatch.setattr(registry, "_NETWORKS", dict(registry._NETWORKS))

    @register_network("test_plain3d")
    class Plain3D(nn.Module):
        def __init__(self, scale: float = 1.0) -> None:
            super().__init__()
            self.scale = scale

    assert input_requirement({"name": "test_plain3d"}) == InputRequirement(1, 1)
    check_input_size({"name": "test_plain3d"}, [1, 1, 1], spec_key="model.generator", size_key="data.patch_size")


def test_the_classmethod_gets_the_spec_arguments_and_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_NETWORKS", dict(registry._NETWORKS))
    received: dict[str, Any] = {}

    @register_network("test_recording3d")
    class Recording3D(nn.Module):
        def __init__(self, depth: int, width: int = 4) -> None:
            super().__init__()

        @classmethod
        def input_requirement(cls, **constructor_arguments: Any) -> InputRequirement:
            received.update(constructor_arguments)
            return InputRequirement(2 ** constructor_arguments["depth"])

    assert input_requirement({"name": "test_recording3d", "depth": 3}) == InputRequirement(8)
    assert received == {"depth": 3, "width": 4}
    # a required argument left out is a ConfigError, as when building
    with pytest.raises(ConfigError, match="depth"):
        input_requirement({"name": "test_recording3d"})


def test_requirement_helpers() -> None:
    requirement = InputRequirement(16, 8)
    assert requirement.accepts([16, 24, 64])
    assert not requirement.accepts([16, 20, 64])
    assert not requirement.accepts([8, 16, 16])
    assert requirement.smallest_accepted([8, 20, 40]) == [16, 24, 40]
    with pytest.raises(ValueError):
        InputRequirement(0)
