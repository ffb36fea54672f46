"""From run records to the study's answer: per-cell intervals, paired differences, verdicts.

Per task, condition and regime (n_real, ratio) the primary metric (classify: test AUC; detect:
mean lesion sensitivity over the FROC points) gets its mean over repeats and a 95 % bootstrap
interval over repeats and test cases (:mod:`medgan.evaluation.bootstrap`). Every condition is
compared, paired by repeat, with real-only and with classical augmentation at the same n_real.

Verdicts, per regime: the headline compares synthetic + classical with classical alone (what
synthetic data adds to a strong pipeline) where both ran, else synthetic with real-only:
"helps" when the whole interval of the difference is above 0, "hurts" when it is below, "no
measurable gain" otherwise. The negative control is checked against real-only: if *it* helps,
the study is broken (the gain cannot be lesion information) and the verdict says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from medgan.evaluation.bootstrap import RunMetric, auc_metric, bootstrap_interval, paired_difference
from medgan.evaluation.downstream.grid import SYNTHETIC_CONDITIONS
from medgan.evaluation.froc import CaseCandidates, sensitivity_at_fp_rates

PRIMARY = {"classify": "auc", "detect": "froc_mean"}
METRIC_NAMES = {"auc": "AUC", "froc_mean": "mean FROC sensitivity"}
REFERENCES = ("real", "classical")


def _froc_metric(runs_candidates: list[list[CaseCandidates]], fp_rates: Sequence[float]) -> RunMetric:
    def metric(runs: np.ndarray, cases: np.ndarray) -> np.ndarray:
        return np.array(
            [sensitivity_at_fp_rates([runs_candidates[r][c] for c in cases], fp_rates)["mean"] for r in runs]
        )

    return metric


def primary_metric(task: str, records: Sequence[dict[str, Any]], test_labels: np.ndarray, fp_rates) -> RunMetric:
    """The bootstrap metric function of ``records`` (one per repeat, in repeat order)."""
    if task == "classify":
        return auc_metric(np.array([r["test_scores"] for r in records]), test_labels)
    return _froc_metric([[CaseCandidates.from_dict(c) for c in r["test_candidates"]] for r in records], fp_rates)


def group_records(records: Sequence[dict[str, Any]]) -> dict[tuple, dict[int, dict[str, Any]]]:
    """Records by (task, condition, n_real, ratio), then by repeat."""
    groups: dict[tuple, dict[int, dict[str, Any]]] = {}
    for record in records:
        key = (record["task"], record["condition"], record["n_real"], record["ratio"])
        groups.setdefault(key, {})[record["repeat"]] = record
    return groups


def _paired(groups, key_a, key_b) -> list[int]:
    return sorted(set(groups.get(key_a, {})) & set(groups.get(key_b, {})))


def _verdict_word(difference: dict[str, float]) -> str:
    if difference["low"] > 0:
        return "helps"
    if difference["high"] < 0:
        return "hurts"
    return "no measurable gain"


def summarise(
    records: Sequence[dict[str, Any]],
    test_labels: np.ndarray,
    *,
    fp_rates: Sequence[float],
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Cells (intervals), comparisons (paired differences) and verdicts of a study's finished runs."""
    test_labels = np.asarray(test_labels)
    groups = group_records(records)
    cells, comparisons, verdicts = [], [], []
    for (task, condition, n_real, ratio), by_repeat in sorted(groups.items(), key=lambda kv: str(kv[0])):
        repeats = sorted(by_repeat)
        chosen = [by_repeat[r] for r in repeats]
        metric = primary_metric(task, chosen, test_labels, fp_rates)
        interval = bootstrap_interval(metric, len(chosen), test_labels, n_boot=n_boot, seed=seed)
        secondary = {
            name: float(np.nanmean([r["metrics"][name] for r in chosen]))
            for name in chosen[0]["metrics"]
            if name != PRIMARY[task]
        }
        cells.append(
            {
                "task": task,
                "condition": condition,
                "n_real": n_real,
                "ratio": ratio,
                "repeats": repeats,
                "n_real_cases": chosen[0]["n_real_cases"],
                "n_synthetic_cases": chosen[0]["n_synthetic_cases"],
                "metric": PRIMARY[task],
                **interval.to_dict(),
                "per_seed": [r["metrics"][PRIMARY[task]] for r in chosen],
                "secondary_means": secondary,
            }
        )
        for reference in REFERENCES:
            if reference == condition or (condition == "real" and reference == "classical"):
                continue
            reference_key = (task, reference, n_real, None)
            paired = _paired(groups, (task, condition, n_real, ratio), reference_key)
            if not paired:
                continue
            difference = paired_difference(
                primary_metric(task, [by_repeat[r] for r in paired], test_labels, fp_rates),
                primary_metric(task, [groups[reference_key][r] for r in paired], test_labels, fp_rates),
                len(paired),
                test_labels,
                n_boot=n_boot,
                seed=seed,
            )
            comparisons.append(
                {
                    "task": task,
                    "condition": condition,
                    "reference": reference,
                    "n_real": n_real,
                    "ratio": ratio,
                    "repeats": paired,
                    "metric": PRIMARY[task],
                    **difference.to_dict(),
                    "verdict": _verdict_word(difference.to_dict()),
                }
            )
    verdicts = regime_verdicts(comparisons)
    return {"cells": cells, "comparisons": comparisons, "verdicts": verdicts}


