"""Window-invariant translation of whole volumes, window by window.

Networks are trained on patches; a whole volume is translated window by window.
The volume is cut into equal *cores* of at most ``roi_size``; each core is fed
to the network with ``context`` voxels of its real neighbourhood on every side
where the volume has them (at the volume's own edge the window simply ends there,
as the whole volume would), and only the core of the output is kept (blended
where cores overlap). With a generator whose normalisation uses fixed
statistics (batch norm in eval mode), every output voxel then sees the
neighbourhood it would see in one whole-volume pass: the result does not depend
on the window size, overlap or window batch beyond float noise.

Why not MONAI's ``sliding_window_inference``: it needs one window size for all
windows, so context at the volume edge has to be invented by padding. Padding
with background cost ~9 HU of test MAE on a U-Net trained on 32^3 patches, whose
patches at the volume edge never saw such a border (docs/decisions.md); windows
that stop at the edge reproduce the whole-volume pass exactly. The blending
weights are still MONAI's (``compute_importance_map``).

The windows run on ``sw_device`` (the GPU when there is one) while the stitched
volume lives on ``device`` (the CPU by default), so GPU memory stays bounded by
the window batch and host memory by two volume-sized buffers.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import product

import torch
from monai.data.utils import compute_importance_map

from medgan.config.schema import InferenceConfig

Translator = Callable[[torch.Tensor], torch.Tensor]
"""Source batch ``(B, 1, D, H, W)`` in [-1, 1] -> target batch of the same shape in [-1, 1]."""

Box = tuple[slice, slice, slice]


@dataclass(frozen=True)
class Window:
    """One network input: the ``window`` box of the volume, whose ``core`` box is kept (``core_in_window`` in it)."""

    window: Box
    core: Box
    core_in_window: Box

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(box.stop - box.start for box in self.window)


@dataclass(frozen=True)
class SlidingWindowSettings:
    """How a volume is cut into windows and blended back.

    ``context`` 0 gives plain sliding windows (each window sees only its core).
    ``align``: windows are grown (into the volume) to a multiple of it, the data's
    ``divisible_by``, so that every window is a size the network accepts.
    """

    roi_size: tuple[int, int, int] = (256, 256, 256)
    overlap: float = 0.0
    mode: str = "gaussian"
    sw_batch_size: int = 1
    sigma_scale: float = 0.125
    context: int = 16
    align: int = 1

    @classmethod
    def from_config(cls, inference: InferenceConfig, **overrides: object) -> SlidingWindowSettings:
        """Settings from a run's ``inference`` config section (keyword overrides win, e.g. ``align``)."""
        values = {
            "roi_size": tuple(inference.roi_size),
            "overlap": inference.overlap,
            "mode": inference.mode,
            "sw_batch_size": inference.sw_batch_size,
            "context": inference.context,
        }
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls(**values)

    def core_size(self, volume_shape: tuple[int, ...]) -> tuple[int, int, int]:
        """The window core for a volume: each axis split into the fewest equal cores of at most ``roi_size``.

        An axis of 208 voxels with ``roi_size`` 96 gets three cores of 70 (rounded up
        to ``align``: 80), not three of 96 of which a third would be recomputed. An
        axis no longer than ``roi_size`` is one core: the whole axis.
        """
        return tuple(
            _balanced_core(int(roi), int(size), self.align)
            for roi, size in zip(self.roi_size, volume_shape, strict=True)
        )

    def windows(self, volume_shape: tuple[int, ...]) -> list[Window]:
        """Every window of a volume, cores in raster order (the cores cover the volume)."""
        per_axis = [
            [_axis_window(start, core, int(size), self.context, self.align) for start in _core_starts(core, size, self)]
            for core, size in zip(self.core_size(volume_shape), volume_shape, strict=True)
        ]
        return [
            Window(
                window=tuple(axis[0] for axis in combo),
                core=tuple(axis[1] for axis in combo),
                core_in_window=tuple(axis[2] for axis in combo),
            )
            for combo in product(*per_axis)
        ]

    def weight_map(self, core_shape: tuple[int, int, int]) -> torch.Tensor:
        """Blending weights of one core (gaussian or constant, MONAI's importance map)."""
        return compute_importance_map(core_shape, mode=self.mode, sigma_scale=self.sigma_scale, device="cpu")


