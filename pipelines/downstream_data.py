"""The downstream study's data: the real and synthetic cases, preprocessed once into one tensor cache.

Real cases are the datalist's training / validation / test lists (entries flagged synthetic are
left out); synthetic cases are the entries flagged ``"synthetic": true`` of the synthetic datalist
(an ``enrich`` or ``generate`` output). Each volume goes through the modality presets (the same
intensity scale as training medgan's networks), an optional resampling, a body crop and a centre
pad / crop to ``spatial_size``, so every case is one tensor of one shape. The result is cached in
``OUT/cache/`` under a fingerprint of the inputs' bytes and the data settings: workers and resumed
studies read it instead of preprocessing again.

Case identities: a real case is named by its ``subject`` key; a training entry without one is
``case0000``-style by its index (the name ``enrich`` gives its source), other lists' entries
``<list>_case0000``. Synthetic cases name their source in ``source_subject``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import torch
from monai.transforms import CenterSpatialCropd

from medgan.config.downstream import DownstreamConfig
from medgan.data.datalist import DEFAULT_PATH_KEYS, load_datalist
from medgan.data.presets import get_preset
from medgan.data.transforms import build_inference_transforms
from medgan.errors import InputError, medgan_error_in
from medgan.evaluation.downstream.cases import HEALTHY, LESION, StudyCase, StudyCases, lesion_type_classes
from medgan.evaluation.downstream.runs import StudyData
from medgan.io.atomic import atomic_path
from medgan.io.hashing import sha256_files

LOG = logging.getLogger(__name__)
CACHE_DIR = "cache"
CACHE_FILE = "study_volumes.pt"


def _subject(entry: dict[str, Any], split: str, index: int, train_split: str) -> str:
    if "subject" in entry:
        return str(entry["subject"])
    return f"case{index:04d}" if split == train_split else f"{split}_case{index:04d}"


def _entries(path: Path, split: str, config: DownstreamConfig) -> list[dict[str, Any]]:
    path_keys = (*DEFAULT_PATH_KEYS, *config.images, config.lesion_mask_key)
    entries = load_datalist(path, split, require_keys=(*config.images, config.label_key), path_keys=path_keys)
    for index, entry in enumerate(entries):
        label = entry[config.label_key]
        if label not in (HEALTHY, LESION) or isinstance(label, bool):
            raise InputError(
                f"{split}[{index}] has {config.label_key} = {label!r}; the study needs 0 (healthy) or 1 (lesion)",
                path=path,
                fix="relabel the entry, or point label_key at a 0/1 key (the study is lesion / no lesion)",
            )
        if "detect" in config.tasks and label == LESION and config.lesion_mask_key not in entry:
            raise InputError(
                f"{split}[{index}] is a lesion case without {config.lesion_mask_key!r}; the detect task needs masks",
                path=path,
                fix="add the masks, or run only the classify task (--set 'tasks=[classify]')",
            )
    return entries


def study_entries(config: DownstreamConfig) -> dict[str, list[dict[str, Any]]]:
    """The datalist entries by role (train, validation, test, synthetic), each with ``_subject`` set."""
    roles: dict[str, list[dict[str, Any]]] = {}
    for role, split in (
        ("train", config.train_split),
        ("validation", config.validation_split),
        ("test", config.test_split),
    ):
        entries = _entries(config.datalist, split, config)
        roles[role] = [
            {**e, "_subject": _subject(e, split, i, config.train_split)}
            for i, e in enumerate(entries)
            if not e.get("synthetic")
        ]
        labels = {e[config.label_key] for e in roles[role]}
        if labels != {HEALTHY, LESION}:
            raise InputError(
                f"the {split!r} list's real cases hold only label(s) {sorted(labels)}; the study needs healthy and "
                "lesion cases in each of its training, validation and test lists",
                path=config.datalist,
                fix="re-split the datalist so every list has both classes",
            )
    synthetic_path = config.synthetic_datalist or config.datalist
    synthetic = [e for e in _entries(synthetic_path, config.synthetic_split, config) if e.get("synthetic")]
    roles["synthetic"] = [
        {**e, "_subject": str(e.get("subject", f"synthetic{i:04d}"))} for i, e in enumerate(synthetic)
    ]
    needs_synthetic = set(config.conditions) & {"synthetic", "synthetic_classical", "negative_control"}
    if needs_synthetic and not any(e[config.label_key] == LESION for e in roles["synthetic"]):
        raise InputError(
            f'no synthetic lesion cases (entries with "synthetic": true and {config.label_key} = 1) in the '
            f"{config.synthetic_split!r} list",
            path=synthetic_path,
            fix="point synthetic_datalist at an `medgan enrich` output's datalist.json, or drop the synthetic "
            "conditions from conditions",
        )
    return roles


def data_fingerprint(config: DownstreamConfig, roles: dict[str, list[dict[str, Any]]]) -> str:
    """SHA-256 of every input file's bytes and of the settings that shape the tensors."""
    keys = (*config.images, config.lesion_mask_key)
    files = sorted({str(e[k]) for entries in roles.values() for e in entries for k in keys if k in e})
    settings = json.dumps(
        {
            "images": config.images,
            "mask": config.lesion_mask_key,
            "spacing": config.spacing,
            "size": config.spatial_size,
            "roles": {role: [e["_subject"] for e in entries] for role, entries in roles.items()},
        },
        sort_keys=True,
    )
    return hashlib.sha256((sha256_files(files) + settings).encode()).hexdigest()


