"""How generated volumes compare with real ones: tissue statistics and sample diversity.

Why: a sampler can look fine one montage at a time and still be wrong in bulk:
too little bone, bodies of one size, or every sample a copy of the next (mode
collapse). These functions give the numbers a benchmark or report puts side by
side for generated and held-out real volumes of one class.

* :func:`ct_tissue_statistics`: body, bone and soft-tissue volumes (ml) and the
  mean HU inside the body of a CT in HU.
* :func:`mean_pairwise_ms_ssim`: mean multi-scale SSIM (MONAI's
  ``MultiScaleSSIMMetric``) over all pairs of a set of volumes. High = alike;
  a generator whose samples are more alike than real volumes of their class is
  collapsing. Scales are chosen so the coarsest one still holds a kernel.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
from monai.metrics import MultiScaleSSIMMetric

# Hounsfield thresholds: air/body boundary, and bone (cortical and most cancellous bone lie above)
BODY_HU = -500.0
BONE_HU = 300.0
SOFT_TISSUE_HU = (-100.0, 100.0)
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)  # Wang et al. 2003, MONAI's default


def ct_tissue_statistics(hu: np.ndarray, voxel_ml: float) -> dict[str, float]:
    """Body / bone / soft-tissue volume in ml and mean HU in the body of one CT volume in HU."""
    body = hu > BODY_HU
    soft = body & (hu > SOFT_TISSUE_HU[0]) & (hu <= SOFT_TISSUE_HU[1])
    return {
        "body_ml": float(body.sum() * voxel_ml),
        "bone_ml": float((hu > BONE_HU).sum() * voxel_ml),
        "soft_tissue_ml": float(soft.sum() * voxel_ml),
        "mean_hu_body": float(hu[body].mean()) if body.any() else float("nan"),
    }


def summarise_statistics(rows: Sequence[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Mean and standard deviation of each statistic over volumes."""
    if not rows:
        return {}
    return {
        key: {"mean": float(np.mean([r[key] for r in rows])), "sd": float(np.std([r[key] for r in rows]))}
        for key in rows[0]
    }


Summaries = dict[str, dict[str, float]]


def _in_real_spreads(
    generated: Summaries, real: Summaries, amount: Callable[[dict[str, float], dict[str, float]], float]
) -> dict[str, float]:
    """``amount(generated[key], real[key]) / real sd`` for every statistic both have (NaN where real sd is 0)."""
    return {
        key: amount(generated[key], real[key]) / real[key]["sd"] if real[key]["sd"] > 0 else float("nan")
        for key in real
        if key in generated
    }


def standardised_differences(generated: Summaries, real: Summaries) -> dict[str, float]:
    """(generated mean - real mean) / real sd per statistic: 0 = same mean, |d| > 1 = off by a real spread."""
    return _in_real_spreads(generated, real, lambda gen, ref: gen["mean"] - ref["mean"])


def spread_ratios(generated: Summaries, real: Summaries) -> dict[str, float]:
    """generated sd / real sd per statistic: ~1 = as varied as real scans, near 0 = copies of one scan.

    The mean alone hides collapse: a 2,000-step cgan3d run drew heads of the right mean size whose
    volumes varied by 1/13 of the real spread (docs/decisions.md).
    """
    return _in_real_spreads(generated, real, lambda gen, _: gen["sd"])


def ms_ssim_scales(shape: Sequence[int], kernel_size: int) -> int:
    """The most MS-SSIM scales (<= 5) MONAI accepts for this volume shape and kernel.

    MONAI requires every edge // (scales - 1)^2 > kernel_size - 1.
    """
    for scales in range(len(MS_SSIM_WEIGHTS), 1, -1):
        if all(edge // (scales - 1) ** 2 > kernel_size - 1 for edge in shape):
            return scales
    raise ValueError(f"volumes of shape {tuple(shape)} are too small for MS-SSIM with kernel {kernel_size}")


def mean_pairwise_ms_ssim(
    volumes: torch.Tensor, *, data_range: float = 2.0, kernel_size: int = 5, max_pairs: int | None = None
) -> float:
    """Mean MS-SSIM over pairs of ``volumes`` ``(N, C, D, H, W)`` (network scale [-1, 1]: ``data_range`` 2).

    Every pair when ``max_pairs`` is None, else the first ``max_pairs`` in a fixed order.
    Fewer scales than MONAI's five are used on small grids (the weights renormalised).
    """
    if volumes.ndim != 5 or volumes.shape[0] < 2:
        raise ValueError(f"need (N >= 2, C, D, H, W) volumes; got shape {tuple(volumes.shape)}")
    scales = ms_ssim_scales(volumes.shape[2:], kernel_size)
    weights = MS_SSIM_WEIGHTS[:scales]
    weights = tuple(w / math.fsum(weights) for w in weights)
    metric = MultiScaleSSIMMetric(spatial_dims=3, data_range=data_range, kernel_size=kernel_size, weights=weights)
    pairs = list(itertools.combinations(range(volumes.shape[0]), 2))[:max_pairs]
    first = volumes[[a for a, _ in pairs]].float()
    second = volumes[[b for _, b in pairs]].float()
    values = torch.cat([metric(first[i : i + 64], second[i : i + 64]).flatten() for i in range(0, len(pairs), 64)])
    return float(values.mean())
