"""Operating points: Youden's threshold from validation scores, sensitivity / specificity at it."""

from __future__ import annotations

import numpy as np
import pytest

from medgan.evaluation.binary_metrics import operating_point, youden_threshold


def test_youden_threshold_separates_separable_scores() -> None:
    scores = np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.9])
    labels = np.array([0, 0, 0, 1, 1, 1])
    threshold = youden_threshold(scores, labels)
    assert threshold == pytest.approx(0.5)  # the midpoint between the classes
    assert operating_point(scores, labels, threshold) == {
        "sensitivity": 1.0,
        "specificity": 1.0,
        "balanced_accuracy": 1.0,
    }


def test_operating_point_counts_at_a_given_threshold() -> None:
    scores = np.array([0.1, 0.6, 0.4, 0.9, 0.3, 0.8])
    labels = np.array([0, 0, 1, 1, 1, 1])
    point = operating_point(scores, labels, 0.5)
    assert point["sensitivity"] == pytest.approx(2 / 4)
    assert point["specificity"] == pytest.approx(1 / 2)
    assert point["balanced_accuracy"] == pytest.approx(0.5)


def test_a_single_class_is_refused() -> None:
    with pytest.raises(ValueError, match="positive and one negative"):
        youden_threshold(np.array([0.1, 0.2]), np.array([1, 1]))
