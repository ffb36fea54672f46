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
    largest = get_largest_connected_component_mask(above)
    # scipy's hole filling: the same mask as MONAI's fill_holes, 2x faster on a 13 M-voxel head
    filled = torch.from_numpy(binary_fill_holes(largest.cpu().numpy()))
    return filled.reshape(plain.shape)


def fill_outside_body(volume: torch.Tensor, body: torch.Tensor, background: float) -> torch.Tensor:
    """``volume`` with every voxel outside ``body`` (same shape, bool) set to ``background``, in place."""
    if tuple(body.shape) != tuple(volume.shape):
        raise ValueError(f"body mask shape {tuple(body.shape)} does not match the volume's {tuple(volume.shape)}")
    volume[~body.to(volume.device)] = background
    return volume
