"""Air is air: the body of a source volume, and the translated volume set to background outside it.

A network trained on patches learns the head well and the air around it
poorly (few patches are pure air, and the L1 weights the background 0.1), so its
output outside the head is grey noise. The body is known from the source itself:
above the source preset's *outline* threshold (network range; lower than the
body threshold used for cropping, so the partial-volume skin edge stays body),
its largest connected component (noise specks in the air drop out), holes filled
(sinuses and ventricles are inside the head). Outside that mask the output is the
target's background (CT: -1000 HU). The same rule runs in validation and in the
translate job, so validation scores what users get.
"""

from __future__ import annotations

import numpy as np
import torch
from monai.transforms.utils import get_largest_connected_component_mask
from scipy.ndimage import binary_fill_holes


def source_body_mask(source_net: torch.Tensor, threshold: float) -> torch.Tensor:
    """Bool body mask of a network-range source volume (spatial dims only, any leading singleton dims kept).

    Largest connected component of ``source > threshold``, holes filled. An image
    with no voxel above the threshold has an empty mask.
    """
    plain = source_net.as_tensor() if hasattr(source_net, "as_tensor") else source_net
    spatial = plain.reshape(plain.shape[-3:])
    above = spatial > threshold
    if not bool(above.any()):
        return torch.zeros_like(plain, dtype=torch.bool)
    largest = get_largest_connected_component_mask(above).cpu().numpy()
    return torch.from_numpy(_fill_holes_in_box(largest)).reshape(plain.shape)


def _fill_holes_in_box(mask: np.ndarray) -> np.ndarray:
    """scipy's hole filling (MONAI's ``fill_holes`` mask, 2x faster) on the mask's bounding box only.

    Exact: background outside the box reaches the volume's border along an axis,
    so a background region touching the box's border is not a hole either way.
    """
    box = tuple(slice(int(np.argmax(axis)), len(axis) - int(np.argmax(axis[::-1]))) for axis in _occupied(mask))
    filled = mask.copy()
    filled[box] = binary_fill_holes(mask[box])
    return filled


def _occupied(mask: np.ndarray) -> list[np.ndarray]:
    """Per axis: which slices hold any mask voxel."""
    return [mask.any(axis=tuple(other for other in range(mask.ndim) if other != axis)) for axis in range(mask.ndim)]


def fill_outside_body(volume: torch.Tensor, body: torch.Tensor, background: float) -> torch.Tensor:
    """``volume`` with every voxel outside ``body`` (same shape, bool) set to ``background``, in place."""
    if tuple(body.shape) != tuple(volume.shape):
        raise ValueError(f"body mask shape {tuple(body.shape)} does not match the volume's {tuple(volume.shape)}")
    volume[~body.to(volume.device)] = background
    return volume
