"""Transform chains: from files on disk to network-range tensors, and back to the source grid.

``build_transforms`` assembles one MONAI ``Compose`` from a mapping of image keys to
modality names plus label keys::

    LoadImaged(MedganImageReader) -> EnsureTyped -> Orientationd(RAS)
    -> per-modality intensity map -> Spacingd -> BodyCropd (body of the source image)
    -> SpatialPadd/DivisiblePadd (background value)
    [training: -> body mask -> its body / background voxel indices
     -> RandCropByPosNegLabeld patches -> optional RandFlipd]

The deterministic part (``build_inference_transforms``) is invertible: ``Invertd``
(or :func:`invert_to_source`) takes a network-range tensor on the preprocessed grid
back to the original file's grid, orientation and physical units. All random
transforms draw from the Compose's random state, so ``Compose.set_random_state(seed)``
makes a chain reproducible.
"""

from __future__ import annotations

import copy
from collections.abc import Hashable, Mapping, Sequence
from functools import partial
from typing import Any

import numpy as np
import torch
from monai.data import MetaTensor
from monai.data.image_reader import ImageReader
from monai.transforms import (
    AsDiscreted,
    Compose,
    CopyItemsd,
    CropForegroundd,
    DivisiblePadd,
    EnsureTyped,
    FgBgToIndicesd,
    Invertd,
    LoadImaged,
    MapTransform,
    Orientationd,
    RandCropByPosNegLabeld,
    RandFlipd,
    SelectItemsd,
    Spacingd,
    SpatialPadd,
)
from monai.utils import TraceKeys

from medgan.data.intensity import ScaleToNetworkd
from medgan.data.presets import ModalityPreset, get_preset
from medgan.errors import ConfigError, InputError, medgan_error_in
from medgan.io import MedganImageReader

BODY_MASK_KEY = "body_mask"
"""Key of the binary body mask the training chain adds (patch sampling label; handy for masked losses)."""

_RAS_LABELS = (("L", "R"), ("P", "A"), ("I", "S"))

CROP_CENTRE_KEY = "crop_centre"
"""Key of the binarised ``centre_key`` label whose voxels training patches are centred on."""
PRESET_SPACING = "preset"
"""``target_spacing`` value meaning: use the source modality preset's default spacing."""


def is_body(values: torch.Tensor, threshold: float) -> torch.Tensor:
    """Body voxels: network-range values above ``threshold`` (module-level so chains pickle)."""
    return values > threshold


