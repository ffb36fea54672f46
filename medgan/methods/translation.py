"""What every source -> target translation method shares: its data, validation, samples and config checks.

pix2pix, cyclegan and bulk density differ in networks and losses but read the
same data (``data.source_key`` -> ``data.target_key``), validate the same way
(whole validation volumes translated by sliding window, exactly as the
translate job does, scored by MAE / SSIM / PSNR from the metric registry), and
show the same montage (source, prediction, target, |error|). Keeping that here
keeps it out of the engine, which knows no task, and out of each method.

Batches hold ``source`` and ``target`` ``(B, 1, D, H, W)`` in [-1, 1] and
``body_mask`` {0, 1}. Paired methods get voxel-aligned patches of one subject;
unpaired ones get ``source`` and ``target`` from different subjects and
``target_body_mask`` for the target patch.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
from torch import nn

from medgan.data.presets import get_preset
from medgan.data.streams import PatchGroup, PatchStream, PatchStreamSpec, StreamImage, load_whole_volumes
from medgan.inference.sliding_window import SlidingWindowSettings
from medgan.inference.sliding_window import translate_volume as sliding_window_translate
from medgan.methods.base import GanMethod, InferenceContext, SampleVolume
from medgan.models import check_input_size
from medgan.precision import autocast

NETWORK_WINDOW = (-1.0, 1.0)
ERROR_WINDOW = (0.0, 1.0)


class TranslationMethod(GanMethod):
    """Base of the translation methods: subclasses add networks, phases and :meth:`translate`."""

    pairing: ClassVar[Literal["paired", "unpaired"]] = "paired"

    @abstractmethod
    def translate(self, networks: Mapping[str, nn.Module], source_net: torch.Tensor) -> torch.Tensor:
        """Map a source batch ``(B, 1, D, H, W)`` in [-1, 1] to the target domain, same shape."""

    # ---- data -----------------------------------------------------------------------------------

    def _source(self) -> StreamImage:
        data = self.config.data
        return StreamImage("source", data.source_key, data.source_modality)

    def _target(self) -> StreamImage:
        data = self.config.data
        return StreamImage("target", data.target_key, data.target_modality)

    def stream_spec(self) -> PatchStreamSpec:
        """Paired: one group (source, target, body_mask); unpaired: source and target groups apart."""
        if self.pairing == "paired":
            return PatchStreamSpec((PatchGroup((self._source(), self._target()), body_mask="body_mask"),))
        return PatchStreamSpec(
            (
                PatchGroup((self._source(),), body_mask="body_mask"),
                PatchGroup((self._target(),), body_mask="target_body_mask"),
            )
        )

    def training_stream(self, cache_dir: Path | None) -> PatchStream:
        """Patches of the training split as :meth:`stream_spec` declares."""
        return PatchStream(self.stream_spec(), self.config.data, self.config.train.seed, cache_dir)

    # ---- validation -----------------------------------------------------------------------------

    def validation_set(self) -> Sequence[Mapping[str, torch.Tensor]]:
        """The first ``data.validation_volumes`` paired validation volumes, whole."""
        data = self.config.data
        group = PatchGroup((self._source(), self._target()), body_mask="body_mask")
        return load_whole_volumes(group, data, data.validation_split, data.validation_volumes)

    def translate_whole(
        self,
        networks: Mapping[str, nn.Module],
        source: torch.Tensor,
        precision: str,
        *,
        network: str | None = None,
    ) -> torch.Tensor:
        """Sliding-window translation of a ``(1, C, D, H, W)`` volume, exactly as the translate job does it.

        Runs :meth:`translate`, or the single network named ``network`` (e.g. CycleGAN's inverse ``F``).
        """

        def predictor(windows: torch.Tensor) -> torch.Tensor:
            with autocast(precision, windows.device):
                output = networks[network](windows) if network else self.translate(networks, windows)
                return output.float()

        settings = SlidingWindowSettings.from_config(self.config.inference)
        return sliding_window_translate(source, predictor, settings, device=source.device)

    def infer_outputs(
        self, networks: Mapping[str, nn.Module], item: Mapping[str, torch.Tensor], context: InferenceContext
    ) -> dict[str, torch.Tensor]:
        """source, prediction (the translated source), target and body_mask of one item."""
        source = item["source"].to(context.device)
        with torch.no_grad():
            prediction = self.translate_whole(networks, source, context.precision)
        return {
            "source": source,
            "prediction": prediction,
            "target": item["target"].to(context.device),
            "body_mask": item["body_mask"].to(context.device),
        }

    def validation_metrics(self) -> dict[str, str]:
        """MAE (network units, and physical units where the target has a fixed window), SSIM, PSNR."""
        metrics = {"mae_net": "mae_net", "ssim": "ssim", "psnr": "psnr"}
        target_preset = get_preset(self.config.data.target_modality)
        if target_preset.fixed_window is not None:
            metrics[f"mae_{target_preset.name}"] = "mae_physical"
        return metrics

    # ---- samples --------------------------------------------------------------------------------

    def _row_names(self) -> dict[str, str]:
        data = self.config.data
        return {
            "source": data.source_key,
            "prediction": f"{data.target_key} pred",
            "target": f"{data.target_key} real",
            "error": "|error| (net)",
        }

    def sample_names(self) -> tuple[str, ...]:
        """Source, prediction, target and |error| row names."""
        return tuple(self._row_names().values())

    def sample_volumes(self, outputs: Mapping[str, torch.Tensor]) -> dict[str, SampleVolume]:
        """Source (network range), prediction and target (physical units where fixed), |error|."""
        names = self._row_names()
        rows = {names["source"]: SampleVolume(outputs["source"][0, 0].float().cpu(), NETWORK_WINDOW)}
        rows |= {
            names[key]: self.target_row(outputs[key]) for key in ("prediction", "target")
        }
        error = (outputs["prediction"].float() - outputs["target"].float()).abs()[0, 0].cpu()
        rows[names["error"]] = SampleVolume(error, ERROR_WINDOW)
        return rows

    def target_row(self, volume_net: torch.Tensor) -> SampleVolume:
        """A target-domain volume for the montage: in physical units where its preset has a fixed window."""
        preset = get_preset(self.config.data.target_modality)
        volume = volume_net[0, 0].float().cpu()
        if preset.fixed_window is None:
            return SampleVolume(volume, NETWORK_WINDOW)
        window = (preset.fixed_window.low, preset.fixed_window.high)
        return SampleVolume(preset.from_network(volume), window)

    # ---- config checks --------------------------------------------------------------------------

    def check_generator_input(self, spec: Mapping[str, Any], spec_key: str = "model.generator") -> None:
        """The generator must accept the training patch and the sliding window."""
        check_input_size(spec, self.config.data.patch_size, spec_key=spec_key, size_key="data.patch_size")
        check_input_size(spec, self.config.inference.roi_size, spec_key=spec_key, size_key="inference.roi_size")

    def check_discriminator_input(self, spec: Mapping[str, Any], spec_key: str = "model.discriminator") -> None:
        """A patch discriminator must accept the training patch."""
        check_input_size(spec, self.config.data.patch_size, spec_key=spec_key, size_key="data.patch_size")
