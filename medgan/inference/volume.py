"""Translate one image file: preprocess, sliding-window translate, back to the file's grid and units.

This is the per-volume half of the translate job. The source is preprocessed with
the same invertible chain training used (:func:`medgan.data.build_inference_transforms`),
translated window by window, and taken back with ``Invertd``
(:func:`medgan.data.invert_to_source`): the result has the input file's exact
shape and affine and is in the target's physical units (HU for CT).
"""

from __future__ import annotations

import gc
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from monai.data import MetaTensor
from monai.transforms import Compose, LoadImaged

from medgan.config.schema import ExperimentConfig
from medgan.data import build_inference_transforms, invert_to_source
from medgan.errors import medgan_error_in
from medgan.inference.sliding_window import SlidingWindowSettings, Translator, translate_volume
from medgan.io import ReadOptions, read_volume

# The inverted grid is computed in float arithmetic; beyond this (mm) it is not the input's grid.
_AFFINE_TOLERANCE_MM = 1e-3


class VolumeTranslator:
    """Turns a source image file (NIfTI or DICOM folder) into the translated volume on its own grid.

    ``translator`` is any callable ``(B, 1, D, H, W) -> (B, 1, D, H, W)`` in network
    range (e.g. ``TrainedRun.translate``). Preprocessing follows the run's data
    config exactly as training's validation does: source key and modality,
    ``target_spacing`` (None keeps the native spacing), padding to ``divisible_by``
    and to at least one window. Windows run on ``sw_device``; volumes stay on ``device``.
    """

    def __init__(
        self,
        translator: Translator,
        *,
        source_modality: str,
        target_modality: str,
        window: SlidingWindowSettings,
        target_spacing: Sequence[float] | None = None,
        source_key: str = "source",
        divisible_by: int = 16,
        sw_device: torch.device | str = "cpu",
        device: torch.device | str = "cpu",
        read_options: ReadOptions | None = None,
    ) -> None:
        self.translator = translator
        self.source_key = source_key
        self.target_modality = target_modality
        self.window = window
        self.sw_device = torch.device(sw_device)
        self.device = torch.device(device)
        chain = build_inference_transforms(
            {source_key: source_modality},
            source_key=source_key,
            target_spacing=None if target_spacing is None else tuple(target_spacing),
            divisible_by=divisible_by,
            min_size=window.roi_size,
        )
        # Files are read by medgan.io.read_volume directly: LoadImaged would hide its
        # InputError behind "cannot find a suitable reader" after trying other readers.
        if not isinstance(chain.transforms[0], LoadImaged):
            raise TypeError("expected the inference chain to start with LoadImaged")
        self.preprocess = Compose(chain.transforms[1:])
        self.read_options = read_options

    @classmethod
    def from_config(
        cls, translator: Translator, config: ExperimentConfig, **options: object
    ) -> VolumeTranslator:
        """A translator preprocessing like the run's ``config.data`` and windowing like ``config.inference``."""
        window = options.pop("window", None) or SlidingWindowSettings.from_config(config.inference)
        return cls(
            translator,
            source_modality=config.data.source_modality,
            target_modality=config.data.target_modality,
            target_spacing=config.data.spacing,
            source_key=config.data.source_key,
            divisible_by=config.data.divisible_by,
            window=window,
            **options,
        )

    def __call__(self, input_path: str | Path) -> MetaTensor:
        """The translated volume ``(1, I, J, K)`` in physical units, on ``input_path``'s exact grid."""
        source = read_volume(input_path, options=self.read_options)
        try:
            preprocessed = self.preprocess({self.source_key: source})
        except RuntimeError as exc:  # MONAI wraps errors raised inside a transform
            medgan_error = medgan_error_in(exc)
            if medgan_error is None:
                raise
            raise medgan_error from exc
        del source
        source = preprocessed[self.source_key]
        prediction = translate_volume(
            source, self.translator, self.window, sw_device=self.sw_device, device=self.device
        )
        # Only the transform trace of the source is needed from here on, not its voxels.
        preprocessed[self.source_key] = MetaTensor(
            torch.empty(0), meta=source.meta, applied_operations=source.applied_operations
        )
        del source
        output = invert_to_source(prediction, preprocessed, self.preprocess, self.source_key, self.target_modality)
        del prediction, preprocessed
        gc.collect()
        return _on_input_grid(output)


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
