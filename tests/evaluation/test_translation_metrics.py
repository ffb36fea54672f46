"""Tests for medgan.evaluation.translation_metrics, against values worked out by hand."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from scipy import ndimage
from skimage.metrics import structural_similarity
from skimage.util import crop

from medgan.errors import InputError
from medgan.evaluation.translation_metrics import body_mask_from_ct, translation_metrics


def _phantom_ct(shape: tuple[int, int, int] = (12, 12, 12)) -> tuple[np.ndarray, np.ndarray]:
    """A small CT: air outside, a soft-tissue block with a bone slab and an air pocket inside."""
    ct_hu = np.full(shape, -1000.0)
    body_mask = np.zeros(shape, dtype=bool)
    body_mask[2:10, 2:10, 2:10] = True
    ct_hu[body_mask] = 40.0
    ct_hu[2:10, 2:10, 2:4] = 1000.0  # bone slab
    ct_hu[5:7, 5:7, 5:7] = -800.0  # sinus-like air pocket
    return ct_hu, body_mask


def test_identity_is_perfect() -> None:
    ct_hu, body_mask = _phantom_ct()
    metrics = translation_metrics(ct_hu.copy(), ct_hu, body_mask)
    assert metrics["mae_hu"] == 0.0
    assert metrics["psnr_db"] == math.inf
    assert metrics["ssim"] == pytest.approx(1.0, abs=1e-6)
    assert metrics["dice_bone"] == 1.0
    assert metrics["mae_hu_air"] == metrics["mae_hu_soft_tissue"] == metrics["mae_hu_bone"] == 0.0
    assert all(type(v) is float for v in metrics.values())
    json.dumps(metrics)


def test_constant_shift_gives_known_mae_and_psnr() -> None:
    ct_hu, body_mask = _phantom_ct()
    metrics = translation_metrics(ct_hu + 50.0, ct_hu, body_mask)
    assert metrics["mae_hu"] == pytest.approx(50.0)
    for tissue in ("air", "soft_tissue", "bone"):
        assert metrics[f"mae_hu_{tissue}"] == pytest.approx(50.0)
    # every masked voxel is off by 50 HU: PSNR = 20 log10(4024 / 50)
    assert metrics["psnr_db"] == pytest.approx(20 * math.log10(4024 / 50), abs=1e-9)
    assert 0.0 < metrics["ssim"] < 1.0


def test_hand_computed_mae_and_psnr_ignore_voxels_outside_the_mask() -> None:
    ct_hu = np.zeros((7, 7, 7))
    pseudo_ct_hu = np.zeros((7, 7, 7))
    body_mask = np.zeros((7, 7, 7), dtype=bool)
    voxels = [(1, 1, 1), (2, 3, 4), (5, 5, 5), (6, 0, 3)]
    for voxel, error_hu in zip(voxels, (10.0, -20.0, 30.0, -40.0), strict=True):
        body_mask[voxel] = True
        pseudo_ct_hu[voxel] = error_hu
    pseudo_ct_hu[0, 0, 0] = 2000.0  # outside the body: must not count
    metrics = translation_metrics(pseudo_ct_hu, ct_hu, body_mask)
    assert metrics["mae_hu"] == pytest.approx(25.0)
    mse = (100 + 400 + 900 + 1600) / 4
    assert metrics["psnr_db"] == pytest.approx(10 * math.log10(4024**2 / mse), abs=1e-9)


def test_psnr_clips_to_synthrad_range_but_mae_does_not() -> None:
    ct_hu, body_mask = _phantom_ct()
    pseudo_ct_hu = ct_hu.copy()
    ct_hu[4, 4, 4] = -2000.0  # below -1024: both clip to -1024 for PSNR
    pseudo_ct_hu[4, 4, 4] = -1024.0
    metrics = translation_metrics(pseudo_ct_hu, ct_hu, body_mask)
    assert metrics["psnr_db"] == math.inf
    assert metrics["mae_hu"] == pytest.approx(976.0 / body_mask.sum())


def test_per_tissue_split_by_hu_thresholds() -> None:
    ct_hu, body_mask = _phantom_ct()
    pseudo_ct_hu = ct_hu.copy()
    air = body_mask & (ct_hu < -400)
    bone = body_mask & (ct_hu > 250)
    soft = body_mask & ~air & ~bone
    pseudo_ct_hu[air] += 100.0
    pseudo_ct_hu[soft] -= 10.0
    pseudo_ct_hu[bone] -= 300.0  # 1000 -> 700 HU, still bone
    pseudo_ct_hu[~body_mask] = 500.0  # outside air mislabelled: ignored
    metrics = translation_metrics(pseudo_ct_hu, ct_hu, body_mask)
    assert metrics["mae_hu_air"] == pytest.approx(100.0)
    assert metrics["mae_hu_soft_tissue"] == pytest.approx(10.0)
    assert metrics["mae_hu_bone"] == pytest.approx(300.0)
    n_air, n_soft, n_bone = air.sum(), soft.sum(), bone.sum()
    assert (n_air, n_soft, n_bone) == (8, 512 - 8 - 128, 128)  # 8^3 body, 2 bone slices of 8x8, 2^3 air
    expected = (100 * n_air + 10 * n_soft + 300 * n_bone) / body_mask.sum()
    assert metrics["mae_hu"] == pytest.approx(expected)
    assert metrics["dice_bone"] == 1.0
    assert metrics["mae_hu_outside_body"] == pytest.approx(1500.0)  # -1000 HU read as 500 HU outside


def test_mae_outside_body_by_hand_and_apart_from_the_in_body_air() -> None:
    """Outside-body MAE scores the background only; the in-body air MAE and mae_hu do not see it."""
    ct_hu, body_mask = _phantom_ct()
    pseudo_ct_hu = ct_hu.copy()
    outside = ~body_mask
    n_outside = int(outside.sum())
    assert n_outside == 12**3 - 8**3
    noisy = np.zeros(n_outside)
    noisy[:10] = 300.0  # ten background voxels read as -700 HU, the rest exact
    pseudo_ct_hu[outside] += noisy
    metrics = translation_metrics(pseudo_ct_hu, ct_hu, body_mask)
    assert metrics["mae_hu_outside_body"] == pytest.approx(10 * 300.0 / n_outside)
    assert metrics["mae_hu"] == 0.0 and metrics["mae_hu_air"] == 0.0

    in_body_air = body_mask & (ct_hu < -400)
    pseudo_ct_hu = ct_hu.copy()
    pseudo_ct_hu[in_body_air] = 0.0  # the sinus filled with soft tissue
    metrics = translation_metrics(pseudo_ct_hu, ct_hu, body_mask)
    assert metrics["mae_hu_air"] == pytest.approx(800.0)
    assert metrics["mae_hu_outside_body"] == 0.0


def test_mae_outside_body_is_nan_when_the_mask_covers_everything_and_null_in_json() -> None:
    ct_hu = np.zeros((7, 7, 7))
    metrics = translation_metrics(ct_hu + 1.0, ct_hu, np.ones_like(ct_hu))
    assert math.isnan(metrics["mae_hu_outside_body"])
    from medgan.io.strict_json import strict_json

    assert json.loads(json.dumps(strict_json(metrics)))["mae_hu_outside_body"] is None


def test_threshold_edges_count_as_soft_tissue() -> None:
    ct_hu = np.zeros((7, 7, 7))
    body_mask = np.zeros_like(ct_hu, dtype=bool)
    body_mask[3, 3, 2:5] = True
    ct_hu[3, 3, 2:5] = (-400.0, 250.0, 251.0)
    pseudo_ct_hu = ct_hu + np.where(body_mask, 6.0, 0.0)
    pseudo_ct_hu[3, 3, 4] += 6.0  # the bone voxel is off by 12
    metrics = translation_metrics(pseudo_ct_hu, ct_hu, body_mask)
    assert math.isnan(metrics["mae_hu_air"])
    assert metrics["mae_hu_soft_tissue"] == pytest.approx(6.0)
    assert metrics["mae_hu_bone"] == pytest.approx(12.0)


def test_bone_dice_by_hand() -> None:
    ct_hu = np.zeros((8, 8, 8))
    body_mask = np.zeros_like(ct_hu, dtype=bool)
    body_mask[1:7, 1:7, 1:7] = True
    pseudo_ct_hu = ct_hu.copy()
    ct_hu[2, 2, 2:6] = 800.0  # 4 bone voxels in the CT
    pseudo_ct_hu[2, 2, 2:4] = 800.0  # 2 of them found
    pseudo_ct_hu[4, 4, 2:4] = 800.0  # 2 false bone voxels
    pseudo_ct_hu[0, 0, 0] = 800.0  # outside the body: ignored
    metrics = translation_metrics(pseudo_ct_hu, ct_hu, body_mask)
    assert metrics["dice_bone"] == pytest.approx(2 * 2 / (4 + 4))


def test_no_bone_anywhere_gives_nan_not_a_crash() -> None:
    ct_hu = np.zeros((7, 7, 7))
    metrics = translation_metrics(ct_hu + 1.0, ct_hu, np.ones_like(ct_hu))
    assert math.isnan(metrics["dice_bone"])
    assert math.isnan(metrics["mae_hu_bone"]) and math.isnan(metrics["mae_hu_air"])
    assert metrics["mae_hu_soft_tissue"] == pytest.approx(1.0)


def test_tissue_labels_replace_the_hu_split() -> None:
    ct_hu, body_mask = _phantom_ct()
    tissue_labels = np.zeros(ct_hu.shape, dtype=np.int16)
    tissue_labels[2:10, 2:10, 2:6] = 1
    tissue_labels[2:10, 2:10, 6:10] = 2
    pseudo_ct_hu = ct_hu + np.where(tissue_labels == 1, 4.0, 8.0)
    named = translation_metrics(
        pseudo_ct_hu, ct_hu, body_mask, tissue_labels=tissue_labels, tissue_names={1: "skull", 2: "brain"}
    )
    assert named["mae_hu_skull"] == pytest.approx(4.0)
    assert named["mae_hu_brain"] == pytest.approx(8.0)
    assert "mae_hu_air" not in named
    default = translation_metrics(pseudo_ct_hu, ct_hu, body_mask, tissue_labels=tissue_labels)
    assert default["mae_hu_label_1"] == pytest.approx(4.0)
    assert default["mae_hu_label_2"] == pytest.approx(8.0)


def test_ssim_matches_the_synthrad_skimage_recipe() -> None:
    rng = np.random.default_rng(0)
    ct_hu = ndimage.gaussian_filter(rng.normal(0, 1, (20, 20, 20)), 2) * 3000
    pseudo_ct_hu = ct_hu + ndimage.gaussian_filter(rng.normal(0, 1, ct_hu.shape), 1) * 1500
    body_mask = np.zeros(ct_hu.shape, dtype=bool)
    body_mask[2:18, 3:17, 4:16] = True
    ours = translation_metrics(pseudo_ct_hu, ct_hu, body_mask)["ssim"]

    # the challenge's recipe with skimage (sample covariance, float64)
    def prepare(volume_hu: np.ndarray) -> np.ndarray:
        return np.where(body_mask, np.clip(volume_hu, -1024, 3000), -1024) + 1024

    _, ssim_map = structural_similarity(prepare(ct_hu), prepare(pseudo_ct_hu), data_range=4024, full=True)
    reference = crop(ssim_map, 3)[crop(body_mask, 3)].mean()
    assert 0.2 < reference < 0.99
    assert ours == pytest.approx(reference, abs=5e-4)


def test_ssim_ignores_what_lies_outside_the_mask() -> None:
    ct_hu, body_mask = _phantom_ct()
    pseudo_ct_hu = ct_hu + 30.0
    garbage_outside = np.where(body_mask, pseudo_ct_hu, 2500.0)
    assert translation_metrics(garbage_outside, ct_hu, body_mask)["ssim"] == pytest.approx(
        translation_metrics(pseudo_ct_hu, ct_hu, body_mask)["ssim"], abs=1e-7
    )


def test_accepts_tensors_with_channel_axes() -> None:
    ct_hu, body_mask = _phantom_ct()
    metrics = translation_metrics(torch.from_numpy(ct_hu + 50.0)[None, None], torch.from_numpy(ct_hu)[None], body_mask)
    assert metrics["mae_hu"] == pytest.approx(50.0)


def test_user_errors_are_input_errors() -> None:
    ct_hu, body_mask = _phantom_ct()
    with pytest.raises(InputError, match="same shape"):
        translation_metrics(ct_hu[:, :, :-1], ct_hu, body_mask)
    with pytest.raises(InputError, match="empty"):
        translation_metrics(ct_hu, ct_hu, np.zeros_like(body_mask))
    with pytest.raises(InputError, match="SSIM window"):
        translation_metrics(ct_hu[:6], ct_hu[:6], body_mask[:6])
    nan_ct = ct_hu.copy()
    nan_ct[0, 0, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        translation_metrics(nan_ct, ct_hu, body_mask)
    with pytest.raises(InputError, match="3D"):
        translation_metrics(ct_hu[0], ct_hu[0], body_mask[0])


def test_body_mask_keeps_the_head_with_its_airways_and_drops_the_table() -> None:
    shape = (20, 20, 24)
    i, j, k = np.indices(shape)
    head = (i - 10) ** 2 + (j - 10) ** 2 + (k - 12) ** 2 <= 7**2
    ct_hu = np.where(head, 40.0, -1000.0)
    ct_hu[(i - 10) ** 2 + (j - 10) ** 2 + (k - 12) ** 2 <= 2**2] = -900.0  # sinus
    ct_hu[9:11, 9:11, 0:12] = -900.0  # airway from the sinus out through the inferior surface
    ct_hu[0:3, 0:3, 0:3] = 200.0  # a bit of table, not connected to the head
    body_mask = body_mask_from_ct(ct_hu)
    assert body_mask.dtype == bool
    expected = head.copy()
    expected[10, 10, 5] = False  # the airway's outlet: the one head voxel of its slice, open to the outside
    np.testing.assert_array_equal(body_mask, expected)


def test_body_mask_of_pure_air_is_an_input_error() -> None:
    with pytest.raises(InputError, match="no voxel"):
        body_mask_from_ct(np.full((5, 5, 5), -1000.0))


def _noisy_head(noise_hu: float, seed: int, shape: tuple[int, int, int] = (24, 24, 24)) -> tuple[np.ndarray, ...]:
    """Soft tissue (40 HU) in air with a bone slab, plus Gaussian noise of ``noise_hu`` inside the body."""
    ct_hu = np.full(shape, -1000.0)
    body_mask = np.zeros(shape, dtype=bool)
    body_mask[3:21, 3:21, 3:21] = True
    ct_hu[body_mask] = 40.0
    ct_hu[3:21, 3:21, 3:6] = 1000.0
    noise = np.random.default_rng(seed).normal(0.0, noise_hu, shape) if noise_hu else 0.0
    return np.where(body_mask, ct_hu + noise, ct_hu), body_mask


def test_texture_ratio_tells_a_smooth_prediction_from_ct_like_noise() -> None:
    ct_hu, body_mask = _noisy_head(20.0, seed=0)
    smooth, _ = _noisy_head(0.0, seed=1)
    ct_like, _ = _noisy_head(20.0, seed=2)  # same noise level, independent of the reference's
    twice, _ = _noisy_head(40.0, seed=3)
    smooth_metrics = translation_metrics(smooth, ct_hu, body_mask)
    ct_like_metrics = translation_metrics(ct_like, ct_hu, body_mask)
    assert smooth_metrics["texture_ratio"] < 0.1  # noise-free tissue: only the bone edge's faint blur tail
    assert ct_like_metrics["texture_ratio"] == pytest.approx(1.0, abs=0.1)
    assert translation_metrics(twice, ct_hu, body_mask)["texture_ratio"] == pytest.approx(2.0, abs=0.2)
    # the price of CT-like texture in MAE: E|n1 - n2| = 1.13 s against E|n| = 0.80 s (soft tissue, s = 20 HU)
    assert smooth_metrics["mae_hu_soft_tissue"] == pytest.approx(0.80 * 20, rel=0.1)
    assert ct_like_metrics["mae_hu_soft_tissue"] == pytest.approx(1.13 * 20, rel=0.1)


def test_texture_ratio_is_nan_without_soft_tissue_away_from_edges() -> None:
    ct_hu, body_mask = _noisy_head(20.0, seed=0)
    thin = np.zeros_like(body_mask)
    thin[3:21, 3:21, 6:12] = True  # soft tissue 6 voxels thick: eroding 3 from each side leaves nothing
    assert math.isnan(translation_metrics(ct_hu, ct_hu, thin)["texture_ratio"])
    assert translation_metrics(ct_hu, ct_hu, body_mask)["texture_ratio"] == 1.0