def _balanced_core(roi: int, size: int, align: int) -> int:
    if size <= roi:
        return size
    count = math.ceil(size / roi)
    core = math.ceil(size / count)
    return min(roi, math.ceil(core / align) * align)


def _core_starts(core: int, size: int, settings: SlidingWindowSettings) -> list[int]:
    """Core start positions along one axis: stepped by ``core * (1 - overlap)``, the last one flush with the end."""
    step = max(1, int(core * (1.0 - settings.overlap)))
    starts = list(range(0, max(size - core, 0) + 1, step))
    if starts[-1] + core < size:
        starts.append(size - core)
    return starts


def _axis_window(start: int, core: int, size: int, context: int, align: int) -> tuple[slice, slice, slice]:
    """(window, core, core inside the window) along one axis: the core plus context, cut at the volume's edge.

    A window whose length is not a multiple of ``align`` grows further into the
    volume (more real context) until it is, or until it is the whole axis.
    """
    low, high = max(0, start - context), min(size, start + core + context)
    wanted = min(size, math.ceil((high - low) / align) * align)
    grow_high = min(wanted - (high - low), size - high)
    high += grow_high
    low -= wanted - (high - low)
    return slice(low, high), slice(start, start + core), slice(start - low, start - low + core)


def _batches(windows: list[Window], batch_size: int) -> Iterator[list[Window]]:
    """Windows grouped by shape (a batch stacks equal shapes), at most ``batch_size`` per group."""
    by_shape: dict[tuple[int, int, int], list[Window]] = defaultdict(list)
    for window in windows:
        by_shape[window.shape].append(window)
    for group in by_shape.values():
        for first in range(0, len(group), batch_size):
            yield group[first : first + batch_size]


def translate_volume(
    source_net: torch.Tensor,
    translator: Translator,
    settings: SlidingWindowSettings,
    *,
    sw_device: torch.device | str | None = None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Translate one network-range volume ``(1, D, H, W)`` or ``(1, 1, D, H, W)`` window by window.

    Returns a float32 tensor of the same shape on ``device``, without gradients or
    MONAI metadata (the caller keeps the geometry of its input).
    """
    if source_net.ndim not in (4, 5):
        raise ValueError(f"expected (1, D, H, W) or (1, 1, D, H, W), got shape {tuple(source_net.shape)}")
    batched = source_net.ndim == 5
    plain = source_net.as_tensor() if hasattr(source_net, "as_tensor") else source_net
    batch = (plain if batched else plain.unsqueeze(0)).to(dtype=torch.float32)
    sw_device = torch.device(sw_device) if sw_device is not None else batch.device
    spatial = tuple(batch.shape[2:])
    windows = settings.windows(spatial)
    core_weights = settings.weight_map(settings.core_size(spatial)).to(device)
    single_cover = _cores_tile(windows, spatial)
    output: torch.Tensor | None = None
    weight_sum = None if single_cover else torch.zeros((1, 1, *spatial), dtype=torch.float32, device=device)
    with torch.inference_mode():
        for group in _batches(windows, settings.sw_batch_size):
            inputs = torch.cat([batch[(slice(None), slice(None), *window.window)] for window in group]).to(sw_device)
            predicted = translator(inputs)
            if not isinstance(predicted, torch.Tensor):
                raise TypeError("the translator must return one tensor per window batch")
            predicted = predicted.as_tensor() if hasattr(predicted, "as_tensor") else predicted
            if output is None:
                output = torch.zeros((1, predicted.shape[1], *spatial), dtype=torch.float32, device=device)
            for index, window in enumerate(group):
                core = predicted[(slice(index, index + 1), slice(None), *window.core_in_window)].to(
                    device, torch.float32
                )
                target = (slice(None), slice(None), *window.core)
                if single_cover:
                    output[target] = core
                else:
                    output[target] += core * core_weights
                    weight_sum[target] += core_weights
        assert output is not None  # a volume has at least one window
        if weight_sum is not None:
            output /= weight_sum
    # A tensor made outside inference mode is an ordinary one, which later in-place
    # steps (e.g. the inverse transforms refilling a cropped border) may modify.
    volume = output.clone()
    del output
    return volume if batched else volume[0]


def _cores_tile(windows: list[Window], spatial: tuple[int, ...]) -> bool:
    """True when the cores cover every voxel exactly once (no blending needed)."""
    covered = sum(math.prod(box.stop - box.start for box in window.core) for window in windows)
    return covered == math.prod(spatial)
