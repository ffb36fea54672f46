"""Training streams of patches, declared by a method, that are a pure function of (seed, draw index).

A method says what its batches hold with a :class:`PatchStreamSpec`: one or more
*groups* of images cut as aligned patches from one volume. One group gives paired
data (pix2pix: MRI and CT patches of one subject); several groups are each drawn
from an independently chosen volume, another subject's where possible (CycleGAN's
unpaired MRI and CT). Each group may add its body mask
(:func:`medgan.data.body.body_mask`, float {0, 1}), its label-map patch (kept as
``int64``) and per-entry integer values such as a class label (``int64``, one per
patch). Batch keys are the method's names, not the datalist's.

Why a pure function: ``--resume`` must continue with exactly the patches an
uninterrupted run would have seen, with or without DataLoader workers. The
deterministic part of the MONAI chain (load, orient, resample, intensity map,
body crop, crop-centre indices) is cached per volume (:func:`build_dataset`);
the random tail (``RandCropByPosNegLabeld``, flips) is re-seeded for every draw
from ``np.random.default_rng([seed, draw])``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.data import get_track_meta, set_track_meta
from monai.transforms import Compose, Randomizable
from torch.utils.data import Dataset

from medgan.config.schema import DataConfig
from medgan.data.body import body_mask, body_threshold, complete_label_key
from medgan.data.datalist import load_datalist
from medgan.data.datasets import build_dataset, draw_other_subject
from medgan.data.transforms import build_inference_transforms, build_transforms
from medgan.errors import ConfigError

SUBJECT_KEY = "subject"


@dataclass(frozen=True)
class StreamImage:
    """One image of a group: its batch name, its datalist key and its intensity preset."""

    name: str
    datalist_key: str
    modality: str


@dataclass(frozen=True)
class PatchGroup:
    """Images cut as aligned patches from one volume (the first image guides the body crop).

    ``body_mask``: batch name of the group's body mask (None: none). ``label_patch``:
    batch name of the label-map patch (``data.labels_key``), as int64 (None: none).
    ``entry_values``: ``(batch name, datalist key)`` pairs of integer entry values.
    ``masks``: ``(batch name, datalist key)`` pairs of binary masks (e.g. lesion masks) cut with
    the images, as float {0, 1}; entries without them are left out of the stream. ``centre_on``:
    the batch name of one of ``masks`` whose voxels the patches are centred on (default: the body).
    """

    images: tuple[StreamImage, ...]
    body_mask: str | None = None
    label_patch: str | None = None
    entry_values: tuple[tuple[str, str], ...] = ()
    masks: tuple[tuple[str, str], ...] = ()
    centre_on: str | None = None

    @property
    def centre_key(self) -> str | None:
        """Datalist key of the mask patches are centred on (``centre_on`` names one of ``masks``)."""
        return dict(self.masks)[self.centre_on] if self.centre_on else None

    def __post_init__(self) -> None:
        if not self.images:
            raise ValueError("a patch group needs at least one image")
        if self.centre_on is not None and self.centre_on not in dict(self.masks):
            raise ValueError(f"centre_on {self.centre_on!r} is not one of the group's masks")


@dataclass(frozen=True)
class PatchStreamSpec:
    """What a method's training batches hold: its groups of patches (see the module docstring)."""

    groups: tuple[PatchGroup, ...]
    split: str | None = None  # default: data.train_split

    def batch_keys(self) -> list[str]:
        """Every key a batch from this spec holds."""
        keys: list[str] = []
        for group in self.groups:
            keys += [image.name for image in group.images]
            keys += [name for name in (group.body_mask, group.label_patch) if name]
            keys += [name for name, _ in group.entry_values]
            keys += [name for name, _ in group.masks]
        return keys


def split_chain(chain: Compose) -> tuple[Compose, Compose]:
    """Split a chain before its first random transform: (cacheable prefix, random tail)."""
    transforms = list(chain.transforms)
    first_random = next((i for i, t in enumerate(transforms) if isinstance(t, Randomizable)), len(transforms))
    return Compose(transforms[:first_random]), Compose(transforms[first_random:])


