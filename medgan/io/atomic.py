"""Atomic writes: an output is either complete under its final name or absent.

Every writer in medgan writes to a temporary name in the destination folder,
flushes it to disk and renames it into place, so a crash or a kill never leaves
a half-written file (or a half-written DICOM series folder) under a name that a
later run would trust.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path


def _fsync_dir(folder: Path) -> None:
    """Flush a folder's entry table so a rename inside it survives a power cut."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def fsync_file(path: Path) -> None:
    """Flush one file's contents to disk."""
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


@contextlib.contextmanager
def atomic_path(final_path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``final_path``; on success fsync and rename it into place.

    The temporary name keeps the final suffixes (``.nii.gz`` stays ``.nii.gz``) so
    libraries that pick a format from the extension still do the right thing.
    On any exception the temporary file is removed and ``final_path`` is untouched.
    """
    final_path = Path(final_path)
    final_path.parent.mkdir(parents=True, exist_ok=True)
    suffix = "".join(final_path.suffixes)
    stem = final_path.name[: len(final_path.name) - len(suffix)] if suffix else final_path.name
    tmp_path = final_path.with_name(f".{stem}.tmp-{uuid.uuid4().hex[:8]}{suffix}")
    try:
        yield tmp_path
        fsync_file(tmp_path)
        os.replace(tmp_path, final_path)
        _fsync_dir(final_path.parent)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_directory(final_dir: str | Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a staging folder beside ``final_dir``; on success rename it to ``final_dir``.

    Used for DICOM series: readers that see the folder see every slice or none.
    With ``overwrite`` an existing ``final_dir`` is replaced only after the new one
    is complete.
    """
    final_dir = Path(final_dir)
    final_dir.parent.mkdir(parents=True, exist_ok=True)
    if final_dir.exists() and not overwrite:
        raise FileExistsError(f"{final_dir} already exists; pass overwrite=True to replace it")
    staging = final_dir.with_name(f".{final_dir.name}.staging-{uuid.uuid4().hex[:8]}")
    staging.mkdir()
    try:
        yield staging
        for child in staging.iterdir():
            if child.is_file():
                fsync_file(child)
        _fsync_dir(staging)
        if final_dir.exists():
            old = final_dir.with_name(f".{final_dir.name}.old-{uuid.uuid4().hex[:8]}")
            os.replace(final_dir, old)
            os.replace(staging, final_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, final_dir)
        _fsync_dir(final_dir.parent)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write a small text file (JSON, YAML, a manifest) atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)
