import numpy as np
import pytest
import torch

from medgan.evaluation.report import realism
from medgan.evaluation.report.volumes import network
from tests.evaluation.report.heads import head_ct


def _rows(n: int, seed: int, shift: float = 0.0) -> list[dict[str, float]]:
    rng = np.random.default_rng(seed)
    return [dict(zip("abcdef", rng.normal(size=6) + shift, strict=True)) for _ in range(n)]


def _stack(volumes: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack([network(v, "ct") for v in volumes])[:, None])


def test_identical_sets_have_zero_distance_and_same_distribution_sets_no_excess() -> None:
    real = _rows(30, 0)
    assert abs(realism.normalised_frechet(real, real)) < 1e-6
    same = realism.permutation_null(realism.normalised_frechet, _rows(30, 1), real, permutations=100)
    assert same["statistic"] > 0.05  # raw distance of small sets is noise ...
    assert same["excess"] < 0.3 and same["p_value"] > 0.05  # ... which the permutation null takes away
    shifted = realism.permutation_null(realism.normalised_frechet, _rows(30, 1, shift=1.5), real, permutations=100)
    assert shifted["excess"] > 1.0 and shifted["p_value"] < 0.05
    shifted_rows = _rows(30, 1, shift=1.5)
    mmd = realism.permutation_null(realism.feature_mmd, shifted_rows, real, permutations=100)
    assert mmd["p_value"] < 0.05 and mmd["excess"] > 1.0


def test_feature_mmd_is_the_unbiased_linear_mmd_per_feature() -> None:
    real, synthetic = _rows(30, 0), _rows(30, 1, shift=1.5)
    ref = np.array([list(r.values()) for r in real])
    mean, sd = ref.mean(axis=0), ref.std(axis=0)
    a = (ref - mean) / sd
    b = (np.array([list(r.values()) for r in synthetic]) - mean) / sd
    n = a.shape[0]
    within = lambda x: ((x @ x.T).sum() - np.trace(x @ x.T)) / (n * (n - 1))  # noqa: E731
    expected = (within(a) + within(b) - 2 * (a @ b.T).mean()) / a.shape[1]
    assert realism.feature_mmd(synthetic, real) == pytest.approx(expected, rel=1e-9)
    assert abs(expected - 1.5**2) < 0.75  # a 1.5 sd shift in every feature, up to sampling noise


def test_volume_features_see_texture_and_intensity() -> None:
    head = head_ct(0)
    body = head > -500
    value_range = realism.texture_range([head], [body])
    plain = realism.volume_features(head, body, 0.064, value_range)
    noise = np.random.default_rng(0).normal(0, 100, head.shape) * body
    noisy = realism.volume_features(head + noise, body, 0.064, value_range)
    assert noisy["glcm_homogeneity"] < plain["glcm_homogeneity"] - 0.05 and noisy["sd"] > plain["sd"]
    brighter = realism.volume_features(head + 50.0 * body, body, 0.064, value_range)
    assert abs(brighter["mean"] - plain["mean"] - 50.0) < 1e-3 and abs(brighter["p50"] - plain["p50"] - 50.0) < 1e-3
    assert abs(plain["body_ml"] - body.sum() * 0.064) < 1e-6


def test_two_sample_auc_is_chance_for_identical_sets_and_high_for_separable_ones() -> None:
    real = _stack([head_ct(i) for i in range(10)])
    same = realism.two_sample_auc(real, real.clone(), steps=40, n_boot=200)
    assert abs(same["auc"] - 0.5) < 0.2 and same["low"] < 0.5 < same["high"]
    marked = _stack([head_ct(100 + i) for i in range(10)])
    marked[:, :, 8:16, 8:16, 8:16] += 0.3  # a bright cube no real scan has
    separable = realism.two_sample_auc(real, marked, steps=40, n_boot=200)
    assert separable["auc"] > 0.9
