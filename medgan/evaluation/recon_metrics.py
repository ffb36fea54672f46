"""MRI reconstruction metrics with fastMRI's definitions, per volume, and a hallucination indicator.

fastMRI (Zbontar et al. 2018; the ``fastmri.evaluate`` definitions): for a volume ``gt`` and its
reconstruction ``pred`` (magnitudes, slices first):

* NMSE = ||gt - pred||^2 / ||gt||^2;
* PSNR = 10 log10(max(gt)^2 / MSE), the peak being the volume's maximum;
* SSIM = the mean over slices of 2D SSIM (scikit-image, 7x7 window) with ``data_range`` = the
  volume's maximum.

Each is computed **per volume** and only then averaged over volumes: pooling slices of all
volumes first weights large volumes more and changes the numbers (fastMRI issues #129/#130).

Hallucination indicator (:func:`hallucination_report`): a reconstruction can match the
measured samples and still invent structure where nothing was measured. Two numbers:

* ``unsampled_error_energy``: the energy of the error's k-space at the positions the mask did
  not sample, relative to the reference's energy there (0 = perfect, 1 = as wrong as zeros);
* ``invented_regions`` / ``invented_volume_fraction``: connected regions where the error exceeds
  ``k`` times the noise level (estimated from the reference's background, below 10 % of its
  maximum, with the median absolute deviation), at least ``min_voxels`` large: structure present in the reconstruction
  but absent from the fully sampled reference, and the error map to show them.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage
from skimage.metrics import structural_similarity

from medgan.data.kspace import fft_centered


def _check(gt: np.ndarray, pred: np.ndarray) -> None:
    if gt.shape != pred.shape or gt.ndim < 2:
        raise ValueError(f"reference {gt.shape} and reconstruction {pred.shape} must be equal (slices, H, W) arrays")


def nmse(gt: np.ndarray, pred: np.ndarray) -> float:
    """Normalised mean squared error of one volume."""
    gt, pred = np.asarray(gt, np.float64), np.asarray(pred, np.float64)
    _check(gt, pred)
    return float(np.linalg.norm(gt - pred) ** 2 / np.linalg.norm(gt) ** 2)


def psnr(gt: np.ndarray, pred: np.ndarray) -> float:
    """PSNR in dB with the volume's maximum as the peak."""
    gt, pred = np.asarray(gt, np.float64), np.asarray(pred, np.float64)
    _check(gt, pred)
    mse = float(np.mean((gt - pred) ** 2))
    return float("inf") if mse == 0 else float(10.0 * np.log10(gt.max() ** 2 / mse))


def ssim(gt: np.ndarray, pred: np.ndarray) -> float:
    """Mean over slices of 2D SSIM with the volume's maximum as the data range (fastMRI)."""
    gt, pred = np.asarray(gt, np.float64), np.asarray(pred, np.float64)
    _check(gt, pred)
    slices = gt if gt.ndim == 3 else gt[None]
    predicted = pred if pred.ndim == 3 else pred[None]
    peak = float(gt.max())
    return float(
        np.mean([structural_similarity(g, p, data_range=peak) for g, p in zip(slices, predicted, strict=True)])
    )


def volume_metrics(gt: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """NMSE, PSNR and SSIM of one volume."""
    return {"nmse": nmse(gt, pred), "psnr": psnr(gt, pred), "ssim": ssim(gt, pred)}


def noise_level(reference: np.ndarray, background: np.ndarray | None = None) -> float:
    """Noise sigma from the median absolute deviation of the background (default: voxels below 10 % of the maximum)."""
    values = np.asarray(reference, np.float64)
    if background is None:
        background = values < 0.1 * values.max()
        if background.sum() < 16:  # no background to speak of: the darkest fifth
            background = values <= np.percentile(values, 20)
    chosen = values[background]
    return float(1.4826 * np.median(np.abs(chosen - np.median(chosen)))) or float(values.std() * 1e-3)


def invented_mask(gt: np.ndarray, pred: np.ndarray, *, k: float = 3.0, min_voxels: int = 4) -> np.ndarray:
    """Voxels of connected regions (>= ``min_voxels``) where |pred - gt| exceeds ``k`` x the reference's noise."""
    gt, pred = np.asarray(gt, np.float32), np.asarray(pred, np.float32)
    _check(gt, pred)
    invented = np.abs(pred - gt) > k * noise_level(gt)
    labels, count = ndimage.label(invented)
    if not count:
        return np.zeros(gt.shape, bool)
    sizes = ndimage.sum(invented, labels, index=np.arange(1, count + 1))
    return np.isin(labels, np.flatnonzero(sizes >= min_voxels) + 1)


def hallucination_report(
    gt: np.ndarray,
    pred: np.ndarray,
    mask: np.ndarray,
    *,
    spatial_dims: int = 2,
    k: float = 3.0,
    min_voxels: int = 4,
) -> dict[str, float]:
    """Unsampled-k-space error energy and invented regions of one reconstruction (module docstring)."""
    gt, pred = np.asarray(gt, np.float32), np.asarray(pred, np.float32)
    _check(gt, pred)
    unsampled = torch.from_numpy(np.broadcast_to(np.asarray(mask) == 0, gt.shape).copy())
    error_k = fft_centered(torch.from_numpy(pred - gt), spatial_dims)
    reference_k = fft_centered(torch.from_numpy(gt), spatial_dims)
    energy = float(
        error_k[unsampled].abs().square().sum() / reference_k[unsampled].abs().square().sum().clamp_min(1e-12)
    )
    invented = invented_mask(gt, pred, k=k, min_voxels=min_voxels)
    return {
        "unsampled_error_energy": energy,
        "invented_regions": int(ndimage.label(invented)[1]),
        "invented_volume_fraction": float(invented.sum() / gt.size),
        "noise_sigma": noise_level(gt),
    }
