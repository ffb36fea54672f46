"""Detection candidates, FROC sensitivities and Dice on hand-made maps with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from medgan.evaluation.froc import CaseCandidates, detection_candidates, dice, froc_curve, sensitivity_at_fp_rates


def _blob(shape, centre, radius, value=1.0):
    grid = np.indices(shape)
    inside = sum((grid[d] - centre[d]) ** 2 for d in range(3)) <= radius**2
    return inside * value


def test_candidates_hit_the_lesion_they_peak_in_and_count_the_rest_as_false_positives() -> None:
    mask = _blob((20, 20, 20), (5, 5, 5), 2) > 0
    probability = np.maximum(_blob((20, 20, 20), (5, 5, 5), 2, 0.9), _blob((20, 20, 20), (15, 15, 15), 2, 0.6))
    candidates = detection_candidates(probability, mask)
    assert candidates.n_lesions == 1
    assert sorted(zip(candidates.scores.tolist(), candidates.lesion_ids.tolist(), strict=True)) == [(0.6, -1), (0.9, 0)]


def test_a_map_wide_blob_is_not_a_free_hit() -> None:
    mask = _blob((20, 20, 20), (5, 5, 5), 2) > 0
    probability = np.full((20, 20, 20), 0.3)
    probability[15, 15, 15] = 0.5  # the peak is far from the lesion
    candidates = detection_candidates(probability, mask)
    assert candidates.lesion_ids.tolist() == [-1]


def test_froc_points_on_a_known_candidate_list() -> None:
    # 2 scans, 3 lesions; candidates by score: hit(0.9) FP(0.8) hit(0.7) FP(0.6) FP(0.5) hit(0.4)
    cases = [
        CaseCandidates(np.array([0.9, 0.8, 0.4]), np.array([0, -1, 1]), 2),
        CaseCandidates(np.array([0.7, 0.6, 0.5]), np.array([0, -1, -1]), 1),
    ]
    fp, sensitivity = froc_curve(cases)
    assert fp.tolist() == [0.0, 0.0, 0.5, 0.5, 1.0, 1.5, 1.5]
    assert sensitivity.tolist() == pytest.approx([0, 1 / 3, 1 / 3, 2 / 3, 2 / 3, 2 / 3, 1.0])
    points = sensitivity_at_fp_rates(cases, (0.25, 0.5, 1.0, 2.0))
    assert points == pytest.approx(
        {"0.25": 1 / 3, "0.5": 2 / 3, "1": 2 / 3, "2": 1.0, "mean": (1 / 3 + 2 / 3 + 2 / 3 + 1) / 4}
    )


def test_a_lesion_found_twice_counts_once() -> None:
    cases = [CaseCandidates(np.array([0.9, 0.8]), np.array([0, 0]), 2)]
    assert froc_curve(cases)[1].max() == pytest.approx(0.5)


def test_dice() -> None:
    a = np.zeros((4, 4, 4), bool)
    b = a.copy()
    assert dice(a, b) == 1.0
    a[0, 0, :2] = True
    b[0, 0, 1:3] = True
    assert dice(a, b) == pytest.approx(0.5)
