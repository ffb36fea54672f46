"""AUC against known answers: perfect, reversed, ties, a hand-counted case."""

from __future__ import annotations

import numpy as np
import pytest

from medgan.evaluation.roc import roc_auc


def test_known_aucs() -> None:
    labels = np.array([0, 0, 1, 1])
    assert roc_auc(np.array([0.1, 0.2, 0.8, 0.9]), labels) == 1.0
    assert roc_auc(np.array([0.9, 0.8, 0.2, 0.1]), labels) == 0.0
    assert roc_auc(np.full(4, 0.5), labels) == 0.5
    # positives 0.4, 0.7 vs negatives 0.5, 0.3: pairs won 0.4>0.3, 0.7>0.5, 0.7>0.3 = 3 of 4
    assert roc_auc(np.array([0.5, 0.3, 0.4, 0.7]), labels) == 0.75
    rng = np.random.default_rng(0)
    assert roc_auc(rng.random(4000), rng.integers(0, 2, 4000)) == pytest.approx(0.5, abs=0.03)


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="positive and one negative"):
        roc_auc(np.array([0.1, 0.2]), np.array([1, 1]))
    with pytest.raises(ValueError, match="differ"):
        roc_auc(np.array([0.1]), np.array([1, 0]))
