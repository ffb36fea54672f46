"""Read fastMRI-style HDF5 k-space files: ``kspace`` (complex) and, when present, the reference image.

fastMRI files hold ``kspace`` as complex64 ``(slices, H, W)`` (single coil) or ``(slices, coils,
H, W)`` (multi-coil), and optionally ``reconstruction_esc`` (single coil) or
``reconstruction_rss`` (multi-coil) as the fully sampled magnitude target (a centre crop of the
image, 320 x 320 in fastMRI), and ``mask`` ``(W,)`` when the k-space is already undersampled
(fastMRI's test files). Anything else is refused with an error naming the file and what is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import torch

from medgan.errors import InputError

TARGET_KEYS = ("reconstruction_esc", "reconstruction_rss")


@dataclass(frozen=True)
class KspaceFile:
    """One file's k-space ``(slices, [coils,] H, W)`` complex64, its target and line mask (or None), attributes."""

    kspace: torch.Tensor
    target: torch.Tensor | None
    attributes: dict[str, object]
    mask: torch.Tensor | None = None

    @property
    def multicoil(self) -> bool:
        return self.kspace.ndim == 4


def read_kspace_h5(path: str | Path) -> KspaceFile:
    """Read and check a fastMRI-style file (see the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise InputError("no such file", path=path, fix="check the path")
    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise InputError(f"not an HDF5 file ({error})", path=path, fix="give a fastMRI .h5 file") from error
    with handle:
        if "kspace" not in handle:
            raise InputError(
                f"the HDF5 file has no 'kspace' dataset (it has {sorted(handle.keys())})",
                path=path,
                fix="give a fastMRI-style file with a complex 'kspace' dataset",
            )
        kspace = np.asarray(handle["kspace"])
        if not np.iscomplexobj(kspace):
            raise InputError(
                f"'kspace' is {kspace.dtype}, not complex", path=path, fix="store k-space as complex64 samples"
            )
        if kspace.ndim not in (3, 4) or min(kspace.shape[-2:]) < 2:
            raise InputError(
                f"'kspace' has shape {kspace.shape}; expected (slices, H, W) or (slices, coils, H, W)",
                path=path,
                fix="store one volume's k-space per file, slices first",
            )
        if not np.isfinite(kspace).all():
            raise InputError("'kspace' holds NaN or infinite samples", path=path, fix="re-export the raw data")
        target = next((np.asarray(handle[key]) for key in TARGET_KEYS if key in handle), None)
        mask = _line_mask(handle, kspace.shape[-1], path) if "mask" in handle else None
        attributes = {key: _plain(value) for key, value in handle.attrs.items()}
    if target is not None and (target.ndim != 3 or target.shape[0] != kspace.shape[0]):
        raise InputError(
            f"the target image has shape {target.shape}; expected (slices={kspace.shape[0]}, H, W)",
            path=path,
            fix="store one magnitude image per k-space slice, or drop the target",
        )
    return KspaceFile(
        torch.from_numpy(kspace.astype(np.complex64)),
        None if target is None else torch.from_numpy(target.astype(np.float32)),
        attributes,
        mask,
    )


def _line_mask(handle: h5py.File, lines: int, path: Path) -> torch.Tensor:
    """The file's ``mask`` as a {0, 1} float ``(W,)`` line mask, checked against the k-space's last axis."""
    mask = np.asarray(handle["mask"]).astype(np.float32).reshape(-1)
    if mask.size != lines or not np.isin(mask, (0.0, 1.0)).all():
        raise InputError(
            f"'mask' has {mask.size} entries ({np.unique(mask)[:4]}...); expected {lines} zeros and ones",
            path=path,
            fix="store one 0/1 entry per k-space column (the last axis), as fastMRI does",
        )
    if not mask.any():
        raise InputError("'mask' samples no k-space line", path=path, fix="check the file's mask dataset")
    return torch.from_numpy(mask)


def write_kspace_h5(
    path: str | Path, kspace: torch.Tensor, target: torch.Tensor | None = None, mask: torch.Tensor | None = None
) -> Path:
    """Write a fastMRI-style file (for tests and simulated data); ``kspace`` complex ``(slices, [coils,] H, W)``."""
    path = Path(path)
    with h5py.File(path, "w") as handle:
        handle.create_dataset("kspace", data=kspace.numpy().astype(np.complex64))
        if mask is not None:
            handle.create_dataset("mask", data=mask.numpy().astype(bool))
        if target is not None:
            key = TARGET_KEYS[1] if kspace.ndim == 4 else TARGET_KEYS[0]
            handle.create_dataset(key, data=target.numpy().astype(np.float32))
        handle.attrs["acquisition"] = "medgan-simulated"
    return path


def _plain(value: object) -> object:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.generic):
        return value.item()
    return value
