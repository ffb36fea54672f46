"""What the reconstruct job measures from each kind of input: simulated k-space of an image, or an HDF5 file's own.

Both give a :class:`Measured`: the undersampled k-space on the network's [0, 1] magnitude scale,
the line mask, the fully sampled reference (when there is one) and how to write the results
back in the input's own units and format. The job (:mod:`pipelines.reconstruct`) then runs the
network and scores and writes whatever it was given the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
import torch

from medgan.data.kspace import ifft_centered, line_mask, simulate_kspace
from medgan.data.presets import ModalityPreset
from medgan.errors import InputError
from medgan.io import read_volume, write_nifti
from medgan.io.kspace_h5 import read_kspace_h5

HDF5_SUFFIXES = (".h5", ".hdf5")
FULL_SCALE_PERCENTILE = 99.5


@dataclass
class MaskSettings:
    """How to undersample a fully sampled input (and the smooth phase given to a magnitude image's k-space)."""

    acceleration: float
    center_fraction: float
    kind: str
    seed: int
    phase_amplitude: float = 0.0


@dataclass
class Measured:
    """One input's undersampled k-space ``(1, 1, *spatial)`` on the [0, 1] scale, and what to compare and write.

    ``reference`` is the fully sampled magnitude on the same grid (None when the input was
    already undersampled); ``target`` a reference on a centre crop (fastMRI's
    ``reconstruction_esc``), compared after cropping; ``write`` writes one named magnitude
    (the [0, 1] scale) into a staging folder in the input's units and format.
    """

    kspace: torch.Tensor
    lines: torch.Tensor
    reference: np.ndarray | None
    write: Callable[[Path, str, np.ndarray], None]
    target: np.ndarray | None = None
    notes: dict[str, object] = field(default_factory=dict)


def is_kspace_file(path: Path) -> bool:
    return path.suffix.lower() in HDF5_SUFFIXES


def measure_image(path: Path, preset: ModalityPreset, settings: MaskSettings, spatial_dims: int) -> Measured:
    """Simulated single-coil k-space of a fully sampled image (NIfTI / DICOM), undersampled along its last axis.

    The magnitude gets the smooth random phase the run trained with (seeded per item): a real
    image's k-space is Hermitian-symmetric, which would let a network read unsampled lines off
    their sampled mirror images, a shortcut no scanner's complex data offers.
    """
    volume = read_volume(path)
    affine = np.asarray(volume.affine, dtype=np.float64)
    physical = volume[0].as_subclass(torch.Tensor).float()
    window = preset.fixed_window or preset.window_of_volume(physical)
    magnitude = ((preset.to_network(physical, window).as_subclass(torch.Tensor) + 1.0) / 2.0).clamp(0.0, 1.0)
    lines = _lines(magnitude.shape[-1], settings)
    kspace = simulate_kspace(
        magnitude[None, None], spatial_dims=spatial_dims, phase_amplitude=settings.phase_amplitude, seed=settings.seed
    )
    kspace = kspace * lines

    def write(folder: Path, name: str, image: np.ndarray) -> None:
        back = preset.from_network(torch.from_numpy(image * 2.0 - 1.0), window).numpy()
        write_nifti(back.astype(np.float32), folder / f"{name}.nii.gz", affine=affine)

    notes = {"mask_source": "simulated", "phase_amplitude": settings.phase_amplitude}
    return Measured(kspace, lines, magnitude.numpy(), write, notes=notes)


def measure_kspace_file(path: Path, settings: MaskSettings) -> Measured:
    """A fastMRI-style single-coil file: its k-space (undersampled here unless it carries a ``mask``), 2D per slice.

    The k-space is divided by the 99.5th percentile of its zero-filled magnitude, so the
    network sees the [0, 1] scale it was trained on; outputs are multiplied back. With a
    ``reconstruction_esc`` target, outputs are compared (and written, as fastMRI submissions
    are) on the target's centre crop.
    """
    measured_file = read_kspace_h5(path)
    if measured_file.multicoil:
        raise InputError(
            f"multi-coil k-space ({measured_file.kspace.shape[1]} coils); the recon runs reconstruct single-coil data",
            path=path,
            fix="give single-coil files (fastMRI singlecoil_*), or combine the coils into one first",
        )
    kspace = measured_file.kspace
    if measured_file.mask is None:
        lines = _lines(kspace.shape[-1], settings)
        reference = ifft_centered(kspace, spatial_dims=2).abs()
        notes: dict[str, object] = {"mask_source": "simulated"}
    else:
        lines = measured_file.mask
        reference = None
        notes = {"mask_source": "the file's mask (already undersampled; --acceleration and --mask not used)"}
    kspace = kspace * lines
    zero_filled = ifft_centered(kspace, spatial_dims=2).abs()
    scale = float(np.percentile(zero_filled.numpy(), FULL_SCALE_PERCENTILE))
    if not scale > 0:
        raise InputError("the k-space is zero where it is sampled", path=path, fix="check the file's kspace dataset")
    target = None if measured_file.target is None else measured_file.target.numpy() / scale
    notes |= {"scale": scale, "target": "reconstruction_esc centre crop" if target is not None else None}

    def write(folder: Path, name: str, image: np.ndarray) -> None:
        cropped = image if target is None else centre_crop(image, target.shape[-2:])
        with h5py.File(folder / f"{name}.h5", "w") as handle:  # fastMRI's submission layout
            handle.create_dataset("reconstruction", data=(cropped * scale).astype(np.float32))
            handle.attrs["source"] = str(path)

    return Measured(
        (kspace / scale)[None, None],
        lines,
        None if reference is None else reference.numpy() / scale,
        write,
        target=target,
        notes=notes,
    )


def centre_crop(image: np.ndarray, size: tuple[int, ...]) -> np.ndarray:
    """The centre ``size`` of the last axes of ``image`` (fastMRI's ``center_crop``), as far as it reaches."""
    slices = []
    for edge, wanted in zip(image.shape[-len(size) :], size, strict=True):
        kept = min(edge, wanted)
        start = (edge - kept) // 2
        slices.append(slice(start, start + kept))
    return image[(Ellipsis, *slices)]


def _lines(count: int, settings: MaskSettings) -> torch.Tensor:
    return line_mask(count, settings.acceleration, settings.center_fraction, kind=settings.kind, seed=settings.seed)
