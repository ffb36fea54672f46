"""T1-weighted MR image formation for the phantom: signal, partial volume, bias field, Rician noise.

Why each step: the spoiled-gradient-echo signal per tissue (see :mod:`tissues`) is
averaged over sub-voxels (partial volume), multiplied by a smooth receive/transmit
inhomogeneity (bias field, ±10-20 %), and then the magnitude of signal plus complex
Gaussian noise is taken, which is what a magnitude MR image is: its noise is Rician
(non-zero mean in air, Gaussian in bright tissue). Cortical bone and air both come out
dark, as on a real T1-weighted scan.
"""

from __future__ import annotations

import numpy as np

from medgan.data.phantom import tissues as t
from medgan.data.phantom.fields import polynomial_bias, smooth_noise
from medgan.data.phantom.grid import PhantomGrid

# Stored MRI is int16 in arbitrary units with white matter at about this value
# (before bias): enough grey levels for the noise, small enough to compress well.
MRI_WHITE_MATTER_LEVEL = 400.0


def render_t1w(
    fine_labels: np.ndarray,
    props: t.TissueProperties,
    grid: PhantomGrid,
    rng: np.random.Generator,
    *,
    snr: float,
    bias_amplitude: float,
) -> np.ndarray:
    """Render a T1-weighted magnitude image (int16, arbitrary units) from a fine label map.

    ``snr`` is white-matter signal over the noise standard deviation of each complex
    channel; ``bias_amplitude`` the peak relative deviation of the bias field.
    """
    signal_per_label = props.t1w_signal()
    signal_per_label = (signal_per_label / signal_per_label[t.WHITE_MATTER]).astype(np.float32)
    signal = grid.block_mean(signal_per_label[fine_labels])
    # Mild within-tissue texture (cell density, myelination) so tissues are not flat.
    texture = smooth_noise(rng, grid.axes_mm(), correlation_mm=10.0)
    signal *= 1.0 + np.float32(0.025) * texture
    signal *= polynomial_bias(rng, grid.shape, bias_amplitude)
    sigma = np.float32(1.0 / snr)
    real = signal + sigma * rng.standard_normal(grid.shape, dtype=np.float32)
    imaginary = sigma * rng.standard_normal(grid.shape, dtype=np.float32)
    magnitude = np.sqrt(real * real + imaginary * imaginary) * np.float32(MRI_WHITE_MATTER_LEVEL)
    return np.clip(np.rint(magnitude), 0, np.iinfo(np.int16).max).astype(np.int16)
