"""Datalists: MONAI decathlon-style JSON files that list the volumes of each split.

A datalist holds ``training`` / ``validation`` / ``test`` lists of entries such as
``{"subject": "subject_000", "mri": "subject_000/mri.nii.gz", "ct": ..., "labels": ...,
"lesion_mask": ..., "label": 1}``. Only the *path keys* (``mri``, ``ct``, ``labels``,
``lesion_mask``, ``image`` by default) are file paths; ``subject`` and ``label`` (a class
id here, unlike MONAI's segmentation convention) are plain values. That is why paths
are resolved here rather than by ``monai.data.load_decathlon_datalist``, which guesses
path-ness from whether a string names an existing file and would turn a subject id
that matches a folder name into a path.

Path rules: relative paths are resolved against the datalist's folder; absolute
paths are kept. A relative path that climbs out of that folder with ``..`` (clinical
trees do that) must exist even when ``check_files=False``, so a typo cannot silently
point outside the dataset.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from medgan.errors import ConfigError, InputError
from medgan.io import atomic_write_text

SPLITS = ("training", "validation", "test")
DEFAULT_PATH_KEYS = ("image", "mri", "ct", "labels", "lesion_mask")
"""Entry keys whose values are file (or DICOM folder) paths."""


def read_datalist_json(path: str | Path) -> dict[str, Any]:
    """Parse a datalist JSON file into its dict, with InputError for a missing or malformed file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(
            "datalist file does not exist", path=path, fix="check the path (e.g. run `medgan sample-data`)"
        )
    try:
        content = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"datalist is not valid JSON ({err})", path=path, fix="repair or regenerate the file") from err
    if not isinstance(content, dict):
        raise InputError("datalist must be a JSON object with split lists", path=path, fix='e.g. {"training": [...]}')
    return content


def load_datalist(
    path: str | Path,
    split: str = "training",
    *,
    require_keys: Sequence[str] = (),
    path_keys: Sequence[str] = DEFAULT_PATH_KEYS,
    check_files: bool = True,
) -> list[dict[str, Any]]:
    """Read one split of a datalist, resolve its paths and validate every entry.

    ``require_keys`` lists keys every entry must have for the use at hand (e.g.
    ``("mri", "ct")`` for paired training). With ``check_files`` every path must
    exist. Errors name the datalist, the entry index and key, and the path.
    An unknown split is a ConfigError listing the splits the file has.
    """
    path = Path(path)
    content = read_datalist_json(path)
    if split not in content:
        raise ConfigError(
            f"datalist has no split {split!r}",
            path=path,
            fix=f"use one of: {', '.join(k for k, v in content.items() if isinstance(v, list)) or '(none)'}",
        )
    entries = content[split]
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise InputError(f"split {split!r} must be a list of objects", path=path, fix="fix the datalist JSON")
    folder = path.parent.resolve()
    resolved = []
    for index, entry in enumerate(entries):
        missing = [key for key in require_keys if key not in entry]
        if missing:
            raise InputError(
                f"{split}[{index}] lacks required key(s) {missing} (has {sorted(entry)})",
                path=path,
                fix="add them to the entry, or use a datalist made for this job",
            )
        resolved.append(
            {
                key: _resolve_path(value, folder, path, split, index, key, check_files)
                if key in path_keys and value is not None
                else value
                for key, value in entry.items()
            }
        )
    return resolved


def _resolve_path(value: Any, folder: Path, datalist: Path, split: str, index: int, key: str, check_files: bool) -> str:
    """Absolute path of one entry value, checked per the module's path rules."""
    where = f"{split}[{index}].{key}"
    if not isinstance(value, str) or not value:
        raise InputError(f"{where} must be a path string, got {value!r}", path=datalist, fix="fix the datalist")
    raw = Path(value).expanduser()
    full = Path(os.path.normpath(raw if raw.is_absolute() else folder / raw))
    escapes = not raw.is_absolute() and not full.is_relative_to(folder)
    if (check_files or escapes) and not full.exists():
        reason = " (it climbs out of the datalist folder, which is allowed only for existing paths)" if escapes else ""
        raise InputError(
            f"{where} points to a missing file: {full}{reason}",
            path=datalist,
            fix="correct the path in the datalist (relative paths count from its folder) or restore the file",
        )
    return str(full)


def save_datalist(
    splits: Mapping[str, Sequence[Mapping[str, Any]]],
    path: str | Path,
    *,
    path_keys: Sequence[str] = DEFAULT_PATH_KEYS,
) -> Path:
    """Write a decathlon-style datalist atomically; paths inside its folder are stored relative.

    Paths outside the folder stay absolute, so the file can move together with its
    data folder without breaking, and entries round-trip through :func:`load_datalist`.
    """
    path = Path(path)
    folder = path.parent.resolve()
    content = {
        split: [
            {
                key: _relative_if_inside(value, folder) if key in path_keys and value is not None else value
                for key, value in entry.items()
            }
            for entry in entries
        ]
        for split, entries in splits.items()
    }
    atomic_write_text(path, json.dumps(content, indent=2) + "\n")
    return path


def _relative_if_inside(value: str | Path, folder: Path) -> str:
    full = Path(value)
    if not full.is_absolute():
        return full.as_posix()
    full = Path(os.path.normpath(full))
    return full.relative_to(folder).as_posix() if full.is_relative_to(folder) else str(full)


def make_unpaired(
    entries: Sequence[Mapping[str, Any]],
    source_key: str,
    target_key: str,
    seed: int,
    *,
    subject_key: str = "subject",
) -> list[dict[str, Any]]:
    """Pair each entry's ``source_key`` volume with another subject's ``target_key`` volume (CycleGAN).

    Entries are shuffled by subject (seeded), grouped so one subject's entries sit
    together, and each is paired with the entry half the list away. That pairing
    never matches a subject with itself whenever it is possible at all, i.e. unless
    one subject holds more than half the entries (ConfigError). Entries without
    ``subject_key`` count as their own subject. Returns dicts with ``source_key``,
    ``target_key``, ``source_subject`` and ``target_subject``.
    """
    for index, entry in enumerate(entries):
        for key in (source_key, target_key):
            if key not in entry:
                raise ConfigError(f"entry {index} has no {key!r} key, needed to make unpaired data")
    subjects = [str(entry.get(subject_key, f"#{index}")) for index, entry in enumerate(entries)]
    distinct = sorted(set(subjects))
    largest = max((subjects.count(s) for s in distinct), default=0)
    if len(entries) < 2 or largest > len(entries) // 2:
        raise ConfigError(
            f"cannot pair {len(entries)} entries across subjects: one subject has {largest} of them",
            fix="unpaired data needs at least two subjects, none with more than half the entries",
        )
    rng = np.random.default_rng(seed)
    subject_order = {subject: rank for rank, subject in enumerate(rng.permutation(distinct))}
    entry_order = sorted(range(len(entries)), key=lambda i: (subject_order[subjects[i]], rng.random()))
    shift = len(entries) // 2
    pairs = []
    for position, source_index in enumerate(entry_order):
        target_index = entry_order[(position + shift) % len(entries)]
        pairs.append(
            {
                source_key: entries[source_index][source_key],
                target_key: entries[target_index][target_key],
                "source_subject": subjects[source_index],
                "target_subject": subjects[target_index],
            }
        )
    return pairs