class BodyCropd(CropForegroundd):
    """``CropForegroundd`` whose inverse refills the cropped border with each key's background value.

    MONAI's inverse pads with 0, which in network range is mid-grey (CT: ~1000 HU);
    here images get their preset's pad value (-1 = air / background) and labels 0,
    so a network-range output inverted to the source grid has true background there.
    A source without any body voxel raises InputError naming its file.
    """

    def __init__(
        self,
        keys: Sequence[str],
        source_key: str,
        threshold: float,
        fill_values: Mapping[str, float],
        margin: int = 0,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(
            keys,
            source_key=source_key,
            select_fn=partial(is_body, threshold=threshold),
            margin=margin,
            allow_smaller=True,
            start_coord_key=None,
            end_coord_key=None,
            allow_missing_keys=allow_missing_keys,
        )
        self.fill_values = dict(fill_values)

    def __call__(self, data: Mapping[Hashable, torch.Tensor], lazy: bool | None = None) -> dict:
        """Crop every key to the body box of the source image (plus margin)."""
        source = data[self.source_key]
        if not bool(self.cropper.select_fn(source).any()):
            meta = getattr(source, "meta", {}) or {}
            raise InputError(
                f"'{self.source_key}' has no voxel above the body threshold, so there is nothing to crop to",
                path=meta.get("filename_or_obj"),
                fix="check that the image is not empty and that its modality in the chain is right",
            )
        return super().__call__(data, lazy=lazy)

    def inverse(self, data: Mapping[Hashable, torch.Tensor]) -> dict:
        """Pad back to the uncropped size, filling the border with each key's background value."""
        d = dict(data)
        for key in self.key_iterator(d):
            trace = self.cropper.get_most_recent_transform(d[key], check=True)
            cropped = trace[TraceKeys.EXTRA_INFO]["cropped"]  # (start, end) voxels per spatial dim
            restored = self.cropper.inverse(d[key])
            fill = self.fill_values.get(key, 0.0)
            if fill != 0.0:
                spatial = restored.shape[1:]
                for dim, size in enumerate(spatial):
                    before, after = int(cropped[2 * dim]), int(cropped[2 * dim + 1])
                    index = [slice(None)] * restored.ndim
                    index[dim + 1] = slice(0, before)
                    restored[tuple(index)] = fill
                    index[dim + 1] = slice(size - after, size)
                    restored[tuple(index)] = fill
            d[key] = restored
        return d


class MedganCompose(Compose):
    """A ``Compose`` that lets medgan errors through instead of MONAI's wrapping ``RuntimeError``.

    MONAI reports any failure inside a chain as ``RuntimeError("applying transform ...")``;
    an InputError naming the bad file is more useful to the user, so it is re-raised.
    """

    def __call__(
        self, input_: Any, start: int = 0, end: int | None = None, threading: bool = False, lazy: bool | None = None
    ) -> Any:
        """Run the chain like ``Compose``; a MedganError inside it is raised as itself."""
        try:
            return super().__call__(input_, start=start, end=end, threading=threading, lazy=lazy)
        except RuntimeError as error:
            cause = medgan_error_in(error)
            if cause is None:
                raise
            raise cause from None


def _resolve_presets(image_modalities: Mapping[str, str]) -> dict[str, ModalityPreset]:
    if not image_modalities:
        raise ConfigError("a transform chain needs at least one image key", fix="e.g. image_modalities={'mri': 'mri'}")
    return {key: get_preset(modality) for key, modality in image_modalities.items()}


def build_inference_transforms(
    image_modalities: Mapping[str, str],
    label_keys: Sequence[str] = (),
    *,
    source_key: str | None = None,
    target_spacing: Sequence[float] | float | str | None = PRESET_SPACING,
    divisible_by: int = 16,
    min_size: Sequence[int] | int | None = None,
    crop_margin: int = 4,
    crop_foreground: bool = True,
    reader: ImageReader | None = None,
) -> Compose:
    """The deterministic, invertible preprocessing chain (validation and inference).

    ``image_modalities`` maps data keys to preset names (``{"mri": "mri", "ct": "ct"}``);
    ``label_keys`` are resampled with nearest neighbour and padded with 0. The body
    crop follows ``source_key`` (default: the first image key). ``target_spacing`` is
    mm per axis, ``"preset"`` for the source preset's default, or None to keep the
    native spacing. Every key must share one grid after resampling (paired data).
    """
    presets = _resolve_presets(image_modalities)
    image_keys, label_keys = list(presets), list(label_keys)
    all_keys = image_keys + label_keys
    source_key = source_key or image_keys[0]
    if source_key not in presets:
        raise ConfigError(f"source_key {source_key!r} is not an image key", fix=f"use one of {image_keys}")
    source = presets[source_key]
    if isinstance(target_spacing, str):
        if target_spacing != PRESET_SPACING:
            raise ConfigError(f"target_spacing {target_spacing!r}", fix="give mm values, 'preset' or None")
        target_spacing = source.target_spacing

    chain: list[MapTransform] = [
        # Only the chain's own keys go on: MONAI's Spacingd updates every key named "<image key>_..." as
        # if it were that image's meta dict, so a datalist field such as "ct_noise_hu" (a float) crashed it.
        SelectItemsd(all_keys),
        LoadImaged(all_keys, reader=reader or MedganImageReader(), image_only=True, ensure_channel_first=True),
        EnsureTyped(all_keys, data_type="tensor", dtype=torch.float32, track_meta=True),
        Orientationd(all_keys, axcodes="RAS", labels=_RAS_LABELS),
    ]
    # Intensity before resampling: MRI percentiles come from the acquired voxels, not
    # interpolated ones, and resampling then blends towards the background value (-1).
    chain += [preset.intensity_transform(keys=[key]) for key, preset in presets.items()]
    if target_spacing is not None:
        modes = [presets[k].image_interpolation for k in image_keys] + [source.label_interpolation for _ in label_keys]
        padding = ["border"] * len(image_keys) + ["zeros"] * len(label_keys)
        chain.append(Spacingd(all_keys, pixdim=target_spacing, mode=modes, padding_mode=padding, dtype=np.float32))
    fill_values = {key: preset.pad_value for key, preset in presets.items()} | {k: 0.0 for k in label_keys}
    if crop_foreground:
        chain.append(BodyCropd(all_keys, source_key, source.body_threshold, fill_values, margin=crop_margin))
    for value, keys in _group_by_value(fill_values).items():
        if min_size is not None:
            chain.append(SpatialPadd(keys, spatial_size=min_size, mode="constant", value=value))
        if divisible_by > 1:
            chain.append(DivisiblePadd(keys, k=divisible_by, mode="constant", value=value))
    return MedganCompose(chain)


def build_transforms(
    image_modalities: Mapping[str, str],
    label_keys: Sequence[str] = (),
    *,
    train: bool = True,
    patch_size: Sequence[int] | int = 32,
    samples_per_volume: int = 4,
    body_fraction: float = 1.0,
    augment: bool = False,
    centre_key: str | None = None,
    **preprocessing,
) -> Compose:
    """The full chain: preprocessing, plus for training body-centred random patches.

    With ``train`` the volume is padded to at least ``patch_size``, a binary
    ``body_mask`` (source image above its preset's body threshold) is added, and
    ``RandCropByPosNegLabeld`` draws ``samples_per_volume`` patches of ``patch_size``,
    a ``body_fraction`` share of them centred on body voxels (the rest anywhere
    else). ``centre_key`` (one of ``label_keys``, e.g. a lesion mask) centres them on that
    label's non-zero voxels instead. ``augment`` adds a left-right ``RandFlipd`` (off by default). Without
    ``train`` this is :func:`build_inference_transforms`. Other keyword arguments go
    to :func:`build_inference_transforms`.
    """
    if not train:
        return build_inference_transforms(image_modalities, label_keys, **preprocessing)
    if not 0.0 < body_fraction <= 1.0:
        raise ConfigError(f"body_fraction must be in (0, 1], got {body_fraction}")
    if samples_per_volume < 1:
        raise ConfigError(f"samples_per_volume must be >= 1, got {samples_per_volume}")
    preprocessing.setdefault("min_size", patch_size)
    chain = list(build_inference_transforms(image_modalities, label_keys, **preprocessing).transforms)
    presets = _resolve_presets(image_modalities)
    source_key = preprocessing.get("source_key") or next(iter(presets))
    all_keys = [*presets, *label_keys]
    if centre_key is not None and centre_key not in label_keys:
        raise ConfigError(f"centre_key {centre_key!r} must be one of the label keys {list(label_keys)}")
    centres = BODY_MASK_KEY if centre_key is None else CROP_CENTRE_KEY
    chain += [
        CopyItemsd(source_key, names=BODY_MASK_KEY),
        AsDiscreted(BODY_MASK_KEY, threshold=float(np.nextafter(presets[source_key].body_threshold, 1.0))),
    ]
    if centre_key is not None:
        chain += [CopyItemsd(centre_key, names=CROP_CENTRE_KEY), AsDiscreted(CROP_CENTRE_KEY, threshold=0.5)]
    chain += [
        # the crop centres' candidate voxels, found once in the deterministic (cacheable) part of the
        # chain instead of on every draw (that search took ~90% of a draw's time on 48^3 heads); the
        # same indices the crop would compute, so the patches are unchanged. Costs 8 bytes per voxel.
        FgBgToIndicesd(centres),
        RandCropByPosNegLabeld(
            [*all_keys, BODY_MASK_KEY],
            label_key=centres,
            spatial_size=patch_size,
            pos=body_fraction,
            neg=1.0 - body_fraction,
            num_samples=samples_per_volume,
            fg_indices_key=f"{centres}_fg_indices",
            bg_indices_key=f"{centres}_bg_indices",
        ),
    ]
    if augment:
        chain.append(RandFlipd([*all_keys, BODY_MASK_KEY], prob=0.5, spatial_axis=0))
    return MedganCompose(chain)


def invert_to_source(
    prediction: torch.Tensor,
    preprocessed: Mapping[str, torch.Tensor],
    transform: Compose,
    source_key: str,
    target_modality: str | None = None,
) -> MetaTensor:
    """Take a network-range output on the preprocessed grid back to the source file's grid and units.

    ``prediction`` is ``(C, *spatial)`` (one item, no batch dim) computed from
    ``preprocessed[source_key]``; ``transform`` is the inference chain that produced
    it. The output gets that key's spatial history undone by ``Invertd``; its
    intensity is mapped back with the window of ``target_modality``'s preset (e.g.
    "ct" for MRI -> pseudo-CT, giving HU), or with the source's own window when
    ``target_modality`` is None. A target without a fixed window (MRI) needs the
    source to be the same modality.
    """
    source = preprocessed[source_key]
    if not isinstance(source, MetaTensor):
        raise ValueError(f"preprocessed[{source_key!r}] must be a MetaTensor carrying the transform trace")
    operations = copy.deepcopy(source.applied_operations)
    if target_modality is not None:
        window = get_preset(target_modality).fixed_window
        intensity_ops = _intensity_operations(transform, operations)
        if window is None and intensity_ops:
            raise ConfigError(
                f"cannot map a {target_modality!r} output to physical units: it has no fixed window",
                fix="invert with target_modality=None (same modality as the source) or map it by hand",
            )
        for op in intensity_ops:
            op[TraceKeys.EXTRA_INFO].update(low=window.low, high=window.high, clip=True)
    reference = MetaTensor(source.as_tensor(), meta=copy.deepcopy(source.meta), applied_operations=operations)
    output = MetaTensor(torch.as_tensor(prediction), meta=copy.deepcopy(source.meta))
    inverter = Invertd("prediction", transform=transform, orig_keys=source_key, nearest_interp=False)
    return inverter({"prediction": output, source_key: reference})["prediction"]


def _intensity_operations(transform: Compose, operations: list[dict]) -> list[dict]:
    """The trace entries that the chain's intensity transforms pushed."""
    intensity_ids = {id(t) for t in transform.flatten().transforms if isinstance(t, ScaleToNetworkd)}
    return [op for op in operations if op.get(TraceKeys.ID) in intensity_ids]


def _group_by_value(values: Mapping[str, float]) -> dict[float, list[str]]:
    groups: dict[float, list[str]] = {}
    for key, value in values.items():
        groups.setdefault(value, []).append(key)
    return groups
