"""Datasets: datalist entries + a transform chain -> MONAI datasets, paired or unpaired.

``build_dataset`` picks the MONAI dataset for a cache policy (``none``: ``Dataset``,
``memory``: ``CacheDataset``, ``disk``: ``PersistentDataset``); caching stores the
result of the chain's deterministic prefix, so the random patches stay random.
``UnpairedDataset`` serves CycleGAN: each item joins a source volume and a target
volume drawn at independent, seeded random indices.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from monai.data import CacheDataset, Dataset, PersistentDataset
from torch.utils.data import Dataset as TorchDataset

from medgan.errors import ConfigError, InputError


def _plain(entries: Sequence[Mapping], transform: Callable, cache_dir: Path | None, workers: int) -> Dataset:
    return Dataset(data=list(entries), transform=transform)


def _memory(entries: Sequence[Mapping], transform: Callable, cache_dir: Path | None, workers: int) -> Dataset:
    return CacheDataset(data=list(entries), transform=transform, num_workers=workers, progress=False)


def _disk(entries: Sequence[Mapping], transform: Callable, cache_dir: Path | None, workers: int) -> Dataset:
    if cache_dir is None:
        raise ConfigError("cache 'disk' needs a cache_dir", fix="pass cache_dir= (a folder for the cached volumes)")
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    return PersistentDataset(data=list(entries), transform=transform, cache_dir=Path(cache_dir))


CACHE_POLICIES: dict[str, Callable[..., Dataset]] = {"none": _plain, "memory": _memory, "disk": _disk}
"""Dataset constructors by cache policy name."""


def build_dataset(
    entries: Sequence[Mapping[str, Any]],
    transform: Callable,
    cache: str = "none",
    cache_dir: str | Path | None = None,
    *,
    num_workers: int = 0,
) -> Dataset:
    """A MONAI dataset over ``entries`` with the given cache policy ("none", "memory" or "disk").

    ``num_workers`` threads fill a memory cache; a disk cache keys each entry by a
    hash of its dict, so change the chain's ``cache_dir`` when the chain changes.
    """
    if cache not in CACHE_POLICIES:
        raise ConfigError(f"unknown cache policy {cache!r}", fix=f"use one of: {', '.join(CACHE_POLICIES)}")
    return CACHE_POLICIES[cache](entries, transform, Path(cache_dir) if cache_dir else None, num_workers)


def build_paired_dataset(
    entries: Sequence[Mapping[str, Any]],
    transform: Callable,
    keys: Sequence[str] = ("mri", "ct"),
    cache: str = "none",
    cache_dir: str | Path | None = None,
    *,
    num_workers: int = 0,
) -> Dataset:
    """A dataset of paired volumes: every entry must hold all of ``keys`` (e.g. MRI and CT of one subject)."""
    for index, entry in enumerate(entries):
        missing = [key for key in keys if entry.get(key) is None]
        if missing:
            raise InputError(
                f"entry {index} (subject {entry.get('subject', '?')}) lacks {missing} needed for paired data",
                fix="drop unpaired entries or load the datalist with require_keys=" + repr(tuple(keys)),
            )
    return build_dataset(entries, transform, cache, cache_dir, num_workers=num_workers)


REDRAWS = 8  # tries to draw another subject before accepting the same one


def draw_other_subject(
    rng: np.random.Generator, candidates: int, subjects: Sequence[str], avoid: str | None, redraws: int = REDRAWS
) -> int:
    """An index in ``range(candidates)`` whose subject differs from ``avoid`` where possible.

    The one unpaired-pairing rule: draw uniformly, redraw up to ``redraws`` times
    while the subject is ``avoid`` (a subject is never paired with itself unless
    the set leaves little choice).
    """
    index = int(rng.integers(candidates))
    for _ in range(redraws):
        if avoid is None or subjects[index] != avoid or len(set(subjects)) < 2:
            break
        index = int(rng.integers(candidates))
    return index


class UnpairedDataset(TorchDataset):
    """Items ``{source_key: ..., target_key: ...}`` from two datasets at independent random indices.

    The indices of item ``i`` come from a generator seeded with ``(seed, epoch, i)``,
    so they are the same in every worker process and every re-run, and change when
    :meth:`set_epoch` moves to the next epoch. When both entries name a subject
    (``subject_key``) the target is redrawn a few times to avoid pairing a subject
    with itself. Multi-patch chains (items that are lists of patch dicts) are zipped
    patch by patch. ``length`` defaults to the larger dataset.
    """

    def __init__(
        self,
        source: Dataset,
        target: Dataset,
        source_key: str = "mri",
        target_key: str = "ct",
        *,
        seed: int = 0,
        length: int | None = None,
        subject_key: str = "subject",
        redraws: int = 8,
    ) -> None:
        if len(source) == 0 or len(target) == 0:
            raise ConfigError(f"unpaired data needs both sides: {len(source)} source and {len(target)} target volumes")
        self.source, self.target = source, target
        self.source_key, self.target_key = source_key, target_key
        self.seed, self.epoch = seed, 0
        self.length = length or max(len(source), len(target))
        self.subject_key, self.redraws = subject_key, redraws

    def __len__(self) -> int:
        return self.length

    def set_epoch(self, epoch: int) -> None:
        """Draw a fresh pairing for this epoch (same as DistributedSampler.set_epoch)."""
        self.epoch = epoch

    def indices(self, index: int) -> tuple[int, int]:
        """The (source, target) dataset indices that item ``index`` joins this epoch."""
        rng = np.random.default_rng([self.seed, self.epoch, index])
        source_index = int(rng.integers(len(self.source)))
        target_subjects = [self._subject(self.target, index) or f"#{index}" for index in range(len(self.target))]
        target_index = draw_other_subject(
            rng, len(self.target), target_subjects, self._subject(self.source, source_index), self.redraws
        )
        return source_index, target_index

    def _subject(self, dataset: Dataset, index: int) -> str | None:
        entry = dataset.data[index] if hasattr(dataset, "data") else None
        return entry.get(self.subject_key) if isinstance(entry, Mapping) else None

    def __getitem__(self, index: int) -> dict[str, Any] | list[dict[str, Any]]:
        """Join the source and target items drawn for ``index``."""
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for {self.length} unpaired items")
        source_index, target_index = self.indices(index)
        source_item, target_item = self.source[source_index], self.target[target_index]
        if isinstance(source_item, list) != isinstance(target_item, list):
            raise ConfigError("source and target chains must both give patch lists or both single items")
        if isinstance(source_item, list):
            return [self._join(s, t) for s, t in zip(source_item, target_item, strict=False)]
        return self._join(source_item, target_item)

    def _join(self, source_item: Mapping[str, Any], target_item: Mapping[str, Any]) -> dict[str, Any]:
        return {self.source_key: source_item[self.source_key], self.target_key: target_item[self.target_key]}


def build_unpaired_dataset(
    source_entries: Sequence[Mapping[str, Any]],
    target_entries: Sequence[Mapping[str, Any]],
    source_transform: Callable,
    target_transform: Callable,
    source_key: str = "mri",
    target_key: str = "ct",
    *,
    seed: int = 0,
    length: int | None = None,
    cache: str = "none",
    cache_dir: str | Path | None = None,
) -> UnpairedDataset:
    """CycleGAN data: source volumes (e.g. MRI) and target volumes (CT) from separate chains, unpaired.

    Each side is a :func:`build_dataset` with its own single-modality chain; disk
    caches go to ``cache_dir/source`` and ``cache_dir/target``.
    """
    source_dir = Path(cache_dir) / "source" if cache_dir else None
    target_dir = Path(cache_dir) / "target" if cache_dir else None
    return UnpairedDataset(
        build_dataset(source_entries, source_transform, cache, source_dir),
        build_dataset(target_entries, target_transform, cache, target_dir),
        source_key,
        target_key,
        seed=seed,
        length=length,
    )
