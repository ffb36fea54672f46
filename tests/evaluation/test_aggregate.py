"""Tests for medgan.evaluation.aggregate: per-metric mean, std and bootstrap CI."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from medgan.errors import InputError
from medgan.evaluation.aggregate import aggregate_metrics


def test_mean_std_and_ci_by_hand() -> None:
    summary = aggregate_metrics([{"mae_hu": 1.0}, {"mae_hu": 2.0}, {"mae_hu": 3.0}])
    stats = summary["mae_hu"]
    assert stats["mean"] == 2.0
    assert stats["std"] == pytest.approx(1.0)  # sample std of 1, 2, 3
    assert stats["n"] == 3
    # bootstrap means of three values lie in [1, 3]; 95% of them straddle 2
    assert stats["ci_low"] >= 1.0
    assert stats["ci_low"] < stats["mean"] < stats["ci_high"]
    assert stats["ci_high"] <= 3.0
    json.dumps(summary)


def test_constant_values_give_a_zero_width_interval() -> None:
    stats = aggregate_metrics([{"ssim": 0.8}] * 5)["ssim"]
    assert stats["ci_low"] == stats["ci_high"] == pytest.approx(0.8)
    assert stats["std"] == 0.0


def test_seeded_and_reproducible() -> None:
    rng = np.random.default_rng(1)
    subjects = [{"mae_hu": float(v), "psnr_db": float(v) / 2} for v in rng.normal(60, 10, 12)]
    first = aggregate_metrics(subjects, seed=7)
    assert first == aggregate_metrics(subjects, seed=7)
    assert first["mae_hu"]["ci_low"] != aggregate_metrics(subjects, seed=8)["mae_hu"]["ci_low"]
    # each metric resamples from the seed on its own: dropping one leaves the other unchanged
    alone = aggregate_metrics([{"mae_hu": s["mae_hu"]} for s in subjects], seed=7)
    assert alone["mae_hu"] == first["mae_hu"]


def test_interval_width_matches_the_normal_approximation() -> None:
    values = np.random.default_rng(3).normal(0.0, 1.0, 400)
    stats = aggregate_metrics([{"x": float(v)} for v in values], n_bootstrap=4000)["x"]
    half_width = (stats["ci_high"] - stats["ci_low"]) / 2
    expected = 1.96 * values.std(ddof=1) / math.sqrt(values.size)  # ~0.098
    assert half_width == pytest.approx(expected, rel=0.15)
    assert stats["ci_low"] < stats["mean"] < stats["ci_high"]


def test_nan_skipped_and_non_numbers_ignored() -> None:
    subjects = [
        {"subject": "s1", "mae_hu_air": float("nan"), "dice_bone": 0.5, "ok": True},
        {"subject": "s2", "mae_hu_air": 120.0, "dice_bone": 0.7, "ok": False},
    ]
    summary = aggregate_metrics(subjects)
    assert set(summary) == {"mae_hu_air", "dice_bone"}
    air = summary["mae_hu_air"]
    assert air["n"] == 1 and air["mean"] == 120.0
    assert math.isnan(air["std"])
    assert air["ci_low"] == air["ci_high"] == 120.0
    assert summary["dice_bone"]["mean"] == pytest.approx(0.6)


def test_all_nan_and_infinite_values() -> None:
    summary = aggregate_metrics([{"a": float("nan"), "psnr_db": math.inf}, {"a": float("nan"), "psnr_db": 30.0}])
    assert summary["a"]["n"] == 0 and math.isnan(summary["a"]["mean"])
    assert summary["psnr_db"]["mean"] == math.inf
    assert math.isnan(summary["psnr_db"]["std"])
    assert summary["psnr_db"]["ci_high"] == math.inf


def test_bad_arguments() -> None:
    with pytest.raises(InputError, match="at least one"):
        aggregate_metrics([])
    with pytest.raises(InputError, match="confidence"):
        aggregate_metrics([{"a": 1.0}], confidence=1.5)
