"""How a trained network is run over whole volumes: windows, precision, memory format, air.

The ``inference`` config section says what the user asked for (``auto`` allowed);
an :class:`InferencePlan` is what will actually happen on this machine, resolved
once, so the translate job, validation and the benchmarks run the same path and
can say which one it was (:meth:`InferencePlan.describe`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn

from medgan.config.schema import InferenceConfig
from medgan.inference.air import fill_outside_body, source_body_mask
from medgan.inference.sliding_window import SlidingWindowSettings, Translator, translate_volume
from medgan.precision import autocast, cpu_bf16_name, resolve_inference_precision


@dataclass(frozen=True)
class InferencePlan:
    """The resolved inference path: window settings, fp32 / bf16, channels-last or not, air fill or not."""

    window: SlidingWindowSettings
    precision: str = "fp32"
    channels_last: bool = False
    air_outside_body: bool = False

    @classmethod
    def from_config(
        cls, inference: InferenceConfig, device: torch.device | str, *, divisible_by: int = 1
    ) -> InferencePlan:
        """Resolve ``auto`` settings for ``device``: bf16 where it is fast (CUDA, AMX CPUs); channels-last on.

        ``divisible_by`` (the data's) aligns the window cores, so windows stay sizes the network takes.

        channels-last 3D was faster on the CPU for fp32 and bf16 alike (docs/decisions.md), and is
        cuDNN's preferred layout for bf16 3D convolutions, so ``auto`` turns it on everywhere.
        """
        device = torch.device(device)
        channels_last = True if inference.channels_last == "auto" else bool(inference.channels_last)
        return cls(
            window=SlidingWindowSettings.from_config(inference, align=divisible_by),
            precision=resolve_inference_precision(inference.precision, device),
            channels_last=channels_last,
            air_outside_body=inference.air_outside_body,
        )

    @property
    def memory_format(self) -> torch.memory_format:
        """The memory format windows (and networks, see :meth:`prepare`) are laid out in."""
        return torch.channels_last_3d if self.channels_last else torch.contiguous_format

    def prepare(self, networks: Iterable[nn.Module]) -> None:
        """Lay the networks' weights out in :attr:`memory_format` (once, before translating)."""
        for network in networks:
            network.to(memory_format=self.memory_format)

    def predictor(self, translator: Translator) -> Translator:
        """``translator`` run on windows in this plan's memory format and precision, returning float32."""

        def predict(windows: torch.Tensor) -> torch.Tensor:
            windows = windows.contiguous(memory_format=self.memory_format)
            with autocast(self.precision, windows.device):
                output = translator(windows)
            return output.float().contiguous()

        return predict

    def translate(
        self,
        source_net: torch.Tensor,
        translator: Translator,
        *,
        sw_device: torch.device | str | None = None,
        device: torch.device | str = "cpu",
    ) -> torch.Tensor:
        """Window-by-window translation of a network-range volume (see :func:`translate_volume`)."""
        return translate_volume(source_net, self.predictor(translator), self.window, sw_device=sw_device, device=device)

    def fill_air(
        self, prediction_net: torch.Tensor, source_net: torch.Tensor, threshold: float, background_net: float
    ) -> torch.Tensor:
        """In network range: outside the source's body mask the prediction becomes ``background_net``."""
        if not self.air_outside_body:
            return prediction_net
        return fill_outside_body(prediction_net, source_body_mask(source_net, threshold), background_net)

    def describe(self) -> str:
        """One line for logs and reports, e.g. ``cores <= 256^3 + 16 context, overlap 0, bf16 (CPU: AMX), ...``."""
        roi = self.window.roi_size
        size = f"{roi[0]}^3" if len(set(roi)) == 1 else "x".join(map(str, roi))
        cpu = cpu_bf16_name()
        return (
            f"cores <= {size} + {self.window.context} context, overlap {self.window.overlap:g}, "
            f"sw_batch_size {self.window.sw_batch_size}, {self.precision} (CPU: {cpu}), "
            f"{'channels-last' if self.channels_last else 'contiguous'}, "
            f"air outside body {'on' if self.air_outside_body else 'off'}"
        )
