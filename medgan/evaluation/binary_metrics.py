"""Operating points of a binary score: a threshold fixed on validation cases, then
sensitivity, specificity and balanced accuracy at it on test cases.

Why the threshold comes from validation: choosing it on the test cases would report the
best case of a curve instead of what a deployed classifier does. Youden's J (sensitivity +
specificity - 1) is the usual choice when no clinical cost ratio is given.
"""

from __future__ import annotations

import numpy as np


def _as_arrays(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels).ravel().astype(bool)
    if scores.shape != labels.shape:
        raise ValueError(f"scores {scores.shape} and labels {labels.shape} differ in length")
    if not labels.any() or labels.all():
        raise ValueError("an operating point needs at least one positive and one negative case")
    return scores, labels


def youden_threshold(scores: np.ndarray, labels: np.ndarray) -> float:
    """The score threshold (predict positive when ``score >= threshold``) that maximises Youden's J.

    Candidates are midpoints between neighbouring distinct scores (plus one above the
    largest), so the threshold generalises to scores between the validation ones; ties in J
    go to the higher threshold (fewer false positives).
    """
    scores, labels = _as_arrays(scores, labels)
    distinct = np.unique(scores)
    candidates = np.concatenate([[distinct[0] - 1.0], (distinct[:-1] + distinct[1:]) / 2, [distinct[-1] + 1.0]])
    best_threshold, best_j = float(candidates[0]), -np.inf
    for threshold in candidates:
        predicted = scores >= threshold
        j = predicted[labels].mean() + (~predicted[~labels]).mean() - 1.0
        if j >= best_j - 1e-12:
            best_threshold, best_j = float(threshold), j
    return best_threshold


def operating_point(scores: np.ndarray, labels: np.ndarray, threshold: float) -> dict[str, float]:
    """Sensitivity, specificity and balanced accuracy of ``score >= threshold``."""
    scores, labels = _as_arrays(scores, labels)
    predicted = scores >= threshold
    sensitivity = float(predicted[labels].mean())
    specificity = float((~predicted[~labels]).mean())
    return {
        "sensitivity": sensitivity,
        "specificity": specificity,
        "balanced_accuracy": (sensitivity + specificity) / 2,
    }