def split_entries(data: DataConfig, split: str, keys: Sequence[str]) -> list[dict[str, Any]]:
    """The entries of ``split`` that hold all of ``keys`` (ConfigError when none are left)."""
    entries = load_datalist(data.datalist, split, require_keys=tuple(keys))
    if not entries:
        raise ConfigError(
            f"datalist split {split!r} is empty", path=data.datalist, fix="add volumes to it or pick another split"
        )
    return entries


@dataclass
class _CachedGroup:
    group: PatchGroup
    volumes: Dataset
    tail: Compose
    label_key: str | None
    threshold: float
    entry_values: list[dict[str, int]] = field(default_factory=list)


class PatchStream(Dataset):
    """Map-style dataset whose item ``i`` (a draw) is ``samples_per_draw`` patches per group, fixed by (seed, i)."""

    def __init__(self, spec: PatchStreamSpec, data: DataConfig, seed: int, cache_dir: Path | None) -> None:
        self.spec, self.seed = spec, seed
        self.samples_per_draw = data.samples_per_volume
        split = spec.split or data.train_split
        needed = [image.datalist_key for group in spec.groups for image in group.images]
        needed += [key for group in spec.groups for _, key in group.entry_values]
        entries = split_entries(data, split, needed)
        mask_keys = [key for group in spec.groups for _, key in group.masks]
        if mask_keys:  # e.g. lesion masks: only the entries that have them (healthy cases have none)
            entries = [entry for entry in entries if all(key in entry for key in mask_keys)]
            if not entries:
                raise ConfigError(
                    f"no entry of datalist split {split!r} has {mask_keys}",
                    path=data.datalist,
                    fix="add the masks to the datalist entries or set the method's mask key",
                )
        label_key = complete_label_key(data.labels_key, entries)
        self.subjects = [str(entry.get(SUBJECT_KEY, index)) for index, entry in enumerate(entries)]
        spec_images = {image.datalist_key for group in spec.groups for image in group.images}
        self.groups = [
            self._cache_group(
                group, entries, spec_images, data, label_key, cache_dir / f"group{index}" if cache_dir else None
            )
            for index, group in enumerate(spec.groups)
        ]

    @staticmethod
    def _cache_group(
        group: PatchGroup,
        entries: list[dict[str, Any]],
        spec_images: set[str],
        data: DataConfig,
        label_key: str | None,
        cache_dir: Path | None,
    ) -> _CachedGroup:
        # entries lose the other groups' images, so this group's chain does not read them
        other_images = spec_images - {image.datalist_key for image in group.images}
        group_entries = [{k: v for k, v in entry.items() if k not in other_images} for entry in entries]
        first = group.images[0]
        chain = build_transforms(
            {image.datalist_key: image.modality for image in group.images},
            ([label_key] if label_key else []) + [key for _, key in group.masks],
            train=True,
            centre_key=group.centre_key,
            patch_size=data.patch_size,
            samples_per_volume=data.samples_per_volume,
            body_fraction=max(data.body_patch_fraction, 1e-6),
            augment=data.augment,
            source_key=first.datalist_key,
            target_spacing=list(data.spacing) if data.spacing else None,
            divisible_by=data.divisible_by,
        )
        prefix, tail = split_chain(chain)
        values = [{name: int(entry[key]) for name, key in group.entry_values} for entry in entries]
        return _CachedGroup(
            group,
            build_dataset(group_entries, prefix, data.cache, cache_dir),
            tail,
            label_key,
            body_threshold(first.modality, data.body_threshold),
            values,
        )

    def __len__(self) -> int:
        return 2**62  # draws are indexed by step, not by epoch

    def _patches(self, cached: _CachedGroup, volume_index: int, transform_seed: int) -> list[dict[str, Any]]:
        cached.tail.set_random_state(seed=transform_seed)
        volume = dict(cached.volumes[volume_index])
        # patches need no MONAI metadata or transform trace: cropping plain tensors is ~2.5x faster
        tracking = get_track_meta()
        set_track_meta(False)
        try:
            patches = cached.tail(volume)
        finally:
            set_track_meta(tracking)
        return patches if isinstance(patches, list) else [patches]

    def _group_batch(self, cached: _CachedGroup, volume_index: int, transform_seed: int) -> dict[str, torch.Tensor]:
        group = cached.group
        patches = self._patches(cached, volume_index, transform_seed)
        out: dict[str, list[torch.Tensor]] = {}
        for image in group.images:
            out[image.name] = [_plain(p[image.datalist_key]).float() for p in patches]
        labels = [_plain(p[cached.label_key]) for p in patches] if cached.label_key else None
        if group.body_mask:
            first = group.images[0].datalist_key
            out[group.body_mask] = [
                body_mask(p[first], labels=None if labels is None else labels[i], threshold=cached.threshold)
                for i, p in enumerate(patches)
            ]
        if group.label_patch:
            if labels is None:
                raise ConfigError(
                    "the method needs label maps but the datalist entries lack data.labels_key",
                    fix="set data.labels_key to the datalist key of the label maps",
                )
            out[group.label_patch] = [label.round().to(torch.int64) for label in labels]
        for name, key in group.masks:
            out[name] = [(_plain(p[key]) > 0.5).float() for p in patches]
        stacked = {key: torch.stack(values).contiguous() for key, values in out.items()}
        for name, value in cached.entry_values[volume_index].items():
            stacked[name] = torch.full((len(patches),), value, dtype=torch.int64)
        return stacked

    def volume(self, volume_index: int, transform_seed: int = 0) -> dict[str, torch.Tensor]:
        """The first group's patches of one chosen volume (whole, when ``data.patch_size`` covers it).

        For evaluation code that needs the training data exactly as the method sees it,
        volume by volume rather than in random draws.
        """
        if not 0 <= volume_index < len(self.subjects):
            raise IndexError(f"volume {volume_index} of a stream of {len(self.subjects)} volumes")
        return self._group_batch(self.groups[0], volume_index, transform_seed)

    def __getitem__(self, draw_index: int) -> dict[str, torch.Tensor]:
        """The patches of draw ``draw_index``: each value has a leading axis of ``samples_per_draw``."""
        rng = np.random.default_rng([self.seed, int(draw_index)])
        first_volume = int(rng.integers(len(self.subjects)))
        batch = self._group_batch(self.groups[0], first_volume, int(rng.integers(2**31)))
        for cached in self.groups[1:]:
            volume = draw_other_subject(rng, len(self.subjects), self.subjects, self.subjects[first_volume])
            batch |= self._group_batch(cached, volume, int(rng.integers(2**31)))
        return batch


