"""Voxel-wise reconstruction losses: L1 restricted to a mask (the body).

Why masked: most of a head CT/MRI volume is air. An L1 averaged over the whole
patch is dominated by easy background voxels; averaging over the body mask only
puts the weight on the anatomy (bone vs. air inside the head is the hard part).
"""

from __future__ import annotations

import torch


def masked_l1(prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean absolute error over the voxels where ``mask`` is non-zero (float32).

    ``mask`` broadcasts against the images (e.g. ``(B, 1, D, H, W)`` for
    multi-channel images) and may be soft (weights in [0, 1]). Without a mask, or
    when the mask is empty everywhere, it is the plain mean absolute error, so a
    patch that misses the body still teaches the background.
    """
    abs_error = (prediction.float() - target.float()).abs()
    if mask is None:
        return abs_error.mean()
    weights = mask.float().expand_as(abs_error)
    weight_sum = weights.sum()
    masked_mean = (abs_error * weights).sum() / weight_sum.clamp_min(1e-12)
    # torch.where instead of an `if` keeps this free of a device sync.
    return torch.where(weight_sum > 0, masked_mean, abs_error.mean())
