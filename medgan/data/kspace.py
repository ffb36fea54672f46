"""Undersampled MRI k-space: centred FFTs, sampling masks, simulated single-coil k-space, data consistency.

Why: the reconstruction method learns to fill in k-space lines that were not measured,
so training and the ``reconstruct`` job need (1) k-space simulated from magnitude images
for data sets without raw data, (2) reproducible undersampling masks with fastMRI's
conventions, and (3) the data-consistency step that puts measured samples back.

MONAI provides the pieces used here: ``fftn_centered_t`` / ``ifftn_centered_t`` (orthonormal
centred FFTs on real tensors with a trailing (real, imaginary) axis) and the fastMRI line
masks ``RandomKspaceMask`` / ``EquispacedKspaceMask`` (a fully sampled centre fraction plus
random or equispaced lines, chosen along the last spatial axis). Written here only what
MONAI lacks: the variable-density 2D mask for 3D volumes, the smooth random phase, the
checks with clear errors, and complex-dtype wrappers.

Conventions: k-space is a complex tensor ``(..., *spatial)`` (``torch.complex64``); the
FFT runs over the last ``spatial_dims`` axes, centred (DC in the middle) and orthonormal,
so ``ifft(fft(x)) == x`` and energies match. A mask is a float {0, 1} tensor that
broadcasts against the k-space.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from monai.apps.reconstruction.transforms.array import EquispacedKspaceMask, RandomKspaceMask
from monai.networks.blocks.fft_utils_t import fftn_centered_t, ifftn_centered_t
from scipy import ndimage

from medgan.errors import ConfigError

MASK_KINDS = ("random", "equispaced")


def fft_centered(image: torch.Tensor, spatial_dims: int = 2) -> torch.Tensor:
    """Complex k-space of a real or complex image over its last ``spatial_dims`` axes (MONAI's centred FFT)."""
    as_complex = image if image.is_complex() else torch.complex(image.float(), torch.zeros_like(image.float()))
    return torch.view_as_complex(fftn_centered_t(torch.view_as_real(as_complex).contiguous(), spatial_dims))


def ifft_centered(kspace: torch.Tensor, spatial_dims: int = 2) -> torch.Tensor:
    """Complex image of complex ``kspace`` over its last ``spatial_dims`` axes (MONAI's centred inverse FFT)."""
    if not kspace.is_complex():
        raise ValueError(f"k-space must be a complex tensor, got dtype {kspace.dtype}")
    return torch.view_as_complex(ifftn_centered_t(torch.view_as_real(kspace).contiguous(), spatial_dims))


def check_sampling(acceleration: float, center_fraction: float) -> None:
    """ConfigError unless acceleration >= 1 and 0 < center fraction < 1."""
    if not acceleration >= 1.0:
        raise ConfigError(
            f"acceleration must be >= 1 (1 = fully sampled), got {acceleration}", fix="e.g. --acceleration 4"
        )
    if not 0.0 < center_fraction < 1.0:
        raise ConfigError(
            f"center fraction must lie in (0, 1), got {center_fraction}",
            fix="fastMRI uses 0.08 at 4x and 0.04 at 8x",
        )


def line_mask(
    num_lines: int, acceleration: float, center_fraction: float, *, kind: str = "random", seed: int = 0
) -> torch.Tensor:
    """A fastMRI Cartesian line mask ``(num_lines,)`` {0, 1}: MONAI's random or equispaced mask, from ``seed``.

    The centre ``center_fraction`` of the lines is always sampled; the rest at the rate that
    gives ``acceleration`` overall (in expectation for ``random``).
    """
    check_sampling(acceleration, center_fraction)
    if kind not in MASK_KINDS:
        raise ConfigError(f"unknown mask kind {kind!r}", fix=f"use one of {', '.join(MASK_KINDS)}")
    if acceleration == 1.0:
        return torch.ones(num_lines)
    maker_type = RandomKspaceMask if kind == "random" else EquispacedKspaceMask
    maker = maker_type(center_fractions=[center_fraction], accelerations=[acceleration], spatial_dims=2)
    maker.set_random_state(seed=seed)
    maker(torch.zeros(1, 1, num_lines, 2))  # MONAI draws its mask while masking a (coil, H, W, 2) k-space
    mask = maker.mask.reshape(-1).float()
    if not mask.any():
        raise ConfigError(f"the {kind} mask of {num_lines} lines samples nothing", fix="lower the acceleration")
    return mask


def variable_density_mask(
    shape: Sequence[int], acceleration: float, center_fraction: float, *, power: float = 2.0, seed: int = 0
) -> torch.Tensor:
    """A 2D variable-density mask ``shape`` (the two phase-encoding axes of a 3D acquisition).

    A fully sampled central ellipse covering ``center_fraction`` of each axis, and elsewhere
    points drawn with probability falling as ``(1 - r) ** power`` (r = normalised radius),
    scaled so the expected sampled fraction is ``1 / acceleration``. Reproducible from ``seed``.
    """
    check_sampling(acceleration, center_fraction)
    axes = [np.linspace(-1.0, 1.0, n) for n in shape]
    grid = np.meshgrid(*axes, indexing="ij")
    radius = np.sqrt(sum(g**2 for g in grid)) / np.sqrt(len(shape))
    centre = np.sqrt(sum((g / center_fraction) ** 2 for g in grid)) <= 1.0
    density = (1.0 - np.clip(radius, 0.0, 1.0)) ** power
    density[centre] = 0.0
    wanted = max(np.prod(shape) / acceleration - centre.sum(), 0.0)
    scale = wanted / max(density.sum(), 1e-9)
    probability = np.clip(density * scale, 0.0, 1.0)
    rng = np.random.default_rng(seed)
    mask = centre | (rng.random(tuple(shape)) < probability)
    return torch.from_numpy(mask.astype(np.float32))


def smooth_phase(shape: Sequence[int], *, amplitude: float = np.pi / 4, seed: int = 0) -> torch.Tensor:
    """A smooth random phase map (radians) so simulated k-space is not trivially Hermitian-symmetric."""
    rng = np.random.default_rng(seed)
    field = ndimage.gaussian_filter(rng.standard_normal(tuple(shape)), sigma=[max(n / 8.0, 1.0) for n in shape])
    field /= np.abs(field).max() + 1e-12
    return torch.from_numpy((amplitude * field).astype(np.float32))


def simulate_kspace(
    magnitude: torch.Tensor, *, spatial_dims: int = 2, phase_amplitude: float = 0.0, seed: int = 0
) -> torch.Tensor:
    """Single-coil complex k-space of a magnitude image (with an optional smooth random phase)."""
    image = magnitude.float()
    if phase_amplitude > 0:
        phase = smooth_phase(image.shape[-spatial_dims:], amplitude=phase_amplitude, seed=seed)
        image = torch.polar(image, phase.expand_as(image))
    return fft_centered(image, spatial_dims)


def data_consistency(predicted_kspace: torch.Tensor, measured_kspace: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Hard data consistency: measured samples where ``mask`` is 1, the prediction elsewhere."""
    mask = mask.to(predicted_kspace.real.dtype)
    return predicted_kspace * (1.0 - mask) + measured_kspace * mask


def sampled_fraction(mask: torch.Tensor) -> float:
    """Share of k-space positions the mask samples (1 / the achieved acceleration)."""
    return float(mask.float().mean())
