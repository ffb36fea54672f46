"""Intensity: per-tissue histograms of real vs synthetic body voxels, and CT values no scanner makes.

Why per tissue: a sampler can match the overall histogram while putting bone at soft-tissue
values. CT tissue bands are fixed in HU (fat -200..-30, soft tissue -30..200, bone above 200);
MRI has no units, so its bands are the tertiles of the real set's pooled body voxels. For each
band the report gives the share of body voxels in it (real and synthetic) and the 1-D
Wasserstein distance between the two sets' values in it (scipy; HU for CT, the percentile-window
scale for MRI), pooled over volumes and subsampled to at most ``max_voxels`` per set. The
report grades the largest distance and, separately, the largest share difference: a sampler
that makes no bone at all has no bone values to compare, but its bone share gives it away.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.stats import wasserstein_distance

CT_BANDS = {"fat": (-200.0, -30.0), "soft tissue": (-30.0, 200.0), "bone": (200.0, 3071.0)}


def pooled_body_voxels(values: Sequence[np.ndarray], bodies: Sequence[np.ndarray], *, max_voxels: int, seed: int):
    """All body voxels of a set, subsampled without replacement to ``max_voxels`` (seeded)."""
    pooled = np.concatenate([v[b] for v, b in zip(values, bodies, strict=True)]).astype(np.float64)
    if pooled.size > max_voxels:
        pooled = np.random.default_rng(seed).choice(pooled, size=max_voxels, replace=False)
    return pooled


def tissue_bands(modality: str, real_voxels: np.ndarray) -> dict[str, tuple[float, float]]:
    """The bands for ``modality`` (see the module docstring)."""
    if modality == "ct":
        return dict(CT_BANDS)
    low, t1, t2, high = np.percentile(real_voxels, [0, 100 / 3, 200 / 3, 100])
    return {
        "dark": (float(low) - 1e-6, float(t1)),
        "middle": (float(t1), float(t2)),
        "bright": (float(t2), float(high)),
    }


def tissue_wasserstein(
    real_voxels: np.ndarray, synthetic_voxels: np.ndarray, bands: dict[str, tuple[float, float]]
) -> dict[str, dict[str, float]]:
    """Per band: real and synthetic share of body voxels and the Wasserstein distance of the values in it."""
    rows = {}
    for name, (low, high) in bands.items():
        real_in = real_voxels[(real_voxels > low) & (real_voxels <= high)]
        syn_in = synthetic_voxels[(synthetic_voxels > low) & (synthetic_voxels <= high)]
        distance = float(wasserstein_distance(real_in, syn_in)) if real_in.size and syn_in.size else float("nan")
        rows[name] = {
            "real_share": float(real_in.size / max(real_voxels.size, 1)),
            "synthetic_share": float(syn_in.size / max(synthetic_voxels.size, 1)),
            "wasserstein": distance,
        }
    return rows
