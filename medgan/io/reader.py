"""``read_volume``: one entry point for NIfTI files and DICOM series, returning a MONAI MetaTensor.

Also the batch helper ``read_many`` (a bad file is reported and skipped) and
``MedganImageReader``, the MONAI ``ImageReader`` that puts the same reading and
validation inside ``LoadImaged`` transform chains.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.data import ImageReader, MetaTensor
from monai.utils import ensure_tuple

from medgan.errors import InputError, MedganError
from medgan.io.checks import apply_nan_policy
from medgan.io.dicom_read import is_dicom_file, read_dicom
from medgan.io.loaded import LoadedVolume
from medgan.io.nifti import is_nifti_path, read_nifti
from medgan.io.options import ReadOptions

logger = logging.getLogger(__name__)

WARNING_SEPARATOR = "\n"


def _load(path: Path, series_uid: str | None, options: ReadOptions) -> LoadedVolume:
    """Dispatch on what ``path`` is: a folder (DICOM series), a .nii/.nii.gz file, or a DICOM file."""
    if not path.exists():
        raise InputError("file or folder not found", path=path, fix="check the path")
    if series_uid is not None and not path.is_dir():
        raise InputError(f"series_uid={series_uid!r} was given but the path is a file, not a DICOM folder",
                         path=path, fix="drop series_uid, or give the folder that holds the series")
    if path.is_dir():
        return read_dicom(path, series_uid, options)
    if is_nifti_path(path):
        return read_nifti(path, options)
    if is_dicom_file(path) or path.suffix.lower() in (".dcm", ".dicom", ".ima"):
        return read_dicom(path, None, options)
    raise InputError(
        "unrecognised file type (neither NIfTI by name nor DICOM by content)",
        path=path,
        fix="give a .nii / .nii.gz file, a DICOM file or a folder holding one DICOM series",
    )


def read_volume(path: str | Path, *, series_uid: str | None = None,
                options: ReadOptions | None = None) -> MetaTensor:
    """Read a NIfTI file or a DICOM series folder as a channel-first float32 MetaTensor (1, I, J, K).

    Meta (see docs/contracts.md): ``affine`` (RAS, float64), ``original_affine``, ``spatial_shape``,
    ``filename_or_obj``, ``source_format`` ("nifti" | "dicom"), ``modality`` (DICOM Modality, "" if
    unknown), ``original_channel_dim`` = 0 (already channel-first), ``space`` = "RAS",
    ``read_warnings`` (one string, warnings separated by newlines; :func:`read_warnings_of` splits it),
    ``nonfinite_replaced`` (count); DICOM adds ``dicom_geometry``. Meta values are collation-safe
    (no None, no variable-length lists) so MONAI DataLoaders can batch them.
    Raises :class:`medgan.errors.InputError` (or its subclass ``DicomSeriesError``) for bad input.
    """
    options = options or ReadOptions()
    path = Path(path)
    loaded = _load(path, series_uid, options)
    replaced = apply_nan_policy(loaded.voxels, path, options, loaded.read_warnings)
    affine = np.asarray(loaded.affine_ras, dtype=np.float64)
    meta: dict[str, Any] = {
        "original_affine": affine.copy(),
        "spatial_shape": np.asarray(loaded.voxels.shape, dtype=np.int64),
        "filename_or_obj": str(path),
        "source_format": loaded.source_format,
        "modality": loaded.modality,
        "original_channel_dim": 0,
        "space": "RAS",
        "read_warnings": WARNING_SEPARATOR.join(loaded.read_warnings),
        "nonfinite_replaced": replaced,
        **loaded.extra_meta,
    }
    voxels = torch.from_numpy(np.ascontiguousarray(loaded.voxels, dtype=np.float32)[None])
    return MetaTensor(voxels, affine=torch.as_tensor(affine, dtype=torch.float64), meta=meta)


def read_warnings_of(volume_or_meta: MetaTensor | dict) -> list[str]:
    """The read warnings of a volume (or its meta dict) as a list of strings (empty when clean)."""
    meta = volume_or_meta.meta if isinstance(volume_or_meta, MetaTensor) else volume_or_meta
    text = meta.get("read_warnings", "")
    if isinstance(text, list | tuple):  # a batch collated by a DataLoader
        text = WARNING_SEPARATOR.join(str(t) for t in text if t)
    return [line for line in str(text).split(WARNING_SEPARATOR) if line]


def read_many(paths: Iterable[str | Path], *, series_uid: str | None = None,
              options: ReadOptions | None = None) -> Iterator[tuple[Path, MetaTensor | MedganError]]:
    """Read many volumes lazily, yielding ``(path, volume)`` or ``(path, error)`` for each.

    A bad input (any :class:`MedganError`) is logged and yielded in place of its volume so a batch
    job can report it and go on; bugs (other exceptions) still propagate.
    """
    for path in paths:
        path = Path(path)
        try:
            yield path, read_volume(path, series_uid=series_uid, options=options)
        except MedganError as err:
            logger.error("skipping %s: %s", path, err)
            yield path, err


class MedganImageReader(ImageReader):
    """MONAI ``ImageReader`` over :func:`read_volume`: same voxels, affine, meta and validation.

    ``LoadImaged(keys, reader=MedganImageReader())`` yields (1, I, J, K) float32 with the RAS affine;
    the array is already channel-first (``original_channel_dim`` 0), so ``EnsureChannelFirstd`` is not
    needed (and is a no-op). Several files for one key are stacked as channels; they must share shape
    and affine.
    """

    def __init__(self, options: ReadOptions | None = None, series_uid: str | None = None) -> None:
        super().__init__()
        self.options = options or ReadOptions()
        self.series_uid = series_uid

    def verify_suffix(self, filename: Sequence[str | Path] | str | Path) -> bool:
        """True for .nii / .nii.gz files, DICOM files and folders (DICOM series)."""
        for name in ensure_tuple(filename):
            path = Path(name)
            if not (path.is_dir() or is_nifti_path(path) or path.suffix.lower() == ".dcm" or is_dicom_file(path)):
                return False
        return True

    def read(self, data: Sequence[str | Path] | str | Path, **kwargs) -> list[MetaTensor] | MetaTensor:
        """Read one path (or several, to be stacked as channels) with :func:`read_volume`."""
        volumes = [read_volume(name, series_uid=self.series_uid, options=self.options)
                   for name in ensure_tuple(data)]
        return volumes if len(volumes) > 1 else volumes[0]

    def get_data(self, img: list[MetaTensor] | MetaTensor) -> tuple[np.ndarray, dict]:
        """Return the (C, I, J, K) array and the first volume's meta (plain dict, numpy affine)."""
        volumes = list(img) if isinstance(img, list | tuple) else [img]
        first = volumes[0]
        for other in volumes[1:]:
            if other.shape[1:] != first.shape[1:] or not np.allclose(other.affine, first.affine, atol=1e-4):
                raise InputError(
                    f"cannot stack as channels: shape {tuple(other.shape[1:])} / affine differ from "
                    f"{tuple(first.shape[1:])} of {first.meta['filename_or_obj']}",
                    path=other.meta["filename_or_obj"],
                    fix="resample the images onto one grid before loading them as channels of one key",
                )
        array = np.concatenate([v.numpy() for v in volumes], axis=0)
        meta = {key: value for key, value in first.meta.items() if key != "affine"}
        meta["affine"] = first.affine.numpy().copy()
        return array, meta
