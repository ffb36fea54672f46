"""Smooth random fields for the phantom: anatomical variation, gyri, texture and bias.

Why here: the phantom needs several kinds of low-frequency randomness (a wobbly head
outline, a folded grey/white boundary, a bias field). Drawing white noise on a coarse
grid with a fixed physical spacing and interpolating it onto the image grid is much
cheaper than filtering a full-resolution volume, and keeps the features' size in
millimetres independent of the image shape.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

# Half-width (mm) of the region the coarse noise grids cover; any image inside
# a 320 mm cube centred on the head sees a defined field.
_FIELD_HALF_WIDTH_MM = 160.0


def _linear_weights(coords_mm: np.ndarray, origin_mm: float, step_mm: float, size: int):
    """Indices and weights for linear interpolation of 1D coordinates on a regular grid."""
    position = np.clip((coords_mm - origin_mm) / step_mm, 0.0, size - 1.000001)
    lower = np.floor(position).astype(np.intp)
    return lower, (position - lower).astype(np.float32)


def resample_separable(coarse: np.ndarray, axes_mm: tuple[np.ndarray, ...], step_mm: float) -> np.ndarray:
    """Linearly interpolate a coarse grid (centred on 0 mm, spacing ``step_mm``) onto 1D axes.

    The target grid is the outer product of the three 1D coordinate axes, so the
    interpolation runs one axis at a time (three cheap gathers) instead of one
    8-neighbour gather per output voxel.
    """
    field = coarse.astype(np.float32, copy=False)
    for axis, coords in enumerate(axes_mm):
        size = field.shape[axis]
        origin = -step_mm * (size - 1) / 2.0
        lower, weight = _linear_weights(np.asarray(coords, dtype=np.float64), origin, step_mm, size)
        shape = [1, 1, 1]
        shape[axis] = -1
        weight = weight.reshape(shape)
        field = np.take(field, lower, axis=axis) * (1.0 - weight) + np.take(field, lower + 1, axis=axis) * weight
    return field


def smooth_noise(rng: np.random.Generator, axes_mm: tuple[np.ndarray, ...], correlation_mm: float) -> np.ndarray:
    """Zero-mean, unit-variance Gaussian random field with features about ``correlation_mm`` wide.

    ``axes_mm`` are the world coordinates (mm) of the target grid along each axis.
    """
    step_mm = correlation_mm / 2.0
    size = int(np.ceil(2 * _FIELD_HALF_WIDTH_MM / step_mm)) + 1
    white = rng.standard_normal((size, size, size), dtype=np.float32)
    coarse = ndimage.gaussian_filter(white, sigma=1.0, mode="wrap")
    coarse /= coarse.std() + 1e-12
    return resample_separable(coarse, axes_mm, step_mm)


def direction_polynomial(
    rng: np.random.Generator, unit_x: np.ndarray, unit_y: np.ndarray, unit_z: np.ndarray, degree: int = 3
) -> np.ndarray:
    """A smooth random function of direction only, scaled to max |value| <= 1.

    Used to deform the head outline and the layer thicknesses coherently: because it
    depends on the direction from the head centre and not on the distance, every
    concentric layer (scalp, skull, brain) bulges the same way.
    """
    field = np.zeros_like(unit_x, dtype=np.float32)
    for i in range(degree + 1):
        for j in range(degree + 1 - i):
            for k in range(degree + 1 - i - j):
                if i + j + k == 0:
                    continue
                coefficient = rng.standard_normal() / (i + j + k)
                field += np.float32(coefficient) * unit_x**i * unit_y**j * unit_z**k
    field -= field.mean()
    return field / (np.abs(field).max() + 1e-12)


def polynomial_bias(rng: np.random.Generator, shape: tuple[int, int, int], amplitude: float) -> np.ndarray:
    """Smooth multiplicative field ``exp(p(x))`` from a random quadratic ``p``, ranging about ±amplitude.

    MR receive-coil sensitivity and B1 inhomogeneity make intensity drift slowly over
    the head; a low-order polynomial is the usual model (as in N4 bias correction).
    """
    axes = [np.linspace(-1.0, 1.0, n, dtype=np.float32) for n in shape]
    x, y, z = np.meshgrid(*axes, indexing="ij", sparse=True)
    terms = [x, y, z, x * x, y * y, z * z, x * y, x * z, y * z]
    log_field = np.zeros(shape, dtype=np.float32)
    for term in terms:
        log_field = log_field + np.float32(rng.standard_normal()) * term
    log_field -= log_field.mean()
    log_field *= np.float32(np.log1p(amplitude) / (np.abs(log_field).max() + 1e-12))
    return np.exp(log_field)
