"""Output names for job items, derived from input paths only.

Names come from the input file or folder name (never from header values, which
may carry patient data), are reduced to a safe character set, and are made
unique over the *whole* sorted input list before sharding, so every shard on
every machine gives an input the same output name.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

_IMAGE_SUFFIXES = (".nii.gz", ".nii", ".mha", ".mhd", ".nrrd", ".dcm", ".h5", ".hdf5")
_UNSAFE_CHARACTERS = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_NAME_LENGTH = 96


def sanitize_name(text: str) -> str:
    """Reduce ``text`` to ``[A-Za-z0-9._-]``, no leading dots, at most 96 characters, never empty."""
    safe = _UNSAFE_CHARACTERS.sub("_", text).strip("._-")
    return safe[:_MAX_NAME_LENGTH].rstrip("._-") or "item"


def input_stem(path: str | Path) -> str:
    """The name of an input without its image suffix (``mri.nii.gz`` -> ``mri``, folder -> folder name)."""
    name = Path(path).name
    lowered = name.lower()
    for suffix in _IMAGE_SUFFIXES:
        if lowered.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def _name_with_parents(path: Path, n_parents: int) -> str:
    """``input_stem`` prefixed by the ``n_parents`` nearest folder names, joined with ``_``."""
    parents = [part for part in path.parent.parts if part not in ("/", "")][-n_parents:] if n_parents else []
    return sanitize_name("_".join([*parents, input_stem(path)]))


def unique_output_names(input_paths: Sequence[str | Path]) -> dict[Path, str]:
    """Map every input path to a unique, safe output name (case-insensitively unique).

    An input keeps its own stem when no other input shares it; colliding inputs
    (``a/mri.nii.gz`` and ``b/mri.nii.gz``) are prefixed with as many parent folder
    names as it takes (``a_mri``, ``b_mri``); inputs that still collide get a short
    hash of their full path. The result depends only on the set of paths.
    """
    paths = sorted({Path(path).absolute() for path in input_paths})
    names: dict[Path, str] = {}
    unresolved = paths
    max_depth = max((len(path.parts) for path in paths), default=0)
    for depth in range(max_depth + 1):
        groups: dict[str, list[Path]] = defaultdict(list)
        for path in unresolved:
            groups[_name_with_parents(path, depth).lower()].append(path)
        taken = {name.lower() for name in names.values()}
        unresolved = []
        for key, members in groups.items():
            if len(members) == 1 and key not in taken:
                names[members[0]] = _name_with_parents(members[0], depth)
            else:
                unresolved.extend(members)
        if not unresolved:
            break
    for path in unresolved:
        digest = hashlib.sha256(str(path).encode("utf-8")).hexdigest()[:8]
        names[path] = f"{sanitize_name(input_stem(path))[:80]}-{digest}"
    return names
