"""Artifacts a GAN leaves: grid patterns, content in the air, seams and lesion-like blobs.

* **Checkerboard / grid**: a generator that upsamples by 2 (transposed or nearest-neighbour
  convolutions) leaves energy at the frequencies of that grid: half (and a quarter of) the
  sampling rate along each axis. :func:`checkerboard_peak` is the largest ratio, over those
  frequencies, of the power there to the mean power of its 26 neighbours in the 3-D spectrum
  (about 1 for a smooth scan). It is measured on each file's *own* voxel grid (a centred cube of
  at most 128 voxels per edge), where a generator's upsampling frequencies are; the report
  compares synthetic samples with real scans.
* **Content outside the body**: the share of voxels beyond 2 voxels around the body's largest
  connected component that are above the body threshold (speckle, ghost structures in the air).
* **Seam**: :func:`medgan.evaluation.lesion_realism.seam_score` of each synthetic lesion, compared
  with real lesions when the real set has masks.
* **Hallucinated lesions**: :func:`blob_response` is the strongest difference-of-Gaussians
  response at lesion scale in the body (2 voxels in from the skin) *outside* the lesion mask and
  its blending band; a synthetic case whose response beats every real scan's is flagged (the
  same intensity-blob test, blind to where the lesion is meant to be).
"""

from __future__ import annotations

import itertools

import numpy as np
from scipy import ndimage

MAX_SPECTRUM_EDGE = 128


def _centred_cube(volume: np.ndarray) -> np.ndarray:
    edges = [min(MAX_SPECTRUM_EDGE, (edge // 8) * 8) for edge in volume.shape]
    if min(edges) < 8:
        raise ValueError(f"volume of shape {volume.shape} is too small for the grid-artifact spectrum")
    starts = [(edge - size) // 2 for edge, size in zip(volume.shape, edges, strict=True)]
    return volume[tuple(slice(s, s + e) for s, e in zip(starts, edges, strict=True))]


def _upsampling_frequencies(shape: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Frequency indices whose every coordinate is 0, N/4, N/2 or 3N/4 (not all 0)."""
    per_axis = [sorted({0, n // 4, n // 2, 3 * n // 4}) for n in shape]
    return [f for f in itertools.product(*per_axis) if any(f)]


def checkerboard_peak(volume: np.ndarray) -> float:
    """The largest power ratio at a 2x / 4x upsampling frequency to its 26 neighbours (see the module docstring)."""
    cube = _centred_cube(np.asarray(volume, dtype=np.float32))
    power = np.abs(np.fft.fftn(cube - cube.mean())) ** 2
    shape = power.shape
    offsets = [o for o in itertools.product((-1, 0, 1), repeat=3) if any(o)]
    ratios = []
    for freq in _upsampling_frequencies(shape):
        neighbours = [
            power[tuple((f + o) % n for f, o, n in zip(freq, offset, shape, strict=True))] for offset in offsets
        ]
        ratios.append(power[freq] / max(float(np.mean(neighbours)), 1e-20))
    return float(max(ratios))


def outside_body_share(values: np.ndarray, body: np.ndarray, threshold: float) -> float:
    """Share of the voxels beyond 2 voxels around ``body`` whose value is above ``threshold``."""
    near = ndimage.binary_dilation(ndimage.binary_fill_holes(body), iterations=2)
    outside = ~near
    if not outside.any():
        return 0.0
    return float((values[outside] > threshold).mean())


def blob_response(
    values_net: np.ndarray, body: np.ndarray, *, sigma: float, exclude: np.ndarray | None = None, band: int = 3
) -> float:
    """Strongest |difference of Gaussians| (sigma, 1.6 sigma) in the body interior outside ``exclude`` + ``band``."""
    image = np.asarray(values_net, dtype=np.float64)
    dog = ndimage.gaussian_filter(image, sigma) - ndimage.gaussian_filter(image, 1.6 * sigma)
    region = ndimage.binary_erosion(ndimage.binary_fill_holes(body), iterations=2 + int(np.ceil(2 * sigma)))
    if exclude is not None and exclude.any():
        region &= ~ndimage.binary_dilation(exclude, iterations=band + int(np.ceil(2 * sigma)))
    if not region.any():
        return 0.0
    return float(np.abs(dog[region]).max())
