"""Bootstrap confidence intervals over test cases and seeds, and paired differences between conditions.

Why both levels: a study's uncertainty has two sources, which test cases happened to be held
out and which seed (real cases drawn, network initialisation) a run had. Each bootstrap
replicate resamples the runs (seeds) with replacement and the test cases with replacement,
within each class so that every replicate still holds positives and negatives, and takes the
mean over the resampled runs of the metric on the resampled cases. The 95 % interval is the
2.5th-97.5th percentile of the replicates.

A *paired* difference applies the same resampled runs and cases to two conditions: their runs
are matched by repeat (the same real training cases) and evaluated on the same test cases, so
what the two share cancels. Its two-sided p-value is the bootstrap's: twice the smaller share of
replicates on either side of 0 (plus one in numerator and denominator, so it is never 0).

A metric is given as a function ``metric(runs, cases) -> values``: for run indices ``runs``
(k,) and test-case indices ``cases`` (m,) it returns the metric of each of those runs on those
cases (k,). :func:`auc_metric` builds it for score matrices.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata

RunMetric = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Interval:
    """A point estimate (mean over runs on all test cases) and its 95 % bootstrap interval."""

    estimate: float
    low: float
    high: float

    def to_dict(self) -> dict[str, float]:
        return {"estimate": self.estimate, "low": self.low, "high": self.high}


@dataclass(frozen=True)
class Difference(Interval):
    """A paired difference (condition minus reference), its interval and two-sided p-value."""

    p_value: float

    def to_dict(self) -> dict[str, float]:
        return {**super().to_dict(), "p_value": self.p_value}


def auc_metric(scores: np.ndarray, labels: np.ndarray) -> RunMetric:
    """AUC of each run's scores: ``scores`` is (runs, cases), ``labels`` (cases,) of 0/1."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels).astype(bool)
    if scores.ndim != 2 or scores.shape[1] != labels.size:
        raise ValueError(f"scores must be (runs, {labels.size}); got {scores.shape}")

    def metric(runs: np.ndarray, cases: np.ndarray) -> np.ndarray:
        chosen_labels = labels[cases]
        positives, negatives = int(chosen_labels.sum()), int((~chosen_labels).sum())
        ranks = rankdata(scores[np.ix_(runs, cases)], axis=1)
        rank_sum = ranks[:, chosen_labels].sum(axis=1)
        return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)

    return metric


def _stratified_cases(strata: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Case indices resampled with replacement within each stratum (class)."""
    parts = []
    for value in np.unique(strata):
        members = np.flatnonzero(strata == value)
        parts.append(rng.choice(members, size=members.size, replace=True))
    return np.concatenate(parts)


def _replicates(metrics: list[RunMetric], n_runs: int, strata: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, len(metrics)) bootstrap means, the same resample applied to every metric."""
    rng = np.random.default_rng(seed)
    values = np.empty((n_boot, len(metrics)))
    for replicate in range(n_boot):
        runs = rng.integers(n_runs, size=n_runs)
        cases = _stratified_cases(strata, rng)
        for column, metric in enumerate(metrics):
            values[replicate, column] = float(np.mean(metric(runs, cases)))
    return values


def _check(n_runs: int, strata: np.ndarray, n_boot: int) -> np.ndarray:
    strata = np.asarray(strata).ravel()
    if n_runs < 1:
        raise ValueError("a bootstrap needs at least one run")
    if strata.size == 0:
        raise ValueError("a bootstrap needs at least one test case")
    if n_boot < 10:
        raise ValueError(f"n_boot must be >= 10, got {n_boot}")
    return strata


def bootstrap_interval(
    metric: RunMetric, n_runs: int, strata: np.ndarray, *, n_boot: int = 1000, seed: int = 0
) -> Interval:
    """Mean of ``metric`` over all runs and cases, with its 95 % interval over runs and cases.

    ``strata`` (cases,) holds each test case's class; cases are resampled within it.
    """
    strata = _check(n_runs, strata, n_boot)
    all_runs, all_cases = np.arange(n_runs), np.arange(strata.size)
    estimate = float(np.mean(metric(all_runs, all_cases)))
    replicates = _replicates([metric], n_runs, strata, n_boot, seed)[:, 0]
    low, high = np.percentile(replicates, [2.5, 97.5])
    return Interval(estimate, float(low), float(high))


def paired_difference(
    metric: RunMetric,
    reference: RunMetric,
    n_runs: int,
    strata: np.ndarray,
    *,
    n_boot: int = 1000,
    seed: int = 0,
) -> Difference:
    """``metric`` minus ``reference`` with runs matched by index (repeat) and cases shared.

    Both functions must index the same repeats (run i of each used the same real cases)
    and the same test cases.
    """
    strata = _check(n_runs, strata, n_boot)
    all_runs, all_cases = np.arange(n_runs), np.arange(strata.size)
    estimate = float(np.mean(metric(all_runs, all_cases)) - np.mean(reference(all_runs, all_cases)))
    replicates = _replicates([metric, reference], n_runs, strata, n_boot, seed)
    differences = replicates[:, 0] - replicates[:, 1]
    low, high = np.percentile(differences, [2.5, 97.5])
    below = (np.sum(differences <= 0) + 1) / (n_boot + 1)
    above = (np.sum(differences >= 0) + 1) / (n_boot + 1)
    return Difference(estimate, float(low), float(high), float(min(1.0, 2 * min(below, above))))
