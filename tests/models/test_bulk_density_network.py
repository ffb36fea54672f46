"""The bulk-density network: MRI segmentation into air / soft tissue / bone, and its class values."""

from __future__ import annotations

import pytest
import torch

from medgan.errors import ConfigError
from medgan.models import BulkDensity3D, build_network
from medgan.models.bulk_density import AIR, BONE, SOFT_TISSUE, binary_closing, class_fractions


def shell_head(size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """A T1-like concentric head (network range) and its true classes.

    Brain (bright) r < 8, skull (dark) 8 <= r < 10, scalp (bright) 10 <= r < 12,
    air (dark) outside, plus a dark cavity of radius 5 in the middle (a sinus-like hole
    too big to be closed by radius 2).
    """
    axis = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    z, y, x = torch.meshgrid(axis, axis, axis, indexing="ij")
    radius = (x**2 + y**2 + z**2).sqrt()
    classes = torch.full((size,) * 3, AIR, dtype=torch.int64)
    classes[radius < 12] = SOFT_TISSUE
    classes[(radius >= 8) & (radius < 10)] = BONE
    mri = torch.where(classes == SOFT_TISSUE, 0.2, -1.0)
    cavity = radius < 5
    mri[cavity] = -1.0
    classes[cavity] = AIR
    return mri[None, None], classes[None, None]


def test_closing_bridges_narrow_gaps_only() -> None:
    mask = torch.zeros(1, 1, 1, 1, 20)
    mask[..., :5] = 1
    mask[..., 7:12] = 1  # a gap of 2 voxels, then a gap of 6
    mask[..., 18:] = 1
    closed = binary_closing(mask, radius=2)[0, 0, 0, 0]
    assert closed[5:7].eq(1).all()
    assert closed[12:18].eq(0).all()
    assert torch.equal(binary_closing(mask, radius=0), mask)


def test_segmentation_finds_air_soft_tissue_and_bone() -> None:
    mri, true_classes = shell_head()
    network = BulkDensity3D(dark_threshold=-0.8, closing_radius=2)
    classes = network.segment(mri)
    assert classes.shape == mri.shape and classes.dtype == torch.int64
    agreement = (classes == true_classes).float().mean().item()
    assert agreement > 0.97
    # the skull band is bone, the large cavity stays air, far outside is air
    centre = mri.shape[-1] // 2
    assert classes[0, 0, centre, centre, centre - 9] == BONE
    assert classes[0, 0, centre, centre, centre] == AIR
    assert classes[0, 0, 0, 0, 0] == AIR
    assert sum(class_fractions(classes)) == pytest.approx(1.0)


def test_forward_paints_class_values_and_is_differentiable() -> None:
    mri, _ = shell_head(16)
    network = build_network({"name": "bulk_density3d", "closing_radius": 2, "initial_value": 0.0})
    with torch.no_grad():
        network.class_values.copy_(torch.tensor([-0.9, -0.5, 1.7]))  # bone value beyond the range
    output = network(mri)
    classes = network.segment(mri)
    assert output.shape == mri.shape
    assert torch.allclose(output[classes == AIR], torch.tensor(-0.9))
    assert torch.allclose(output[classes == BONE], torch.tensor(1.0))  # clamped into [-1, 1]
    # straight-through clamp: the loss still pulls the out-of-range value back down
    output.sum().backward()
    assert network.class_values.grad[BONE] == (classes == BONE).sum()


def test_bad_arguments_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="closing_radius"):
        build_network({"name": "bulk_density3d", "closing_radius": -1})
    with pytest.raises(ConfigError, match="dark_threshold"):
        build_network({"name": "bulk_density3d", "dark_threshold": 5.0})


def test_multichannel_source_is_refused() -> None:
    with pytest.raises(ValueError, match="single-channel"):
        BulkDensity3D().segment(torch.zeros(1, 2, 8, 8, 8))
