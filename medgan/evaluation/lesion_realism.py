"""Do synthetic lesions look like real ones? Per-lesion radiomics-style features, their Fréchet
distance, lesion-centred crops for a two-sample classifier test, and a seam score.

Why these: a lesion can have the right mean intensity and still be wrong in texture, shape or
at its border (a visible seam is what gives a pasted lesion away). The features are the usual
radiomics families, computed with scikit-image and scipy:

* first order inside the lesion: mean, sd, skewness, kurtosis, 10th / 90th percentile, and the
  contrast to the 2-voxel shell around it;
* texture: grey-level co-occurrence (GLCM) contrast, homogeneity, energy and correlation on the
  axial slice through the lesion centre (intensities quantised to 16 levels over the crop's
  1st-99th percentile; distance 1, four angles averaged);
* shape: volume, elongation, irregularity (:func:`medgan.data.lesion_shapes.lesion_features`).

:func:`seam_score` is the mean gradient magnitude on the one-voxel layer just outside the lesion,
divided by that of the tissue 3-5 voxels out (1 = the border is as smooth as the tissue around
it; real lesions have a border too, so compare against real lesions, not against 1).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage, stats
from skimage.feature import graycomatrix, graycoprops

from medgan.data.lesion_shapes import lesion_features

STRUCTURE_6 = ndimage.generate_binary_structure(3, 1)
GLCM_LEVELS = 16
GLCM_PROPERTIES = ("contrast", "homogeneity", "energy", "correlation")


def _ring(mask: np.ndarray, inner: int, outer: int) -> np.ndarray:
    grown = ndimage.binary_dilation(mask, structure=STRUCTURE_6, iterations=outer)
    kept = ndimage.binary_dilation(mask, structure=STRUCTURE_6, iterations=inner) if inner else mask
    return grown & ~kept


def _glcm_features(image: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    centre = np.argwhere(mask).mean(axis=0).round().astype(int)
    region = ndimage.binary_dilation(mask, iterations=2)[:, :, centre[2]]
    plane = image[:, :, centre[2]]
    rows, cols = np.nonzero(region)
    crop = plane[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    low, high = np.percentile(crop, [1, 99])
    levels = np.clip(((crop - low) / max(high - low, 1e-6) * (GLCM_LEVELS - 1)).round(), 0, GLCM_LEVELS - 1)
    matrix = graycomatrix(
        levels.astype(np.uint8),
        [1],
        [0, np.pi / 4, np.pi / 2, 3 * np.pi / 4],
        levels=GLCM_LEVELS,
        symmetric=True,
        normed=True,
    )
    return {f"glcm_{name}": float(np.nan_to_num(graycoprops(matrix, name).mean())) for name in GLCM_PROPERTIES}


def lesion_radiomics(image: np.ndarray, mask: np.ndarray, spacing: Sequence[float]) -> dict[str, float]:
    """Radiomics-style features of one lesion (``mask`` non-zero) in one image (physical units)."""
    image = np.asarray(image, dtype=np.float64)
    mask = np.asarray(mask) > 0
    if not mask.any():
        raise ValueError("the lesion mask is empty")
    inside = image[mask]
    shell = _ring(mask, 0, 2)
    (shape,) = lesion_features(mask.astype(np.uint8), spacing)[:1]
    return {
        "mean": float(inside.mean()),
        "sd": float(inside.std()),
        "skewness": float(np.nan_to_num(stats.skew(inside))),
        "kurtosis": float(np.nan_to_num(stats.kurtosis(inside))),
        "p10": float(np.percentile(inside, 10)),
        "p90": float(np.percentile(inside, 90)),
        "contrast_to_shell": float(inside.mean() - image[shell].mean()),
        **_glcm_features(image, mask),
        "volume_ml": shape.volume_ml,
        "elongation": shape.elongation,
        "irregularity": shape.irregularity,
    }


def seam_score(image: np.ndarray, mask: np.ndarray) -> float:
    """Gradient magnitude just outside the lesion / that 3-5 voxels out (see the module docstring)."""
    mask = np.asarray(mask) > 0
    gradient = ndimage.gaussian_gradient_magnitude(np.asarray(image, dtype=np.float64), sigma=0.7)
    border, around = _ring(mask, 0, 1), _ring(mask, 3, 5)
    return float(gradient[border].mean() / max(float(gradient[around].mean()), 1e-9))


def feature_frechet_distance(
    features: Sequence[dict[str, float]], reference: Sequence[dict[str, float]], *, keys: Sequence[str] | None = None
) -> float:
    """Fréchet distance between two sets of feature rows, each feature standardised by ``reference``."""
    keys = list(keys or reference[0])
    a = np.array([[row[k] for k in keys] for row in features], dtype=np.float64)
    b = np.array([[row[k] for k in keys] for row in reference], dtype=np.float64)
    mean, sd = b.mean(axis=0), b.std(axis=0)
    sd[sd == 0] = 1.0
    return gaussian_frechet_distance((a - mean) / sd, (b - mean) / sd)


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def gaussian_frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to the rows of ``a`` and ``b`` (same formula as MONAI's FID).

    Why not ``monai.metrics.fid.get_fid_score``: it takes the square root of the non-symmetric
    product of the two covariances, and with few rows (rank-deficient covariances, the usual case
    for a few dozen lesions) that root comes back with an imaginary part above MONAI's tolerance
    and it raises, on some CPUs and not others. Here the trace term uses the symmetric form
    tr((S_a^1/2 S_b S_a^1/2)^1/2), whose eigenvalues are real and non-negative by construction.
    """
    a, b = np.atleast_2d(np.asarray(a, dtype=np.float64)), np.atleast_2d(np.asarray(b, dtype=np.float64))
    cov_a = np.atleast_2d(np.cov(a, rowvar=False))
    cov_b = np.atleast_2d(np.cov(b, rowvar=False))
    root_a = _psd_sqrt(cov_a)
    middle = root_a @ cov_b @ root_a
    trace_root = float(np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0.0, None)).sum())
    difference = a.mean(axis=0) - b.mean(axis=0)
    return float(difference @ difference + np.trace(cov_a) + np.trace(cov_b) - 2.0 * trace_root)


def lesion_crop(images: np.ndarray, mask: np.ndarray, size: int) -> np.ndarray:
    """``(C, size, size, size)`` crop of ``images`` ``(C, X, Y, Z)`` centred on the lesion (edge-padded)."""
    centre = np.argwhere(np.asarray(mask) > 0).mean(axis=0).round().astype(int)
    half = size // 2
    padded = np.pad(images, [(0, 0)] + [(half, half)] * 3, mode="edge")
    starts = centre  # the padding shifts the centre by half, so the crop starts at the centre
    return padded[:, starts[0] : starts[0] + size, starts[1] : starts[1] + size, starts[2] : starts[2] + size]
