"""Sliding-window translation: blending reproduces whole-volume results, shapes are kept."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from medgan.config.schema import InferenceConfig
from medgan.inference import SlidingWindowSettings, translate_volume


def pointwise_network(seed: int = 0) -> nn.Module:
    """A real network whose output at a voxel depends on that voxel only (1x1x1 conv + tanh)."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv3d(1, 4, 1), nn.ReLU(), nn.Conv3d(4, 1, 1), nn.Tanh()).eval()


@pytest.mark.parametrize(
    ("roi", "overlap", "mode"), [(8, 0.5, "gaussian"), (12, 0.25, "constant"), (16, 0.0, "gaussian")]
)
def test_windows_blend_to_the_whole_volume_result(roi: int, overlap: float, mode: str) -> None:
    network = pointwise_network()
    source_net = torch.rand(1, 21, 26, 19) * 2 - 1
    settings = SlidingWindowSettings(roi_size=(roi,) * 3, overlap=overlap, mode=mode, sw_batch_size=3)
    translated = translate_volume(source_net, network, settings)
    with torch.no_grad():
        expected = network(source_net[None])[0]
    assert translated.shape == source_net.shape and translated.dtype == torch.float32
    torch.testing.assert_close(translated, expected, atol=1e-5, rtol=1e-5)


def test_volume_smaller_than_window_keeps_its_shape_and_batch_form() -> None:
    network = pointwise_network(1)
    source_net = torch.rand(1, 1, 10, 7, 13) * 2 - 1
    translated = translate_volume(source_net, network, SlidingWindowSettings(roi_size=(16, 16, 16)))
    assert translated.shape == (1, 1, 10, 7, 13)
    with torch.no_grad():
        torch.testing.assert_close(translated, network(source_net), atol=1e-5, rtol=1e-5)
    translated[..., 0] = -1.0  # an ordinary tensor (not an inference tensor): later steps may edit it
    assert not translated.requires_grad


def test_settings_follow_the_inference_config() -> None:
    config = InferenceConfig(roi_size=(16, 24, 32), overlap=0.25, mode="constant", sw_batch_size=4)
    settings = SlidingWindowSettings.from_config(config)
    assert (settings.roi_size, settings.overlap, settings.mode, settings.sw_batch_size) == (
        (16, 24, 32),
        0.25,
        "constant",
        4,
    )
    assert SlidingWindowSettings.from_config(config, sw_batch_size=1, overlap=None).sw_batch_size == 1
    assert settings.context == config.context and settings.pad_value == -1.0


def local_network(seed: int = 0) -> nn.Module:
    """Three 3x3x3 convs: each output voxel depends on the input within 3 voxels (receptive radius 3)."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv3d(1, 4, 3, padding=1),
        nn.ReLU(),
        nn.Conv3d(4, 4, 3, padding=1),
        nn.ReLU(),
        nn.Conv3d(4, 1, 3, padding=1),
    ).eval()


def whole_volume_with_background_border(network: nn.Module, source_net: torch.Tensor, border: int) -> torch.Tensor:
    """The reference: the whole volume at once, surrounded by ``border`` voxels of background (-1)."""
    padded = torch.nn.functional.pad(source_net[None], (border,) * 6, value=-1.0)
    with torch.no_grad():
        out = network(padded)[0]
    return out[:, border:-border, border:-border, border:-border]


@pytest.mark.parametrize(("roi", "overlap", "sw_batch_size"), [(8, 0.5, 1), (12, 0.0, 3), (16, 0.25, 2), (64, 0.0, 1)])
def test_with_enough_context_the_result_does_not_depend_on_the_windows(
    roi: int, overlap: float, sw_batch_size: int
) -> None:
    """Context >= the receptive radius: every window setting gives the whole-volume result."""
    network = local_network()
    source_net = torch.rand(1, 21, 26, 19) * 2 - 1
    settings = SlidingWindowSettings(roi_size=(roi,) * 3, overlap=overlap, sw_batch_size=sw_batch_size, context=4)
    translated = translate_volume(source_net, network, settings)
    expected = whole_volume_with_background_border(network, source_net, border=4)
    torch.testing.assert_close(translated, expected, atol=1e-5, rtol=1e-5)


def test_without_context_window_borders_change_the_result() -> None:
    """Why the context exists: each window's zero padding shows through at its borders."""
    network = local_network()
    source_net = torch.rand(1, 24, 24, 24) * 2 - 1
    small = translate_volume(source_net, network, SlidingWindowSettings(roi_size=(8,) * 3, overlap=0.5, context=0))
    whole = translate_volume(source_net, network, SlidingWindowSettings(roi_size=(24,) * 3, context=0))
    assert float((small - whole).abs().mean()) > 1e-3


def test_weight_map_blends_the_core_only() -> None:
    settings = SlidingWindowSettings(roi_size=(16, 16, 16), context=4)
    weights = settings.weight_map((40, 12, 40))
    assert tuple(weights.shape) == (24, 20, 24)  # the core is clipped to the 12-voxel axis
    assert float(weights[:4].abs().max()) == 0.0 and float(weights[4:20, 4:16, 4:20].min()) > 0.0


def test_bad_shape_is_refused() -> None:
    with pytest.raises(ValueError, match="expected"):
        translate_volume(torch.zeros(8, 8, 8), pointwise_network(), SlidingWindowSettings())
