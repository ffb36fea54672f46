"""Turn what callers hand the evaluation and plotting code (arrays, tensors, MetaTensors) into plain 3D arrays.

Evaluation functions accept a volume as a numpy array, a torch tensor or a MONAI
MetaTensor, with or without leading batch/channel axes of size one. This module is
the one place that strips those axes and says clearly when a volume is not 3D.
"""

from __future__ import annotations

import numpy as np
import torch

from medgan.errors import InputError

VolumeLike = np.ndarray | torch.Tensor


def as_volume(volume: VolumeLike, name: str, *, dtype: type = np.float64) -> np.ndarray:
    """Return ``volume`` as a 3D numpy array of ``dtype``, dropping leading size-1 axes.

    ``(1, 1, I, J, K)`` and ``(1, I, J, K)`` both become ``(I, J, K)``, so a batch
    straight from a network or a channel-first MetaTensor can be passed as is.
    ``name`` is used in the error message when the volume is not 3D.
    """
    voxels = volume.detach().cpu().numpy() if isinstance(volume, torch.Tensor) else np.asarray(volume)
    while voxels.ndim > 3 and voxels.shape[0] == 1:
        voxels = voxels[0]
    if voxels.ndim != 3:
        raise InputError(
            f"{name} must be a 3D volume (optionally with leading size-1 batch/channel axes), "
            f"got shape {tuple(np.shape(volume))}",
            fix="pass one volume at a time, shaped (I, J, K) or (1, I, J, K)",
        )
    return voxels.astype(dtype, copy=False)


def require_same_shape(volumes: dict[str, np.ndarray]) -> tuple[int, int, int]:
    """Raise :class:`InputError` unless every named volume has the same shape; return that shape."""
    shapes = {name: tuple(v.shape) for name, v in volumes.items()}
    distinct = set(shapes.values())
    if len(distinct) != 1:
        listing = ", ".join(f"{name} {shape}" for name, shape in shapes.items())
        raise InputError(
            f"volumes must have the same shape, got {listing}",
            fix="resample them onto one voxel grid first (e.g. MONAI Spacingd / ResampleToMatchd)",
        )
    return distinct.pop()
