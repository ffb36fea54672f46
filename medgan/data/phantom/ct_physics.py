"""CT image formation for the phantom: HU per tissue, partial volume, texture and noise.

Why: CT numbers are linear in attenuation, so a voxel holding several tissues shows
their volume-weighted mean HU (partial volume) — computed by averaging sub-voxels.
Reconstructed CT noise is roughly Gaussian with a fine spatial correlation from the
reconstruction kernel; 10-20 HU standard deviation is typical of a head protocol.
Values are clipped to the usual 12-bit stored range [-1024, 3071] HU and kept as int16.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from medgan.data.phantom import tissues as t
from medgan.data.phantom.fields import smooth_noise
from medgan.data.phantom.grid import PhantomGrid

CT_MIN_HU = -1024
CT_MAX_HU = 3071


def render_ct(
    fine_labels: np.ndarray,
    props: t.TissueProperties,
    grid: PhantomGrid,
    rng: np.random.Generator,
    *,
    noise_hu: float,
) -> np.ndarray:
    """Render a CT volume in HU (int16) from a fine label map with ``noise_hu`` noise s.d."""
    hu_per_label = props.ct_hu.astype(np.float32)
    ct_hu = grid.block_mean(hu_per_label[fine_labels])
    # Soft-tissue texture of a few HU (the bone is already heterogeneous through partial volume).
    texture = smooth_noise(rng, grid.axes_mm(), correlation_mm=10.0)
    soft_tissue = (ct_hu > -200) & (ct_hu < 200)
    ct_hu += np.where(soft_tissue, np.float32(3.0) * texture, np.float32(0.0))
    # Correlated noise: white noise blurred by a small kernel, rescaled to the wanted s.d.
    noise = ndimage.gaussian_filter(rng.standard_normal(grid.shape, dtype=np.float32), sigma=0.6)
    noise *= np.float32(noise_hu) / (noise.std() + 1e-6)
    ct_hu += noise
    return np.clip(np.rint(ct_hu), CT_MIN_HU, CT_MAX_HU).astype(np.int16)
