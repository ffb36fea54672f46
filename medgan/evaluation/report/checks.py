"""One report check's result, and the one rule that turns a value into a verdict.

Why one shape for every check: the HTML page, ``report.json`` and the demo's headline all read
the same fields, and a user can change any threshold (``--set thresholds.<check>.warn=...``)
without knowing how the value was computed. A check that could not run (too few cases, no
training set given) says so with verdict ``skipped`` and the reason, instead of vanishing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

Verdict = Literal["pass", "warn", "fail", "skipped", "info"]
VERDICT_ORDER = {"fail": 0, "warn": 1, "pass": 2, "info": 3, "skipped": 4}


@dataclass(frozen=True)
class Threshold:
    """``warn`` and ``fail`` limits; ``higher_is_worse`` False for checks where low values are bad."""

    warn: float
    fail: float
    higher_is_worse: bool = True

    def verdict(self, value: float) -> Verdict:
        """pass / warn / fail for ``value``; a non-finite value fails (a check that produced NaN is broken)."""
        if not math.isfinite(value):
            return "fail"
        sign = 1.0 if self.higher_is_worse else -1.0
        if sign * value > sign * self.fail:
            return "fail"
        if sign * value > sign * self.warn:
            return "warn"
        return "pass"

    def describe(self) -> str:
        word = ">" if self.higher_is_worse else "<"
        return f"warn {word} {self.warn:g}, fail {word} {self.fail:g}"


@dataclass
class Check:
    """A check's result: what it measures, its value, the threshold, the verdict and what that means."""

    check_id: str
    title: str
    value: float | None
    verdict: Verdict
    meaning: str
    threshold: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    figures: list[str] = field(default_factory=list)  # file names under OUT/figures/

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.check_id,
            "title": self.title,
            "value": self.value,
            "verdict": self.verdict,
            "threshold": self.threshold,
            "meaning": self.meaning,
            "details": self.details,
            "figures": self.figures,
        }


def graded(
    check_id: str,
    title: str,
    value: float,
    threshold: Threshold,
    meaning: str,
    **details: Any,
) -> Check:
    """A check judged by ``threshold``."""
    return Check(check_id, title, float(value), threshold.verdict(value), meaning, threshold.describe(), details)


def skipped(check_id: str, title: str, reason: str) -> Check:
    """A check that could not run, and why."""
    return Check(check_id, title, None, "skipped", reason)


def overall_verdict(checks: list[Check], prefix: str = "") -> Verdict:
    """The worst verdict among the graded checks whose id starts with ``prefix`` (pass when all passed)."""
    graded_ones = [c.verdict for c in checks if c.check_id.startswith(prefix) and c.verdict in ("pass", "warn", "fail")]
    if not graded_ones:
        return "skipped"
    return min(graded_ones, key=VERDICT_ORDER.__getitem__)
