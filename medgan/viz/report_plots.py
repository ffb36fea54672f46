"""Plots of ``medgan report``: real vs synthetic intensity histograms and nearest-neighbour similarities.

Plain arrays in, one PNG out (atomically, through the montage module's writer), so this module
stays a leaf like the rest of :mod:`medgan.viz`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from medgan.viz.downstream_plots import _save

REAL_COLOUR, SYNTHETIC_COLOUR = "tab:blue", "tab:orange"


def save_intensity_histograms(
    real_voxels: np.ndarray,
    synthetic_voxels: np.ndarray,
    bands: Mapping[str, tuple[float, float]],
    path: Path,
    *,
    unit: str,
) -> Path:
    """Density histograms of real and synthetic body voxels, tissue band edges marked."""
    fig = Figure(figsize=(7.5, 3.2))
    ax = fig.add_subplot(1, 1, 1)
    low, high = np.percentile(np.concatenate([real_voxels, synthetic_voxels]), [0.5, 99.5])
    bins = np.linspace(low, high, 120)
    ax.hist(real_voxels, bins=bins, density=True, histtype="step", color=REAL_COLOUR, label="real", linewidth=1.5)
    ax.hist(synthetic_voxels, bins=bins, density=True, histtype="step", color=SYNTHETIC_COLOUR, label="synthetic")
    for name, (band_low, band_high) in bands.items():
        for edge in (band_low, band_high):
            if low < edge < high:
                ax.axvline(edge, color="grey", linestyle=":", linewidth=0.8)
        middle = (max(band_low, low) + min(band_high, high)) / 2
        ax.text(middle, 0.97, name, transform=ax.get_xaxis_transform(), ha="center", va="top", fontsize=8)
    ax.set_xlabel(f"body voxel value ({unit})")
    ax.set_ylabel("density")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def save_nearest_similarity(
    held_out_ncc: Sequence[float], synthetic_ncc: Sequence[float], limit: float, path: Path
) -> Path:
    """Each held-out real scan's and each synthetic sample's NCC to its nearest training case, limit marked."""
    fig = Figure(figsize=(7.5, 2.8))
    ax = fig.add_subplot(1, 1, 1)
    values = np.concatenate([np.asarray(held_out_ncc), np.asarray(synthetic_ncc)])
    bins = np.linspace(float(values.min()) - 1e-3, float(values.max()) + 1e-3, 40)
    ax.hist(held_out_ncc, bins=bins, color=REAL_COLOUR, alpha=0.6, label="held-out real -> nearest training")
    ax.hist(synthetic_ncc, bins=bins, color=SYNTHETIC_COLOUR, alpha=0.6, label="synthetic -> nearest training")
    ax.axvline(limit, color="red", linestyle="--", linewidth=1, label="memorisation limit")
    ax.set_xlabel("normalised cross-correlation")
    ax.set_ylabel("volumes")
    ax.legend(loc="upper left", fontsize=7)
    fig.tight_layout()
    return _save(fig, path)
