"""Bootstrap intervals and paired differences against known answers."""

from __future__ import annotations

import numpy as np
import pytest

from medgan.evaluation.bootstrap import auc_metric, bootstrap_interval, paired_difference
from medgan.evaluation.roc import roc_auc

LABELS = np.array([0] * 20 + [1] * 20)


def test_a_perfect_classifier_has_auc_one_with_a_degenerate_interval() -> None:
    scores = np.tile(LABELS + np.linspace(0, 0.5, LABELS.size), (3, 1))
    interval = bootstrap_interval(auc_metric(scores, LABELS), 3, LABELS, n_boot=200)
    assert (interval.estimate, interval.low, interval.high) == (1.0, 1.0, 1.0)


def test_random_scores_give_an_interval_around_one_half() -> None:
    rng = np.random.default_rng(0)
    scores = rng.random((5, LABELS.size))
    interval = bootstrap_interval(auc_metric(scores, LABELS), 5, LABELS, n_boot=500)
    assert interval.low < 0.5 < interval.high
    assert interval.estimate == pytest.approx(np.mean([roc_auc(s, LABELS) for s in scores]))


def _scores_with_auc(n_swapped: int) -> np.ndarray:
    """Scores of LABELS whose AUC is exactly 1 - n_swapped / 400: n_swapped positive-negative pairs inverted."""
    negatives = np.arange(20, dtype=float)  # 0 .. 19
    positives = np.arange(20, dtype=float) + 20  # 20 .. 39
    positives[:1] = 19.5 - n_swapped  # the lowest positive sits below n_swapped negatives
    return np.concatenate([negatives, positives])


def test_the_score_construction_has_the_auc_it_claims() -> None:
    assert roc_auc(_scores_with_auc(10), LABELS) == pytest.approx(1 - 10 / 400)


def test_a_known_auc_difference_is_recovered_and_significant() -> None:
    strong = np.tile(_scores_with_auc(0), (4, 1))  # AUC 1.0
    rng = np.random.default_rng(1)
    weak = rng.random((4, LABELS.size))  # AUC around 0.5, known exactly per run
    expected = 1.0 - np.mean([roc_auc(s, LABELS) for s in weak])
    difference = paired_difference(auc_metric(strong, LABELS), auc_metric(weak, LABELS), 4, LABELS, n_boot=500)
    assert difference.estimate == pytest.approx(expected)
    assert difference.low > 0.2 and difference.p_value < 0.01


def test_identical_conditions_differ_by_exactly_zero() -> None:
    scores = np.random.default_rng(2).random((3, LABELS.size))
    metric = auc_metric(scores, LABELS)
    difference = paired_difference(metric, metric, 3, LABELS, n_boot=200)
    assert (difference.estimate, difference.low, difference.high) == (0.0, 0.0, 0.0)
    assert difference.p_value == 1.0


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="runs"):
        auc_metric(np.zeros((2, 3)), LABELS)
    with pytest.raises(ValueError, match="n_boot"):
        bootstrap_interval(auc_metric(np.zeros((1, 40)), LABELS), 1, LABELS, n_boot=5)
