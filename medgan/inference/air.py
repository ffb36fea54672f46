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
from scipy import ndimage

_FULL_CONNECTIVITY = np.ones((3, 3, 3), dtype=bool)  # 26-connected foreground, as MONAI's default
_FACE_CONNECTIVITY = ndimage.generate_binary_structure(3, 1)  # 6-connected background, as binary_fill_holes


def source_body_mask(source_net: torch.Tensor, threshold: float) -> torch.Tensor:
    """Bool body mask of a network-range source volume (spatial dims only, any leading singleton dims kept).

    Largest connected component of ``source > threshold``, holes filled. An image
    with no voxel above the threshold has an empty mask. The same mask as MONAI's
    ``get_largest_connected_component_mask`` followed by scipy's ``binary_fill_holes``
    (tested), in ~0.35 s instead of ~0.6 s on a 13 M-voxel head: one scipy labelling,
    component sizes counted over the foreground only, and holes found as background
    components that do not touch the body's bounding box.
    """
    plain = source_net.as_tensor() if hasattr(source_net, "as_tensor") else source_net
    above = (plain.reshape(plain.shape[-3:]) > threshold).cpu().numpy()
    if not above.any():
        return torch.zeros_like(plain, dtype=torch.bool)
    return torch.from_numpy(_fill_holes_in_box(_largest_component(above))).reshape(plain.shape)


def _largest_component(foreground: np.ndarray) -> np.ndarray:
    """The largest 26-connected component of a bool volume (the lowest label on a tie)."""
    labels, _ = ndimage.label(foreground, structure=_FULL_CONNECTIVITY)
    sizes = np.bincount(labels[foreground])  # only foreground voxels: 8x fewer than the volume in a head
    sizes[0] = 0
    return labels == int(sizes.argmax())


def _fill_holes_in_box(mask: np.ndarray) -> np.ndarray:
    """``mask`` with its holes filled (scipy ``binary_fill_holes``' result), working on its bounding box only.

    A hole is a 6-connected background component that does not reach the border.
    Exact on the box: background outside the box reaches the volume's border along
    an axis, so a background region touching the box's border is not a hole either way.
    """
    box = tuple(slice(int(np.argmax(axis)), len(axis) - int(np.argmax(axis[::-1]))) for axis in _occupied(mask))
    inside = mask[box]
    background, count = ndimage.label(~inside, structure=_FACE_CONNECTIVITY)
    reaches_border = np.zeros(count + 1, dtype=bool)
    reaches_border[0] = True  # label 0 is the mask itself
    for axis in range(inside.ndim):
        for side in (0, -1):
            reaches_border[np.take(background, side, axis=axis)] = True
    filled = mask.copy()
    filled[box] |= ~reaches_border[background]
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
