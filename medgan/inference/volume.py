"""Translate one image file: preprocess, sliding-window translate, back to the file's grid and units.

This is the per-volume half of the translate job. The source is preprocessed with
the same invertible chain training used (:func:`medgan.data.build_inference_transforms`),
translated window by window, and taken back with ``Invertd``
(:func:`medgan.data.invert_to_source`): the result has the input file's exact
shape and affine and is in the target's physical units (HU for CT).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from monai.data import MetaTensor
from monai.transforms import Compose, LoadImaged

from medgan.config.schema import ExperimentConfig
from medgan.data import build_inference_transforms, invert_to_source
from medgan.data.body import outline_threshold
from medgan.data.intensity import META_HIGH, META_LOW, IntensityWindow
from medgan.data.presets import get_preset
from medgan.errors import medgan_error_in
from medgan.inference.air import fill_outside_body, source_body_mask
from medgan.inference.plan import InferencePlan
from medgan.inference.sliding_window import SlidingWindowSettings, Translator
from medgan.io import ReadOptions, read_volume, read_warnings_of

SourceCheck = Callable[[MetaTensor, Path], Sequence[str]]
"""Called with each source as read (physical units, file geometry, meta) and its path before it is
translated: raises a MedganError to refuse the input, returns warnings to record (``last_warnings``)."""

# The inverted grid is computed in float arithmetic; beyond this (mm) it is not the input's grid.
_AFFINE_TOLERANCE_MM = 1e-3


class VolumeTranslator:
    """Turns a source image file (NIfTI or DICOM folder) into the translated volume on its own grid.

    ``translator`` is any callable ``(B, 1, D, H, W) -> (B, 1, D, H, W)`` in network
    range (e.g. ``TrainedRun.translate``). Preprocessing follows the run's data
    config exactly as training's validation does: source key and modality,
    ``target_spacing`` (None keeps the native spacing), padding to ``divisible_by``.
    ``plan`` says how windows run (default: ``window``'s settings in fp32, no air
    fill); with ``plan.air_outside_body`` the output is the target's background
    (CT: -1000 HU) outside the source's body mask (:mod:`medgan.inference.air`).
    ``source_check`` sees each file as read and may refuse it or return warnings;
    ``last_warnings`` holds those and the reader's own (what it fixed, e.g. NaN voxels
    replaced under ``read_options``). Windows run on ``sw_device``; volumes stay on ``device``.
    """

    def __init__(
        self,
        translator: Translator,
        *,
        source_modality: str,
        target_modality: str,
        window: SlidingWindowSettings | None = None,
        plan: InferencePlan | None = None,
        body_threshold: float | None = None,
        target_spacing: Sequence[float] | None = None,
        source_key: str = "source",
        divisible_by: int = 16,
        sw_device: torch.device | str = "cpu",
        device: torch.device | str = "cpu",
        read_options: ReadOptions | None = None,
        source_check: SourceCheck | None = None,
    ) -> None:
        self.translator = translator
        self.source_key = source_key
        self.target_modality = target_modality
        self.plan = plan or InferencePlan(window or SlidingWindowSettings())
        self.window = self.plan.window
        self.source_preset = get_preset(source_modality)
        self.target_preset = get_preset(target_modality)
        self.body_threshold = outline_threshold(source_modality, body_threshold)
        self.sw_device = torch.device(sw_device)
        self.device = torch.device(device)
        chain = build_inference_transforms(
            {source_key: source_modality},
            source_key=source_key,
            target_spacing=None if target_spacing is None else tuple(target_spacing),
            divisible_by=divisible_by,
        )
        # Files are read by medgan.io.read_volume directly: LoadImaged would hide its
        # InputError behind "cannot find a suitable reader" after trying other readers.
        loaders = [index for index, transform in enumerate(chain.transforms) if isinstance(transform, LoadImaged)]
        if not loaders:
            raise TypeError("expected the inference chain to load its images with LoadImaged")
        self.preprocess = Compose(chain.transforms[loaders[0] + 1 :])  # the key selection before it is moot here
        self.read_options = read_options
        self.source_check = source_check
        self.last_warnings: list[str] = []

    @classmethod
    def from_config(cls, translator: Translator, config: ExperimentConfig, **options: object) -> VolumeTranslator:
        """A translator preprocessing like the run's ``config.data`` and windowing like ``config.inference``."""
        sw_device = torch.device(options.get("sw_device", "cpu"))
        plan = options.pop("plan", None) or InferencePlan.from_config(
            config.inference, sw_device, divisible_by=config.data.divisible_by
        )
        window = options.pop("window", None)
        if window is not None:
            plan = replace(plan, window=window)
        target_spacing = options.pop("target_spacing", config.data.spacing)
        return cls(
            translator,
            plan=plan,
            body_threshold=options.pop("body_threshold", config.data.body_threshold),
            source_modality=config.data.source_modality,
            target_modality=config.data.target_modality,
            target_spacing=target_spacing,
            source_key=config.data.source_key,
            divisible_by=config.data.divisible_by,
            **options,
        )

    def __call__(self, input_path: str | Path) -> MetaTensor:
        """The translated volume ``(1, I, J, K)`` in physical units, on ``input_path``'s exact grid."""
        source = read_volume(input_path, options=self.read_options)
        # The check sees the file as read (its own units, spacing and DICOM tags) and raises to refuse it.
        # What the reader fixed (NaN replaced, header repairs) and what the check doubts go to the manifest.
        checked = list(self.source_check(source, Path(input_path))) if self.source_check else []
        self.last_warnings = [*read_warnings_of(source), *checked]
        try:
            preprocessed = self.preprocess({self.source_key: source})
        except RuntimeError as exc:  # MONAI wraps errors raised inside a transform
            medgan_error = medgan_error_in(exc)
            if medgan_error is None:
                raise
            raise medgan_error from exc
        body = self._body_on_input_grid(source, preprocessed[self.source_key])
        del source
        source = preprocessed[self.source_key]
        prediction = self.plan.translate(source, self.translator, sw_device=self.sw_device, device=self.device)
        # Only the transform trace of the source is needed from here on, not its voxels.
        preprocessed[self.source_key] = MetaTensor(
            torch.empty(0), meta=source.meta, applied_operations=source.applied_operations
        )
        del source
        output = invert_to_source(prediction, preprocessed, self.preprocess, self.source_key, self.target_modality)
        del prediction, preprocessed
        output = _on_input_grid(output)
        if body is not None:
            fill_outside_body(output, body, self.target_preset.background)
        return output

    def _body_on_input_grid(self, source: MetaTensor, preprocessed: MetaTensor) -> torch.Tensor | None:
        """The source's body mask on the file's own grid, when the output gets air outside it.

        Computed from the file as read, mapped to network range with the intensity
        window the preprocessing measured (recorded in its meta; the chain does not
        modify the read tensor), so the air boundary is exact on the output grid,
        whatever resampling the network needed.
        """
        if not self.plan.air_outside_body or self.target_preset.background is None:
            return None
        meta = preprocessed.meta
        window = IntensityWindow(float(meta[META_LOW]), float(meta[META_HIGH])) if META_LOW in meta else None
        source_net = self.source_preset.to_network(source.as_tensor(), window=window)
        return source_body_mask(source_net, self.body_threshold)


def _on_input_grid(output: MetaTensor) -> MetaTensor:
    """Check the inverted volume landed on the input's grid and give it the input's exact affine.

    ``Invertd`` recomputes the affine in floating point; snapping it to the file's
    own matrix keeps the written output bit-identical in geometry to the input.
    """
    input_affine = np.asarray(output.meta.get("original_affine"), dtype=np.float64)
    input_shape = tuple(int(size) for size in np.asarray(output.meta.get("spatial_shape")).ravel())
    if tuple(output.shape[1:]) != input_shape:
        raise RuntimeError(f"inverted volume has shape {tuple(output.shape[1:])}, the input {input_shape}")
    inverted_affine = np.asarray(output.affine, dtype=np.float64)
    if input_affine.shape != (4, 4) or not np.allclose(inverted_affine, input_affine, atol=_AFFINE_TOLERANCE_MM):
        raise RuntimeError(f"inverted affine\n{inverted_affine}\ndiffers from the input's\n{input_affine}")
    output.affine = torch.as_tensor(input_affine, dtype=torch.float64)
    return output
