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

import logging
from abc import abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
from torch import nn

from medgan.data.body import outline_threshold
from medgan.data.presets import get_preset
from medgan.data.streams import PatchGroup, PatchStream, PatchStreamSpec, StreamImage, load_whole_volumes
from medgan.inference.plan import InferencePlan
from medgan.methods.base import GanMethod, InferenceContext, SampleVolume
from medgan.models import check_input_size

LOG = logging.getLogger(__name__)

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

        Runs :meth:`translate`, or the single network named ``network`` (e.g. CycleGAN's inverse ``F``),
        with the run's inference plan (windows with context, precision, channels-last) and, for
        :meth:`translate`, background outside the source's body mask. ``precision`` (training's) is
        not used: validation scores what the translate job gives.
        """

        plan = self.inference_plan(source.device)

        def predictor(windows: torch.Tensor) -> torch.Tensor:
            return networks[network](windows) if network else self.translate(networks, windows)

        prediction = plan.translate(source, predictor, device=source.device)
        if network is None:  # the inverse network's output is the source domain: no air rule for it
            target = self.config.data.target_modality
            if get_preset(target).background is not None:
                prediction = plan.fill_air(prediction, source, self._body_threshold(), self.background_net(target))
        return prediction

    def background_net(self, modality: str) -> float:
        """Network-range value of ``modality``'s air (CT: -1000 HU; else the padding value)."""
        preset = get_preset(modality)
        if preset.background is None:
            return preset.pad_value
        return float(preset.to_network(torch.tensor(preset.background)))

    def body_only(self, images: torch.Tensor, body_mask: torch.Tensor | None, modality: str) -> torch.Tensor:
        """``images`` with every voxel outside ``body_mask`` set to ``modality``'s air: what a critic judges.

        The translate job writes air outside the body, so a critic has nothing to
        learn there; without this it wins on the generator's grey background alone
        (measured: D accuracy 1.0 from the first hundred steps, docs/decisions.md).
        """
        if body_mask is None:
            return images
        return images * body_mask + self.background_net(modality) * (1.0 - body_mask)

    def inference_plan(self, device: torch.device) -> InferencePlan:
        """How whole volumes are translated on ``device``: the run's ``inference`` section, resolved."""
        return InferencePlan.from_config(self.config.inference, device, divisible_by=self.config.data.divisible_by)

    def _body_threshold(self) -> float:
        return outline_threshold(self.config.data.source_modality, self.config.data.body_threshold)

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
        rows |= {names[key]: self.target_row(outputs[key]) for key in ("prediction", "target")}
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
        """The generator must accept the training patch and every inference window (core + context).

        Window cores are ``inference.roi_size`` clipped to volumes padded to
        ``data.divisible_by``, so both sizes plus twice the context must suit it. A
        generator normalising per window (instance norm) is accepted with a warning:
        its output then depends on the window size.
        """
        inference, data = self.config.inference, self.config.data
        check_input_size(spec, data.patch_size, spec_key=spec_key, size_key="data.patch_size")
        with_context = "(+ 2 * inference.context)"
        for size, key in ((inference.roi_size, "inference.roi_size"), ((data.divisible_by,) * 3, "data.divisible_by")):
            window = tuple(int(edge) + 2 * inference.context for edge in size)
            check_input_size(spec, window, spec_key=spec_key, size_key=f"{key} {with_context}")
        if str(spec.get("norm", "")).lower() == "instance":
            LOG.warning(
                "%s uses instance norm: its statistics are computed per window, so translated volumes change "
                "with inference.roi_size / overlap (use norm: batch for window-invariant inference)",
                spec_key,
            )

    def check_discriminator_input(self, spec: Mapping[str, Any], spec_key: str = "model.discriminator") -> None:
        """A patch discriminator must accept the training patch."""
        check_input_size(spec, self.config.data.patch_size, spec_key=spec_key, size_key="data.patch_size")
