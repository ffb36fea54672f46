"""Which files the report compares: scans from a datalist, a job's output folder or a plain folder.

* A datalist JSON (or a folder holding ``datalist.json``, as ``generate`` and ``enrich`` write):
  the real set is its ``real_splits`` lists (entries flagged ``"synthetic"`` left out; when none
  of those lists exists, every list); the synthetic set is every entry flagged ``"synthetic":
  true`` (an ``enrich`` datalist also lists the real cases it started from), or every entry when
  none is flagged; a training set is its ``training_split`` list.
* A folder without a datalist: every NIfTI file under it (masks and label maps, files named
  like ``mask_key`` or ``labels``, left out) and every folder of DICOM files, each one scan.

The compared image is ``image_key`` (default ``ct`` when the entries have it, else ``mri``);
lesion masks come from ``mask_key`` where an entry has one. Sets larger than ``max_volumes`` are
subsampled with the report's seed, so a report of a big set stays quick and reproducible.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from medgan.config.report import ReportConfig
from medgan.data.datalist import DEFAULT_PATH_KEYS, load_datalist, read_datalist_json
from medgan.errors import ConfigError, InputError

DATALIST_NAME = "datalist.json"


@dataclass(frozen=True)
class Scan:
    """One scan to compare: a display name, the image file (or DICOM folder) and its lesion mask if any."""

    name: str
    image: Path
    mask: Path | None = None
    source: str | None = None  # enrich's source_subject: the real head this case was made from


def _datalist_path(path: Path) -> Path | None:
    if path.is_file() and path.suffix == ".json":
        return path
    if path.is_dir() and (path / DATALIST_NAME).is_file():
        return path / DATALIST_NAME
    return None


def _lists(datalist: Path) -> list[str]:
    return [name for name, value in read_datalist_json(datalist).items() if isinstance(value, list)]


def _image_key(config: ReportConfig, entries: list[dict[str, Any]], datalist: Path) -> str:
    if config.image_key:
        return config.image_key
    keys = set().union(*(entry.keys() for entry in entries)) if entries else set()
    for candidate in ("ct", "mri", "image"):
        if candidate in keys:
            return candidate
    raise ConfigError(
        f"cannot tell which image to compare: the entries have keys {sorted(keys)}",
        path=datalist,
        fix="pass --set image_key=<key> (and --set modality=ct|mri)",
    )


def _entries(datalist: Path, lists: list[str], config: ReportConfig) -> list[tuple[str, dict[str, Any]]]:
    raw = read_datalist_json(datalist)
    probe = [e for name in lists for e in raw[name] if isinstance(e, dict)]
    key = _image_key(config, probe, datalist)
    path_keys = tuple(dict.fromkeys((*DEFAULT_PATH_KEYS, key, config.mask_key)))
    rows = []
    for name in lists:
        for index, entry in enumerate(load_datalist(datalist, name, require_keys=(key,), path_keys=path_keys)):
            entry["_image"] = entry[key]
            rows.append((str(entry.get("subject", f"{name}_{index:04d}")), entry))
    return rows


def _scans(rows: list[tuple[str, dict[str, Any]]], config: ReportConfig) -> list[Scan]:
    return [
        Scan(
            name,
            Path(entry["_image"]),
            Path(entry[config.mask_key]) if config.mask_key in entry else None,
            str(entry["source_subject"]) if entry.get("source_subject") is not None else None,
        )
        for name, entry in rows
    ]


def _folder_scans(folder: Path, config: ReportConfig) -> list[Scan]:
    skipped_names = (config.mask_key, "labels", "mask")
    scans = []
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.name.endswith((".nii", ".nii.gz")):
            if not path.name.startswith(skipped_names):
                scans.append(Scan(str(path.relative_to(folder)), path))
        elif path.is_dir() and any(child.suffix.lower() == ".dcm" for child in path.iterdir()):
            scans.append(Scan(str(path.relative_to(folder)), path))
    return scans


def _subsample(scans: list[Scan], config: ReportConfig) -> list[Scan]:
    if len(scans) <= config.max_volumes:
        return scans
    chosen = np.sort(np.random.default_rng(config.seed).permutation(len(scans))[: config.max_volumes])
    return [scans[i] for i in chosen]


def _require(path: Path, role: str) -> None:
    if not path.exists():
        raise InputError(
            f"the {role} input does not exist", path=path, fix=f"pass an existing --{role} datalist or folder"
        )


def _collect(
    path: Path, role: str, config: ReportConfig, select: Callable[[Path], list[tuple[str, dict[str, Any]]]]
) -> list[Scan]:
    """The scans of one role: a plain folder's files, or the datalist rows ``select`` picks."""
    _require(path, role)
    datalist = _datalist_path(path)
    scans = _folder_scans(path, config) if datalist is None else _scans(select(datalist), config)
    return _checked(_subsample(scans, config), path, role)


def real_scans(path: Path, config: ReportConfig) -> list[Scan]:
    """The held-out real scans (see the module docstring)."""

    def select(datalist: Path) -> list[tuple[str, dict[str, Any]]]:
        present = _lists(datalist)
        lists = [name for name in config.real_splits if name in present] or present
        return [(n, e) for n, e in _entries(datalist, lists, config) if not e.get("synthetic")]

    return _collect(path, "real", config, select)


def synthetic_scans(path: Path, config: ReportConfig) -> list[Scan]:
    """The synthetic samples (see the module docstring)."""

    def select(datalist: Path) -> list[tuple[str, dict[str, Any]]]:
        rows = _entries(datalist, _lists(datalist), config)
        return [(n, e) for n, e in rows if e.get("synthetic")] or rows

    return _collect(path, "synthetic", config, select)


def training_scans(path: Path, config: ReportConfig) -> list[Scan]:
    """The generator's training cases (memorisation)."""

    def select(datalist: Path) -> list[tuple[str, dict[str, Any]]]:
        return [(n, e) for n, e in _entries(datalist, [config.training_split], config) if not e.get("synthetic")]

    return _collect(path, "training", config, select)


def has_training_list(path: Path, config: ReportConfig) -> bool:
    """Whether ``path`` is a datalist with the training list (the default training set for memorisation)."""
    datalist = _datalist_path(path)
    return datalist is not None and config.training_split in _lists(datalist)


def _checked(scans: list[Scan], path: Path, role: str) -> list[Scan]:
    if len(scans) < 2:
        raise InputError(
            f"the {role} set holds {len(scans)} scan(s); the report compares sets of at least 2",
            path=path,
            fix="point it at a datalist or folder with more scans (NIfTI files or DICOM series folders)",
        )
    return scans
