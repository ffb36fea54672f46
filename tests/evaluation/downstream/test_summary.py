"""Cells, paired comparisons and verdicts from hand-made run records, including a broken study."""

from __future__ import annotations

import zlib

import numpy as np

from medgan.evaluation.downstream.summary import summarise

LABELS = np.array([0] * 15 + [1] * 15)


def _record(condition: str, repeat: int, strength: float, ratio: float | None) -> dict:
    rng = np.random.default_rng(zlib.crc32(f"{condition}{repeat}".encode()))
    scores = strength * LABELS + rng.random(LABELS.size)
    return {
        "task": "classify",
        "condition": condition,
        "n_real": 16,
        "ratio": ratio,
        "repeat": repeat,
        "n_real_cases": 16,
        "n_synthetic_cases": 0 if ratio is None else 16,
        "metrics": {"auc": 0.0, "sensitivity": 0.5},
        "test_scores": scores.tolist(),
    }


def _study(strengths: dict[str, float]) -> dict:
    records = []
    for condition, strength in strengths.items():
        ratio = None if condition in ("real", "classical") else 1.0
        records += [_record(condition, repeat, strength, ratio) for repeat in range(4)]
    return summarise(records, LABELS, fp_rates=(0.5, 1.0), n_boot=300)


def test_a_clear_gain_over_classical_is_called_helps() -> None:
    summary = _study(
        {"real": 0.0, "classical": 0.0, "synthetic": 1.5, "synthetic_classical": 1.5, "negative_control": 0.0}
    )
    (verdict,) = summary["verdicts"]
    assert verdict["verdict"] == "helps"
    assert verdict["text"].startswith("synthetic data helps: +")
    assert "over classical augmentation at 16 real cases" in verdict["text"]
    cell = next(c for c in summary["cells"] if c["condition"] == "synthetic_classical")
    assert cell["low"] <= cell["estimate"] <= cell["high"]


def test_no_difference_is_no_measurable_gain() -> None:
    summary = _study(
        {"real": 0.5, "classical": 0.5, "synthetic": 0.5, "synthetic_classical": 0.5, "negative_control": 0.5}
    )
    assert summary["verdicts"][0]["verdict"] == "no measurable gain"


def test_a_negative_control_that_helps_flags_the_study_as_broken() -> None:
    summary = _study(
        {"real": 0.0, "classical": 0.0, "synthetic": 1.5, "synthetic_classical": 1.5, "negative_control": 1.5}
    )
    verdict = summary["verdicts"][0]
    assert verdict["verdict"] == "study broken" and verdict["negative_control_gain"]
    assert "the study is broken" in verdict["text"]
    control = next(
        c for c in summary["comparisons"] if c["condition"] == "negative_control" and c["reference"] == "real"
    )
    assert control["low"] > 0
