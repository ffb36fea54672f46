"""Lesion-wise detection scores: candidates from a probability map, FROC sensitivities, Dice.

Why lesion-wise: a detector is judged by how many lesions it finds for how many false alarms
per scan (the FROC convention of LUNA16 and CAMELYON), not by voxel overlap alone. A candidate
is a connected component (26-connectivity) of the probability map above ``candidate_threshold``;
its score is the component's highest probability and its location that peak voxel. A candidate
whose peak lies in a true lesion (a connected component of the reference mask, grown by one
voxel for partial volume) hits that lesion (a lesion hit twice counts once; the extra candidate
is neither a hit nor a false positive); any other candidate is a false positive. Locating by the
peak, as LUNA16 locates by the candidate's position, keeps one map-wide blob from "finding"
every lesion at no false-positive cost. Sweeping the score threshold over the candidates gives the FROC curve; the
sensitivity at a fixed false-positive rate is the highest sensitivity whose FP per scan does not
exceed it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

CONNECTIVITY_26 = np.ones((3, 3, 3), dtype=bool)
DEFAULT_FP_RATES = (0.25, 0.5, 1.0, 2.0)


@dataclass(frozen=True)
class CaseCandidates:
    """One scan's detection candidates: score and the true lesion each hits (-1 = false positive)."""

    scores: np.ndarray  # (k,) float
    lesion_ids: np.ndarray  # (k,) int, -1 for a false positive
    n_lesions: int

    def to_dict(self) -> dict:
        return {"scores": self.scores.tolist(), "lesion_ids": self.lesion_ids.tolist(), "n_lesions": self.n_lesions}

    @classmethod
    def from_dict(cls, values: dict) -> CaseCandidates:
        return cls(np.asarray(values["scores"], float), np.asarray(values["lesion_ids"], int), int(values["n_lesions"]))


def detection_candidates(
    probability: np.ndarray, reference_mask: np.ndarray, *, candidate_threshold: float = 0.1
) -> CaseCandidates:
    """Candidates of one scan's lesion probability map against its reference lesion mask."""
    if probability.shape != reference_mask.shape:
        raise ValueError(f"probability {probability.shape} and mask {reference_mask.shape} differ in shape")
    lesions, n_lesions = ndimage.label(reference_mask > 0, structure=CONNECTIVITY_26)
    components, n_components = ndimage.label(probability > candidate_threshold, structure=CONNECTIVITY_26)
    if n_components == 0:
        return CaseCandidates(np.zeros(0), np.zeros(0, dtype=int), int(n_lesions))
    index = np.arange(1, n_components + 1)
    scores = np.asarray(ndimage.maximum(probability, components, index), dtype=np.float64)
    peaks = ndimage.maximum_position(probability, components, index)
    grown = ndimage.grey_dilation(lesions, footprint=CONNECTIVITY_26) if n_lesions else lesions
    lesion_ids = np.asarray([int(grown[peak]) - 1 for peak in peaks], dtype=int)
    return CaseCandidates(scores, lesion_ids, int(n_lesions))


def froc_curve(cases: Sequence[CaseCandidates]) -> tuple[np.ndarray, np.ndarray]:
    """(FP per scan, lesion sensitivity) at every distinct candidate score, highest threshold first."""
    if not cases:
        raise ValueError("FROC of no scans")
    total_lesions = sum(case.n_lesions for case in cases)
    if total_lesions == 0:
        raise ValueError("FROC needs at least one scan with a lesion")
    scores, keys = [], []
    for case_index, case in enumerate(cases):
        for score, lesion in zip(case.scores, case.lesion_ids, strict=True):
            scores.append(score)
            keys.append((case_index, int(lesion)))
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    fp_per_scan, sensitivity = [0.0], [0.0]
    found: set[tuple[int, int]] = set()
    false_positives = 0
    sorted_scores = np.asarray(scores)[order] if scores else np.zeros(0)
    for position, candidate in enumerate(order):
        case_index, lesion = keys[candidate]
        if lesion < 0:
            false_positives += 1
        else:
            found.add((case_index, lesion))
        # one point per distinct score: all candidates tied at a threshold enter together
        if position + 1 == len(order) or sorted_scores[position + 1] != sorted_scores[position]:
            fp_per_scan.append(false_positives / len(cases))
            sensitivity.append(len(found) / total_lesions)
    return np.asarray(fp_per_scan), np.asarray(sensitivity)


def sensitivity_at_fp_rates(
    cases: Sequence[CaseCandidates], fp_rates: Sequence[float] = DEFAULT_FP_RATES
) -> dict[str, float]:
    """Lesion sensitivity at each false-positive-per-scan rate, and their mean (``mean``)."""
    fp_per_scan, sensitivity = froc_curve(cases)
    values = {}
    for rate in fp_rates:
        allowed = fp_per_scan <= rate + 1e-12
        values[f"{rate:g}"] = float(sensitivity[allowed].max())
    values["mean"] = float(np.mean([values[f"{rate:g}"] for rate in fp_rates]))
    return values


def dice(prediction: np.ndarray, reference: np.ndarray) -> float:
    """Dice overlap of two binary masks; 1.0 when both are empty."""
    prediction, reference = prediction > 0, reference > 0
    total = int(prediction.sum() + reference.sum())
    return 1.0 if total == 0 else 2.0 * float((prediction & reference).sum()) / total