def _plain(array: Any) -> torch.Tensor:
    return torch.as_tensor(array).as_subclass(torch.Tensor)


def load_whole_volumes(
    group: PatchGroup, data: DataConfig, split: str, limit: int | None = None
) -> list[dict[str, torch.Tensor]]:
    """The first ``limit`` volumes of ``split``, preprocessed like training but whole: ``(1, C, *spatial)``.

    Each item holds the group's images under their batch names, its body mask and
    (as int64) its label patch when asked for, and ``"index"``. Used for validation.
    """
    if limit == 0:
        return []
    needed = [image.datalist_key for image in group.images]
    entries = split_entries(data, split, needed)[:limit]
    label_key = complete_label_key(data.labels_key, entries)
    first = group.images[0]
    chain = build_inference_transforms(
        {image.datalist_key: image.modality for image in group.images},
        [label_key] if label_key else [],
        source_key=first.datalist_key,
        target_spacing=list(data.spacing) if data.spacing else None,
        divisible_by=data.divisible_by,
        min_size=data.patch_size,
    )
    threshold = body_threshold(first.modality, data.body_threshold)
    items = []
    for index, entry in enumerate(entries):
        loaded = chain(dict(entry))
        item = {image.name: _plain(loaded[image.datalist_key]).float()[None] for image in group.images}
        labels = _plain(loaded[label_key])[None] if label_key else None
        if group.body_mask:
            item[group.body_mask] = body_mask(item[first.name], labels=labels, threshold=threshold)
        if group.label_patch and labels is not None:
            item[group.label_patch] = labels.round().to(torch.int64)
        item["index"] = torch.tensor([index])
        items.append(item)
    return items
