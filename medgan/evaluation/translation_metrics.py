"""Paired image metrics for MRI -> pseudo-CT translation, computed the way SynthRAD2023 does.

Reference: Thummerer A., et al. "SynthRAD2023 Grand Challenge dataset: Generating
synthetic CT for radiotherapy." Medical Physics 50(7), 2023; metric definitions
as in the challenge's public evaluation code:

- **MAE** (HU): mean |pseudo-CT - CT| over the body mask, on unclipped HU.
- **PSNR** (dB): both images clipped to [-1024, 3000] HU, voxels inside the mask
  only, peak = data range = 4024 HU. Identical volumes give ``inf``.
- **SSIM**: both images clipped to [-1024, 3000] HU, voxels outside the mask set to
  -1024 (background), shifted by +1024 to be non-negative, data range 4024, a
  uniform 7x7x7 window (skimage's default, which SynthRAD uses), and the SSIM map
  averaged over the mask voxels whose window lies inside the volume (the map is
  "valid"-sized, i.e. 3 voxels cropped per side, as SynthRAD crops it).
  Computed with MONAI's ``compute_ssim_and_cs`` (the function behind
  ``SSIMMetric``), because the masked mean needs the map. MONAI uses the
  population covariance where skimage uses the sample one (factor 343/342) and
  works in float32; on realistic volumes the two agree to ~1e-3.

Added beyond SynthRAD, for radiotherapy-relevant detail: MAE per tissue and the
Dice overlap of bone. Tissue classes come from the reference CT inside the body
mask: air < -400 HU (sinuses, airways), bone > 250 HU, soft tissue in between, or
from a label volume when one is given. A tissue with no voxels gives ``NaN``.

Two air figures, not to be confused:

- ``mae_hu_air``: the *air tissue inside the body mask* (CT < -400 HU: sinuses,
  airways, mastoid cells); how well the network renders air within the anatomy.
- ``mae_hu_outside_body``: every voxel *outside* the body mask (the air around the
  head, and the table or anything else the mask leaves out); how clean the
  background is, e.g. whether it is -1000 HU or grey noise. It is not part of
  ``mae_hu`` (which, like SynthRAD, only scores the mask) and is ``NaN`` when the
  mask covers the whole volume.

One texture figure, because MAE alone rewards blur (Blau & Michaeli, "The
Perception-Distortion Tradeoff", CVPR 2018: no estimator minimises distortion and
matches the data's texture at once):

- ``texture_ratio``: the standard deviation of the high-pass residual (volume minus its
  Gaussian blur, sigma 1 voxel) inside the soft tissue eroded by 3 voxels (away from
  tissue edges), pseudo-CT over reference CT. 1 = as much fine texture (noise,
  small structures) as the CT; a blurred prediction scores below 1, and MRI noise carried
  into the pseudo-CT, or noise a generator draws, scores above 1. A generator that
  draws CT-like noise of standard deviation s, independent of the reference's own noise,
  pays for it with MAE: for Gaussian noise, E|n1 - n2| = 1.13 s against 0.80 s for a
  noise-free prediction. ``NaN`` when the eroded soft tissue is empty.

Every value is a plain Python float (``json.dumps`` writes ``NaN`` / ``Infinity``
for the documented NaN and inf cases; strict-JSON writers should map them to null).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from monai.metrics import PSNRMetric
from monai.metrics.regression import compute_ssim_and_cs
from scipy import ndimage

from medgan.errors import InputError
from medgan.viz.volumes import VolumeLike, as_volume, require_same_shape

HU_RANGE = (-1024.0, 3000.0)
HU_DATA_RANGE = HU_RANGE[1] - HU_RANGE[0]  # 4024 HU
SSIM_WINDOW = 7
AIR_BELOW_HU = -400.0
BONE_ABOVE_HU = 250.0
TEXTURE_BLUR_SIGMA = 1.0  # voxels: the high-pass keeps what a 1-voxel Gaussian removes
TEXTURE_ERODE = 3  # voxels eroded from the soft tissue, so tissue edges do not count as texture


def _masked_psnr(pseudo_ct_hu: np.ndarray, ct_hu: np.ndarray, body_mask: np.ndarray) -> float:
    """SynthRAD PSNR: clip to HU_RANGE, keep mask voxels, peak = 4024 HU (MONAI PSNRMetric)."""
    pred = torch.from_numpy(np.clip(pseudo_ct_hu[body_mask], *HU_RANGE))[None]
    ref = torch.from_numpy(np.clip(ct_hu[body_mask], *HU_RANGE))[None]
    return float(PSNRMetric(max_val=HU_DATA_RANGE)(pred, ref).item())


def _masked_ssim(pseudo_ct_hu: np.ndarray, ct_hu: np.ndarray, body_mask: np.ndarray) -> float:
    """SynthRAD SSIM (see the module docstring): 3D, uniform 7^3 window, mean over the mask."""
    background = HU_RANGE[0]

    def prepare(volume_hu: np.ndarray) -> torch.Tensor:
        clipped = np.where(body_mask, np.clip(volume_hu, *HU_RANGE), background) - background
        return torch.from_numpy(clipped.astype(np.float32))[None, None]

    ssim_map, _ = compute_ssim_and_cs(
        prepare(pseudo_ct_hu),
        prepare(ct_hu),
        spatial_dims=3,
        kernel_size=[SSIM_WINDOW] * 3,
        kernel_sigma=[1.5] * 3,  # unused by the uniform kernel
        data_range=HU_DATA_RANGE,
        kernel_type="uniform",
    )
    pad = SSIM_WINDOW // 2
    inner_mask = body_mask[pad:-pad, pad:-pad, pad:-pad]
    if not inner_mask.any():
        return float("nan")
    return float(ssim_map[0, 0].double().numpy()[inner_mask].mean())


def _dice(first: np.ndarray, second: np.ndarray) -> float:
    """Dice overlap of two boolean masks; NaN when both are empty (nothing to agree on)."""
    total = int(first.sum()) + int(second.sum())
    if total == 0:
        return float("nan")
    return 2.0 * float(np.logical_and(first, second).sum()) / total


def texture_ratio(pseudo_ct_hu: np.ndarray, ct_hu: np.ndarray, soft_tissue: np.ndarray) -> float:
    """High-pass standard deviation of the pseudo-CT over the CT's, inside eroded soft tissue.

    See the module docstring: 1 means CT-like fine texture, below 1 smoother, above 1 noisier. NaN when
    eroding ``soft_tissue`` by :data:`TEXTURE_ERODE` voxels leaves nothing, or the CT has
    no texture there at all.
    """
    core = ndimage.binary_erosion(soft_tissue, iterations=TEXTURE_ERODE)
    if not core.any():
        return float("nan")

    def high_pass_std(volume_hu: np.ndarray) -> float:
        volume = volume_hu.astype(np.float64, copy=False)
        return float(np.std((volume - ndimage.gaussian_filter(volume, TEXTURE_BLUR_SIGMA))[core]))

    reference_std = high_pass_std(ct_hu)
    return high_pass_std(pseudo_ct_hu) / reference_std if reference_std > 0 else float("nan")


def _tissue_masks(
    ct_hu: np.ndarray,
    body_mask: np.ndarray,
    tissue_labels: np.ndarray | None,
    tissue_names: Mapping[int, str] | None,
) -> dict[str, np.ndarray]:
    """Per-tissue voxel masks inside the body: HU thresholds on the CT, or a label volume."""
    if tissue_labels is None:
        return {
            "air": body_mask & (ct_hu < AIR_BELOW_HU),
            "soft_tissue": body_mask & (ct_hu >= AIR_BELOW_HU) & (ct_hu <= BONE_ABOVE_HU),
            "bone": body_mask & (ct_hu > BONE_ABOVE_HU),
        }
    labels = np.rint(tissue_labels).astype(np.int64)
    if tissue_names is None:
        tissue_names = {int(v): f"label_{int(v)}" for v in np.unique(labels[body_mask]) if v != 0}
    return {name: body_mask & (labels == int(value)) for value, name in tissue_names.items()}


def translation_metrics(
    pseudo_ct_hu: VolumeLike,
    ct_hu: VolumeLike,
    body_mask: VolumeLike,
    *,
    tissue_labels: VolumeLike | None = None,
    tissue_names: Mapping[int, str] | None = None,
) -> dict[str, float]:
    """Compare a pseudo-CT with its reference CT inside a body mask, SynthRAD2023 style.

    All three volumes (arrays, tensors or MetaTensors, leading size-1 axes dropped)
    must share one voxel grid of at least 7 voxels per axis; ``body_mask`` is true
    (> 0) inside the patient. Returns ``mae_hu``, ``psnr_db``, ``ssim``,
    ``mae_hu_<tissue>`` for each tissue, ``dice_bone`` (pseudo-CT > 250 HU vs
    CT > 250 HU inside the mask), ``texture_ratio`` (fine texture of the pseudo-CT
    relative to the CT in soft tissue, by CT HU) and ``mae_hu_outside_body`` (mean |error| over the
    voxels outside the mask; NaN when there are none; not the in-body ``mae_hu_air``).
    Tissues are air / soft_tissue / bone by CT HU, or, when ``tissue_labels`` (an
    integer label volume) is given, one entry per label named by ``tissue_names``
    (default: every non-zero label inside the mask, named ``label_<value>``). See the
    module docstring for the exact definitions and the NaN / inf cases. Raises
    :class:`InputError` for shape mismatches, an empty mask, volumes smaller than the
    SSIM window or non-finite HU values.
    """
    volumes = {
        "pseudo_ct_hu": as_volume(pseudo_ct_hu, "pseudo_ct_hu"),
        "ct_hu": as_volume(ct_hu, "ct_hu"),
        "body_mask": as_volume(body_mask, "body_mask"),
    }
    if tissue_labels is not None:
        volumes["tissue_labels"] = as_volume(tissue_labels, "tissue_labels")
    shape = require_same_shape(volumes)
    if min(shape) < SSIM_WINDOW:
        raise InputError(
            f"volumes of shape {shape} are smaller than the {SSIM_WINDOW}-voxel SSIM window",
            fix=f"evaluate volumes with at least {SSIM_WINDOW} voxels along every axis",
        )
    pseudo, reference = volumes["pseudo_ct_hu"], volumes["ct_hu"]
    for name in ("pseudo_ct_hu", "ct_hu"):
        if not np.isfinite(volumes[name]).all():
            raise InputError(f"{name} contains NaN or infinite values", fix="check the volume that produced it")
    mask = volumes["body_mask"] > 0
    if not mask.any():
        raise InputError(
            "body_mask is empty: no voxel to evaluate",
            fix="pass a mask of the patient's body, or build one with body_mask_from_ct(ct_hu)",
        )

    abs_error_hu = np.abs(pseudo - reference)
    metrics = {
        "mae_hu": float(abs_error_hu[mask].mean()),
        "psnr_db": _masked_psnr(pseudo, reference, mask),
        "ssim": _masked_ssim(pseudo, reference, mask),
    }
    tissues = _tissue_masks(reference, mask, volumes.get("tissue_labels"), tissue_names)
    for tissue, tissue_mask in tissues.items():
        metrics[f"mae_hu_{tissue}"] = float(abs_error_hu[tissue_mask].mean()) if tissue_mask.any() else float("nan")
    metrics["texture_ratio"] = texture_ratio(
        pseudo, reference, mask & (reference >= AIR_BELOW_HU) & (reference <= BONE_ABOVE_HU)
    )
    metrics["dice_bone"] = _dice(mask & (pseudo > BONE_ABOVE_HU), mask & (reference > BONE_ABOVE_HU))
    outside = ~mask
    metrics["mae_hu_outside_body"] = float(abs_error_hu[outside].mean()) if outside.any() else float("nan")
    return metrics


def body_mask_from_ct(ct_hu: VolumeLike, threshold: float = -500.0) -> np.ndarray:
    """Body mask from a CT: voxels above ``threshold`` HU, largest component, holes filled.

    For when no mask comes with the data. Holes are filled in 3D and then in every
    slice along the last axis (axial for RAS volumes), so that air inside the head
    that reaches the outside through the nose or airway (sinuses, pharynx) still
    counts as body, which the per-tissue air MAE needs. Returns a boolean array.
    """
    volume = as_volume(ct_hu, "ct_hu")
    components, count = ndimage.label(volume > threshold)
    if count == 0:
        raise InputError(
            f"no voxel of the CT is above {threshold} HU, so there is no body to mask",
            fix="check that the volume is a CT in HU, or lower the threshold",
        )
    sizes = np.bincount(components.ravel())
    sizes[0] = 0
    body = ndimage.binary_fill_holes(components == int(np.argmax(sizes)))
    for k in range(body.shape[2]):
        body[:, :, k] = ndimage.binary_fill_holes(body[:, :, k])
    return body
