"""Window-invariant sliding-window translation of whole volumes (MONAI's ``sliding_window_inference``).

Networks are trained on patches; a whole volume is translated window by window.
Each window *core* (``roi_size``, clipped to the volume) is fed to the network
with ``context`` voxels of its real neighbourhood on every side (the volume is
padded with background for the outermost windows), and only the core of the
output is kept (blended where cores overlap). With a generator whose
normalisation uses fixed statistics (batch norm in eval mode), every output voxel
then sees the same neighbourhood whatever the window size, overlap or window
batch: the result does not depend on those speed settings beyond float noise
(measured in docs/decisions.md; with 32^3 training patches, 16 voxels of context
brought the 32^3 vs whole-volume difference from 31 HU to ~1 HU on the test heads).

The windows run on ``sw_device`` (the GPU when there is one) while the stitched
volume lives on ``device`` (the CPU by default), so GPU memory stays bounded by
the window batch and host memory by two volume-sized buffers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from monai.data.utils import compute_importance_map
from monai.inferers import sliding_window_inference

from medgan.config.schema import InferenceConfig

Translator = Callable[[torch.Tensor], torch.Tensor]
"""Source batch ``(B, 1, D, H, W)`` in [-1, 1] -> target batch of the same shape in [-1, 1]."""


@dataclass(frozen=True)
class SlidingWindowSettings:
    """How a volume is cut into windows and blended back.

    ``pad_value`` fills the border around the volume (the context of the
    outermost windows); -1 is background in network range (0 would be mid-grey
    tissue). ``context`` 0 gives plain sliding windows (each window sees only itself).
    """

    roi_size: tuple[int, int, int] = (96, 96, 96)
    overlap: float = 0.0
    mode: str = "gaussian"
    sw_batch_size: int = 1
    sigma_scale: float = 0.125
    pad_value: float = -1.0
    context: int = 16

    @classmethod
    def from_config(cls, inference: InferenceConfig, **overrides: object) -> SlidingWindowSettings:
        """Settings from a run's ``inference`` config section (keyword overrides win)."""
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
        """The window core for a volume: ``roi_size`` clipped to the volume on each axis."""
        return tuple(min(int(roi), int(size)) for roi, size in zip(self.roi_size, volume_shape, strict=True))

    def window_size(self, volume_shape: tuple[int, ...]) -> tuple[int, int, int]:
        """What the network sees per window: the core plus ``context`` on both sides."""
        return tuple(core + 2 * self.context for core in self.core_size(volume_shape))

    def weight_map(self, volume_shape: tuple[int, ...]) -> torch.Tensor:
        """Blending weights of one window: the core's (gaussian or constant) weights, 0 in the context."""
        core = self.core_size(volume_shape)
        core_weights = compute_importance_map(core, mode=self.mode, sigma_scale=self.sigma_scale, device="cpu")
        weights = torch.zeros(self.window_size(volume_shape), dtype=core_weights.dtype)
        start = self.context
        weights[start : start + core[0], start : start + core[1], start : start + core[2]] = core_weights
        return weights

    def window_overlaps(self, volume_shape: tuple[int, ...]) -> list[float]:
        """MONAI overlaps (per axis) that step whole windows by the core's step ``core * (1 - overlap)``.

        MONAI steps by ``int(window * (1 - overlap))``; the half voxel keeps the
        float rounding from landing one voxel short.
        """
        overlaps = []
        for core, window in zip(self.core_size(volume_shape), self.window_size(volume_shape), strict=True):
            step = max(1, int(core * (1.0 - self.overlap)))
            overlaps.append(0.0 if step >= window else 1.0 - (step + 0.5) / window)
        return overlaps


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
    context = settings.context
    padded = F.pad(batch, (context,) * 6, value=settings.pad_value) if context else batch
    with torch.inference_mode():
        stitched = sliding_window_inference(
            padded,
            settings.window_size(spatial),
            settings.sw_batch_size,
            translator,
            overlap=settings.window_overlaps(spatial),
            mode="constant",  # the weights are the core's: roi_weight_map
            roi_weight_map=settings.weight_map(spatial),
            padding_mode="constant",
            cval=settings.pad_value,
            sw_device=sw_device,
            device=device,
        )
    if isinstance(stitched, tuple | list | dict):
        raise TypeError("the translator must return one tensor per window batch")
    stitched = stitched.as_tensor() if hasattr(stitched, "as_tensor") else stitched
    core = stitched[..., context : context + spatial[0], context : context + spatial[1], context : context + spatial[2]]
    # A copy made outside inference mode is an ordinary tensor, which later in-place
    # steps (e.g. the inverse transforms refilling a cropped border) may modify.
    volume = core.to(dtype=torch.float32).clone()
    del stitched, core
    return volume if batched else volume[0]
