"""Content hashes (SHA-256) of files and folders: the one implementation medgan uses.

Jobs decide whether an item is already finished by comparing hashes, never
timestamps; trained runs name the exact weights they loaded; the phantom writer
lists checksums of what it wrote. A file is hashed as its bytes, several files as
their bytes one after another, and a folder (a DICOM series) as the hash of its
sorted file hashes, so renaming slices or copying the folder elsewhere does not
change it but changing any slice does. Files are read in 1 MiB chunks so memory
stays flat.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

from medgan.errors import InputError

_CHUNK_BYTES = 1 << 20


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of one file's bytes (what ``sha256sum`` prints)."""
    return sha256_files([path])


def sha256_files(paths: Iterable[str | Path]) -> str:
    """Hex SHA-256 over the bytes of ``paths`` read in order, as if they were one file.

    Identifies a set whose order is fixed by the caller, e.g. the weight files a
    trained run loaded; a different order gives a different digest.
    """
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as handle:
            while chunk := handle.read(_CHUNK_BYTES):
                digest.update(chunk)
    return digest.hexdigest()


def _visible_files(folder: Path) -> list[Path]:
    """Regular files under ``folder`` (recursively), skipping hidden names such as ``.DS_Store``."""
    return [
        path
        for path in folder.rglob("*")
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(folder).parts)
    ]


def sha256_path(path: str | Path) -> str:
    """Hex SHA-256 of a file, or of a folder as the hash of its sorted per-file hashes.

    Raises :class:`InputError` when the path does not exist or is an empty folder,
    because a job cannot fingerprint (and so cannot trust) such an input.
    """
    path = Path(path)
    if path.is_file():
        return sha256_file(path)
    if path.is_dir():
        file_hashes = sorted(sha256_file(child) for child in _visible_files(path))
        if not file_hashes:
            raise InputError("folder holds no files", path=path, fix="point to a folder with DICOM files")
        return hashlib.sha256("\n".join(file_hashes).encode("ascii")).hexdigest()
    raise InputError("does not exist", path=path, fix="check the path (relative paths start at the current folder)")