def _chains(config: DownstreamConfig):
    common = dict(
        target_spacing=config.spacing,
        divisible_by=1,
        min_size=config.spatial_size,
        crop_foreground=True,
    )
    image_keys = list(config.images)
    crop = CenterSpatialCropd(
        [*image_keys, config.lesion_mask_key], roi_size=config.spatial_size, allow_missing_keys=True
    )
    with_mask = build_inference_transforms(config.images, [config.lesion_mask_key], **common)
    without_mask = build_inference_transforms(config.images, [], **common)
    return (lambda e: crop(with_mask(e))), (lambda e: crop(without_mask(e)))


def _plain(volume: Any) -> torch.Tensor:
    """A plain tensor (MONAI's MetaTensor carries metadata the cache must not pickle)."""
    return volume.as_tensor() if hasattr(volume, "as_tensor") else torch.as_tensor(volume)


def _preprocess(
    entries: list[dict[str, Any]], config: DownstreamConfig, progress: bool
) -> tuple[torch.Tensor, torch.Tensor, set[int]]:
    from rich.progress import track

    with_mask, without_mask = _chains(config)
    images, masks, has_mask = [], [], set()
    for row, entry in enumerate(track(entries, description="preparing volumes", disable=not progress)):
        mask_wanted = config.lesion_mask_key in entry and entry[config.label_key] == LESION
        try:
            item = (with_mask if mask_wanted else without_mask)(entry)
        except Exception as err:  # name the case; keep a medgan error's own message
            cause = medgan_error_in(err)
            raise InputError(
                f"case {entry['_subject']} could not be prepared: {cause or err}",
                path=entry[next(iter(config.images))],
                fix="check the file with `medgan info`",
            ) from err
        images.append(torch.cat([_plain(item[k]).float() for k in config.images]))
        if mask_wanted:
            masks.append(_plain(item[config.lesion_mask_key]) > 0.5)
            has_mask.add(row)
        else:
            masks.append(torch.zeros((1, *config.spatial_size), dtype=torch.bool))
    return torch.stack(images), torch.stack(masks), has_mask


def _cases(roles: dict[str, list[dict[str, Any]]], config: DownstreamConfig) -> StudyCases:
    row = 0
    by_role: dict[str, list[StudyCase]] = {}
    for role in ("train", "validation", "test", "synthetic"):
        by_role[role] = []
        for entry in roles[role]:
            by_role[role].append(
                StudyCase(
                    row=row,
                    subject=entry["_subject"],
                    label=int(entry[config.label_key]),
                    synthetic=role == "synthetic",
                    source_subject=entry.get("source_subject"),
                    lesion_type=_lesion_type(entry, config),
                )
            )
            row += 1
    if not config.lesion_type_key:
        return StudyCases(**by_role)
    real = [*by_role["train"], *by_role["validation"], *by_role["test"]]
    types, reason = lesion_type_classes(real, by_role["synthetic"])
    if reason:
        LOG.warning("downstream: classify is lesion / no lesion only: %s (%r)", reason, config.lesion_type_key)
    else:
        LOG.info("downstream: classify also tells the lesion types apart: %s", ", ".join(types))
    return StudyCases(**by_role, lesion_types=types)


def _lesion_type(entry: dict[str, Any], config: DownstreamConfig) -> str | None:
    """A lesion case's type from the datalist (None for healthy cases, or when types are off or missing)."""
    if not config.lesion_type_key or entry[config.label_key] != LESION:
        return None
    value = entry.get(config.lesion_type_key)
    return str(value) if value not in (None, "") else None


def _read_cache(cache: Path) -> dict[str, Any] | None:
    """The cached tensors, or None when there are none or the file is unreadable (then it is rebuilt)."""
    if not cache.exists():
        return None
    try:
        return torch.load(cache, weights_only=True)
    except Exception as err:  # a torn or foreign file: rebuild rather than fail
        LOG.warning("downstream: ignoring unreadable cache %s (%s); preparing the volumes again", cache, err)
        return None


def load_study_data(config: DownstreamConfig, out_dir: Path, *, progress: bool = True) -> tuple[StudyData, str]:
    """The study's volumes (from the cache when its fingerprint matches) and that fingerprint."""
    for modality in config.images.values():
        get_preset(modality)  # an unknown preset is a ConfigError naming it
    roles = study_entries(config)
    fingerprint = data_fingerprint(config, roles)
    cases = _cases(roles, config)
    cache = out_dir / CACHE_DIR / CACHE_FILE
    stored = _read_cache(cache)
    if stored is not None and stored.get("fingerprint") == fingerprint:
        LOG.info("downstream: volumes from the cache %s", cache)
        has_mask = frozenset(stored["has_mask"].tolist())
        return StudyData(stored["images"], stored["masks"], has_mask, cases), fingerprint
    ordered = [e for role in ("train", "validation", "test", "synthetic") for e in roles[role]]
    images, masks, has_mask = _preprocess(ordered, config, progress)
    cache.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(cache) as temporary:
        torch.save(
            {
                "fingerprint": fingerprint,
                "images": images,
                "masks": masks,
                "has_mask": torch.tensor(sorted(has_mask), dtype=torch.int64),
            },
            temporary,
        )
    return StudyData(images, masks, frozenset(has_mask), cases), fingerprint