def _find(comparisons, task, condition, reference, n_real, ratio) -> dict[str, Any] | None:
    for c in comparisons:
        if (c["task"], c["condition"], c["reference"], c["n_real"], c["ratio"]) == (
            task,
            condition,
            reference,
            n_real,
            ratio,
        ):
            return c
    return None


def _describe(c: dict[str, Any]) -> str:
    return (
        f"{c['estimate']:+.3f} {METRIC_NAMES[c['metric']]} [{c['low']:+.3f}, {c['high']:+.3f}], p = {c['p_value']:.3g}"
    )


def regime_verdicts(comparisons: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One verdict per (task, n_real, ratio) regime with synthetic runs (see the module docstring)."""
    regimes = sorted(
        {(c["task"], c["n_real"], c["ratio"]) for c in comparisons if c["condition"] in SYNTHETIC_CONDITIONS},
        key=str,
    )
    verdicts = []
    for task, n_real, ratio in regimes:
        regime = f"{n_real} real cases, synthetic:real {ratio:g}"
        headline = _find(comparisons, task, "synthetic_classical", "classical", n_real, ratio)
        against = "classical augmentation"
        if headline is None:
            headline, against = _find(comparisons, task, "synthetic", "real", n_real, ratio), "real data only"
        control = _find(comparisons, task, "negative_control", "real", n_real, ratio)
        control_broken = control is not None and control["low"] > 0
        if headline is None:
            text, word = f"at {regime}: no synthetic run to compare", "incomplete"
        else:
            word = headline["verdict"]
            lead = {"helps": "synthetic data helps", "hurts": "synthetic data hurts"}.get(word, "no measurable gain")
            text = f"{lead}: {_describe(headline)} over {against} at {regime}"
        if control_broken:
            text += (
                f"; WARNING: the negative control (no lesion information) also gains {_describe(control)}: "
                "the study is broken, gains here are not evidence that the lesions help"
            )
        verdicts.append(
            {
                "task": task,
                "n_real": n_real,
                "ratio": ratio,
                "verdict": "study broken" if control_broken else word,
                "text": text,
                "negative_control_gain": control_broken,
            }
        )
    return verdicts


def regime_curves(
    records: Sequence[dict[str, Any]], test_labels: np.ndarray, n_real: Any, ratio: float
) -> dict[str, dict[str, list[float]]]:
    """Per condition at one regime: the ROC (classify) or FROC (detect) curve of the repeats' runs.

    ROC: of the test scores averaged over repeats. FROC: of all repeats' candidates pooled (each
    repeat's scans counted as scans of their own).
    """
    from medgan.evaluation.froc import froc_curve
    from medgan.evaluation.roc import roc_curve

    curves: dict[str, dict[str, list[float]]] = {}
    groups = group_records(records)
    for (task, condition, group_n, group_ratio), by_repeat in sorted(groups.items(), key=lambda kv: str(kv[0])):
        if group_n != n_real or group_ratio not in (None, ratio):
            continue
        chosen = [by_repeat[r] for r in sorted(by_repeat)]
        if task == "classify":
            x, y = roc_curve(np.mean([r["test_scores"] for r in chosen], axis=0), test_labels)
        else:
            pooled = [CaseCandidates.from_dict(c) for r in chosen for c in r["test_candidates"]]
            x, y = froc_curve(pooled)
        curves[f"{task}/{condition}"] = {"x": x.tolist(), "y": y.tolist()}
    return curves
