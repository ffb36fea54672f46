"""Sliding-window translation of whole volumes with MONAI's ``SlidingWindowInferer``.

Networks are trained on patches; a whole volume is translated window by window
(gaussian-blended where windows overlap, so seams do not show). The windows run
on ``sw_device`` (the GPU when there is one) while the stitched volume lives on
``device`` (the CPU by default), so GPU memory stays bounded by the window batch
and host memory by two volume-sized buffers (MONAI's output and weight maps).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from monai.inferers import SlidingWindowInferer

from medgan.config.schema import InferenceConfig

Translator = Callable[[torch.Tensor], torch.Tensor]
"""Source batch ``(B, 1, D, H, W)`` in [-1, 1] -> target batch of the same shape in [-1, 1]."""


@dataclass(frozen=True)
class SlidingWindowSettings:
    """How a volume is cut into windows and blended back.

    ``pad_value`` fills the border when a volume is smaller than a window; -1 is
    background in network range (MONAI's default 0 would be mid-grey tissue).
    """

    roi_size: tuple[int, int, int] = (32, 32, 32)
    overlap: float = 0.5
    mode: str = "gaussian"
    sw_batch_size: int = 2
    sigma_scale: float = 0.125
    pad_value: float = -1.0

    @classmethod
    def from_config(cls, inference: InferenceConfig, **overrides: object) -> SlidingWindowSettings:
        """Settings from a run's ``inference`` config section (keyword overrides win)."""
        values = {
            "roi_size": tuple(inference.roi_size),
            "overlap": inference.overlap,
            "mode": inference.mode,
            "sw_batch_size": inference.sw_batch_size,
        }
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls(**values)

    def inferer(
        self, *, sw_device: torch.device | str | None = None, device: torch.device | str | None = "cpu"
    ) -> SlidingWindowInferer:
        """A MONAI inferer running windows on ``sw_device`` and stitching on ``device``."""
        return SlidingWindowInferer(
            roi_size=self.roi_size,
            sw_batch_size=self.sw_batch_size,
            overlap=self.overlap,
            mode=self.mode,
            sigma_scale=self.sigma_scale,
            padding_mode="constant",
            cval=self.pad_value,
            sw_device=sw_device,
            device=device,
        )


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
    with torch.inference_mode():
        stitched = settings.inferer(sw_device=sw_device, device=device)(batch, translator)
    if isinstance(stitched, tuple | list | dict):
        raise TypeError("the translator must return one tensor per window batch")
    stitched = stitched.as_tensor() if hasattr(stitched, "as_tensor") else stitched
    # A copy made outside inference mode is an ordinary tensor, which later in-place
    # steps (e.g. the inverse transforms refilling a cropped border) may modify.
    volume = stitched.to(dtype=torch.float32).clone()
    del stitched
    return volume if batched else volume[0]
