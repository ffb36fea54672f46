"""Checks every reader applies, whatever the file format: memory budget, slice count, NaN/Inf.

Kept apart from the format readers so NIfTI and DICOM refuse (or repair) the
same problems with the same words.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from medgan.errors import InputError
from medgan.io.options import ReadOptions

logger = logging.getLogger(__name__)


def record_warning(read_warnings: list[str], message: str) -> None:
    """Log a read warning and keep it for ``meta["read_warnings"]`` (shown by ``medgan info``)."""
    logger.warning(message)
    read_warnings.append(message)


def check_memory_budget(shape: tuple[int, ...], path: Path, options: ReadOptions) -> None:
    """Refuse a volume whose float32 array would exceed ``options.max_bytes`` (checked before loading)."""
    needed = int(np.prod(shape, dtype=np.int64)) * 4
    if needed > options.max_bytes:
        raise InputError(
            f"volume of shape {tuple(shape)} needs {needed:,} bytes ({needed / 2**20:.1f} MiB) as float32, over "
            f"the memory budget of {options.max_bytes:,} bytes ({options.max_bytes / 2**20:.1f} MiB)",
            path=path,
            fix="raise ReadOptions(max_bytes=...) if this machine has the memory, or crop/downsample the "
            "volume first",
        )


def check_slice_count(shape: tuple[int, ...], path: Path, options: ReadOptions) -> None:
    """Refuse a 2D image (fewer than ``options.min_slices`` slices) where a 3D volume is expected."""
    if shape[-1] < options.min_slices:
        raise InputError(
            f"image of shape {tuple(shape)} has {shape[-1]} slice(s); a 3D volume with at least "
            f"{options.min_slices} slices is expected",
            path=path,
            fix="give a 3D volume (a whole DICOM series folder, not one file), or pass "
            "ReadOptions(min_slices=1) to read a 2D image as a one-slice volume",
        )


def apply_nan_policy(voxels: np.ndarray, path: Path, options: ReadOptions, read_warnings: list[str]) -> int:
    """Refuse or replace (in place) NaN/Inf voxels per ``options.nan_policy``; return how many were replaced."""
    nonfinite = ~np.isfinite(voxels)
    count = int(nonfinite.sum())
    if count == 0:
        return 0
    n_nan = int(np.isnan(voxels).sum())
    if options.nan_policy == "error":
        raise InputError(
            f"{count} of {voxels.size} voxels are not finite ({n_nan} NaN, {count - n_nan} Inf)",
            path=path,
            fix="fix the file, or let medgan replace them: `medgan translate --nan-fill VALUE`, or "
            "ReadOptions(nan_policy='replace', nan_fill=VALUE) from Python",
        )
    voxels[nonfinite] = options.nan_fill
    record_warning(
        read_warnings,
        f"replaced {count} non-finite voxels ({n_nan} NaN, {count - n_nan} Inf) with {options.nan_fill}",
    )
    return count
