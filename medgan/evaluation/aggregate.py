"""Summaries of per-subject metrics: mean, standard deviation and a bootstrap CI of the mean.

A handful of test subjects gives a noisy mean; reporting a confidence interval
next to it keeps comparisons between methods honest. The interval is the
percentile bootstrap of the mean, from a seeded generator so reports reproduce.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from numbers import Real

import numpy as np

from medgan.errors import InputError


def _is_number(value: object) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def _sample_std(values: np.ndarray) -> float:
    """Sample standard deviation; NaN for a single value or when a value is infinite."""
    if values.size < 2 or not np.isfinite(values).all():
        return float("nan")
    return float(values.std(ddof=1))


def aggregate_metrics(
    per_subject: Sequence[Mapping[str, object]],
    *,
    n_bootstrap: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Summarise a list of per-subject metric dicts, metric by metric.

    Returns ``{metric: {"mean", "std", "ci_low", "ci_high", "n"}}`` for every key
    holding a number in any dict (non-numeric entries such as a subject id are
    skipped). NaN values (e.g. a tissue a subject does not have) are left out and
    ``n`` counts the values used; with no value left every statistic is NaN. ``std``
    is the sample standard deviation (NaN for one value or an infinite one). The CI is the percentile
    bootstrap of the mean over ``n_bootstrap`` resamples drawn with
    ``numpy.random.default_rng(seed)``; order statistics are taken without
    interpolation so an infinite value (PSNR of identical volumes) stays infinite.
    Each metric's resampling starts from the same seed, so adding a metric leaves
    the other intervals unchanged.
    """
    if not per_subject:
        raise InputError("aggregate_metrics needs at least one metrics dict", fix="evaluate some subjects first")
    if not 0 < confidence < 1:
        raise InputError(f"confidence must be in (0, 1), got {confidence}")
    if n_bootstrap < 1:
        raise InputError(f"n_bootstrap must be at least 1, got {n_bootstrap}")
    names: list[str] = []
    for metrics in per_subject:
        names.extend(k for k, v in metrics.items() if _is_number(v) and k not in names)

    tail = (1 - confidence) / 2
    summary: dict[str, dict[str, float]] = {}
    for name in names:
        values = np.array(
            [float(m[name]) for m in per_subject if name in m and _is_number(m[name]) and not math.isnan(m[name])]
        )
        n = int(values.size)
        if n == 0:
            nan = float("nan")
            summary[name] = {"mean": nan, "std": nan, "ci_low": nan, "ci_high": nan, "n": 0}
            continue
        # a fresh generator per metric: adding a metric does not move the others' intervals
        rng = np.random.default_rng(seed)
        resampled_means = values[rng.integers(0, n, size=(n_bootstrap, n))].mean(axis=1)
        ci_low, ci_high = np.quantile(resampled_means, [tail, 1 - tail], method="inverted_cdf")
        summary[name] = {
            "mean": float(values.mean()),
            "std": _sample_std(values),
            "ci_low": float(ci_low),
            "ci_high": float(ci_high),
            "n": n,
        }
    return summary
