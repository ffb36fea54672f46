"""Lesion realism measures against known answers: features of a known lesion, seams, Fréchet distance, crops."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.metrics.fid import get_fid_score
from scipy import ndimage

from medgan.evaluation.lesion_realism import (
    feature_frechet_distance,
    gaussian_frechet_distance,
    lesion_crop,
    lesion_radiomics,
    seam_score,
)


def ball(centre=(16, 16, 16), radius=5.0, shape=(32, 32, 32)) -> np.ndarray:
    grids = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    return sum((g - c) ** 2 for g, c in zip(grids, centre, strict=True)) <= radius**2


def test_radiomics_of_a_known_lesion() -> None:
    rng = np.random.default_rng(0)
    mask = ball()
    image = 30 + 5 * rng.standard_normal(mask.shape)
    image[mask] += 50
    features = lesion_radiomics(image, mask, (1.0, 1.0, 1.0))
    assert features["mean"] == pytest.approx(80, abs=1) and features["sd"] == pytest.approx(5, abs=0.5)
    assert features["contrast_to_shell"] == pytest.approx(50, abs=2)
    assert features["volume_ml"] == pytest.approx(mask.sum() / 1000) and 0 <= features["glcm_homogeneity"] <= 1
    with pytest.raises(ValueError, match="empty"):
        lesion_radiomics(image, np.zeros_like(mask), (1.0, 1.0, 1.0))


def test_a_pasted_sharp_lesion_has_a_stronger_seam_than_a_blended_one() -> None:
    rng = np.random.default_rng(1)
    mask = ball()
    tissue = 30 + 2 * rng.standard_normal(mask.shape)
    sharp = tissue.copy()
    sharp[mask] += 60
    blended = tissue + 60 * ndimage.gaussian_filter(mask.astype(float), 1.5)
    assert seam_score(sharp, mask) > seam_score(blended, mask) > 1.0
    assert seam_score(tissue, mask) == pytest.approx(1.0, abs=0.2)


def test_frechet_distance_is_zero_for_the_same_rows_and_grows_with_a_shift() -> None:
    rng = np.random.default_rng(2)
    rows = [{"a": float(x), "b": float(y)} for x, y in rng.standard_normal((200, 2))]
    shifted = [{"a": row["a"] + 1.0, "b": row["b"]} for row in rows]
    assert feature_frechet_distance(rows, rows) == pytest.approx(0.0, abs=1e-6)
    sd_a = np.std([row["a"] for row in rows])  # features are standardised by the reference's spread
    assert feature_frechet_distance(shifted, rows) == pytest.approx((1.0 / sd_a) ** 2, rel=1e-6)


def test_gaussian_frechet_matches_monai_where_monai_is_well_conditioned() -> None:
    rng = np.random.default_rng(4)
    a, b = rng.standard_normal((300, 5)), 0.5 + 1.5 * rng.standard_normal((300, 5))
    expected = float(get_fid_score(torch.from_numpy(a), torch.from_numpy(b)))
    assert gaussian_frechet_distance(a, b) == pytest.approx(expected, rel=1e-9)


def test_gaussian_frechet_stays_real_with_fewer_rows_than_features() -> None:
    # 6 rows of 8 features: both covariances are rank-deficient, the case where MONAI's FID raised
    # "Imaginary component too high" on CI's CPU.
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((6, 8)) @ rng.standard_normal((8, 8)), rng.standard_normal((6, 8))
    distance = gaussian_frechet_distance(a, b)
    assert np.isfinite(distance) and distance > 0
    assert gaussian_frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)


def test_crop_is_centred_on_the_lesion_and_padded_at_edges() -> None:
    images = np.stack([np.arange(32**3, dtype=float).reshape(32, 32, 32)] * 2)
    crop = lesion_crop(images, ball(centre=(10, 12, 14), radius=2), 8)
    assert crop.shape == (2, 8, 8, 8) and crop[0, 4, 4, 4] == images[0, 10, 12, 14]
    edge = lesion_crop(images, ball(centre=(1, 1, 1), radius=1), 8)
    assert edge.shape == (2, 8, 8, 8) and edge[0, 4, 4, 4] == images[0, 1, 1, 1]
