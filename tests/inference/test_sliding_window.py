"""Sliding-window translation: blending reproduces whole-volume results, shapes are kept."""

from __future__ import annotations

import math

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
    assert settings.context == config.context and settings.align == 1
    assert SlidingWindowSettings.from_config(config, align=16).align == 16


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


def whole_volume(network: nn.Module, source_net: torch.Tensor) -> torch.Tensor:
    """The reference: the whole volume in one pass."""
    with torch.no_grad():
        return network(source_net[None])[0]


@pytest.mark.parametrize(
    ("roi", "overlap", "sw_batch_size", "align"), [(8, 0.5, 1, 1), (12, 0.0, 3, 1), (16, 0.25, 2, 1), (8, 0.0, 2, 4)]
)
def test_with_enough_context_the_result_does_not_depend_on_the_windows(
    roi: int, overlap: float, sw_batch_size: int, align: int
) -> None:
    """Context >= the receptive radius: every window setting gives the whole-volume result, edges included."""
    network = local_network()
    source_net = torch.rand(1, 24, 28, 20) * 2 - 1
    settings = SlidingWindowSettings(
        roi_size=(roi,) * 3, overlap=overlap, sw_batch_size=sw_batch_size, context=4, align=align
    )
    translated = translate_volume(source_net, network, settings)
    torch.testing.assert_close(translated, whole_volume(network, source_net), atol=1e-5, rtol=1e-5)


def test_windows_stop_at_the_volume_edge_and_grow_inward_to_the_alignment() -> None:
    settings = SlidingWindowSettings(roi_size=(16, 16, 16), context=4, align=8)
    windows = settings.windows((40, 16, 40))
    assert len(windows) == 9  # 40 = 3 cores of 14 -> 16 (aligned); 16 = one core
    for window in windows:
        assert all(box.start >= 0 and box.stop <= size for box, size in zip(window.window, (40, 16, 40), strict=True))
        assert all((box.stop - box.start) % 8 == 0 or box.stop - box.start == 16 for box in window.window)
        core = tuple(
            slice(w.start + c.start, w.start + c.stop)
            for w, c in zip(window.window, window.core_in_window, strict=True)
        )
        assert core == window.core
    first_axis = sorted({(w.window[0].start, w.window[0].stop) for w in windows})
    assert first_axis == [(0, 24), (12, 36), (16, 40)]  # cores 0, 16, 24 (the last flush); edge windows grown inward


def test_without_context_window_borders_change_the_result() -> None:
    """Why the context exists: each window's zero padding shows through at its borders."""
    network = local_network()
    source_net = torch.rand(1, 24, 24, 24) * 2 - 1
    small = translate_volume(source_net, network, SlidingWindowSettings(roi_size=(8,) * 3, overlap=0.5, context=0))
    whole = translate_volume(source_net, network, SlidingWindowSettings(roi_size=(24,) * 3, context=0))
    assert float((small - whole).abs().mean()) > 1e-3


def test_overlapping_cores_blend_with_the_core_weights() -> None:
    """Overlap: cores are blended (gaussian weights) and still reproduce a pointwise network exactly."""
    settings = SlidingWindowSettings(roi_size=(16, 16, 16), overlap=0.5, context=2)
    weights = settings.weight_map(settings.core_size((32, 12, 32)))
    assert tuple(weights.shape) == (16, 12, 16)  # the core is clipped to the 12-voxel axis
    assert float(weights.min()) > 0.0 and float(weights[8, 6, 8]) > float(weights[0, 0, 0])
    assert len(settings.windows((32, 12, 32))) == 9


@pytest.mark.parametrize(
    ("roi", "size", "align", "core"),
    [(96, 208, 16, 80), (96, 208, 1, 70), (96, 256, 16, 96), (256, 200, 16, 200), (128, 200, 8, 104), (16, 40, 1, 14)],
)
def test_axes_are_split_into_equal_cores(roi: int, size: int, align: int, core: int) -> None:
    """An axis longer than roi_size is cut into the fewest equal cores, not full cores and a sliver."""
    settings = SlidingWindowSettings(roi_size=(roi,) * 3, context=16, align=align)
    assert settings.core_size((size, size, size)) == (core,) * 3
    largest = max(window.shape[0] for window in settings.windows((size, 8, 8)))
    assert largest <= min(size, core + 32)  # a core plus its context, cut at the volume's edges
    assert math.ceil(size / core) == math.ceil(size / roi)  # no more windows than full cores would need


def test_bad_shape_is_refused() -> None:
    with pytest.raises(ValueError, match="expected"):
        translate_volume(torch.zeros(8, 8, 8), pointwise_network(), SlidingWindowSettings())
