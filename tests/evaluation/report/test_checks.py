import math

from medgan.evaluation.report.checks import Check, Threshold, graded, overall_verdict, skipped


def test_threshold_grades_by_warn_and_fail_limits() -> None:
    limits = Threshold(warn=0.5, fail=2.0)
    assert [limits.verdict(v) for v in (0.0, 0.5, 0.51, 2.0, 2.01)] == ["pass", "pass", "warn", "warn", "fail"]
    assert limits.verdict(math.nan) == "fail"  # a check that produced NaN is broken, not passed
    low_is_bad = Threshold(warn=0.8, fail=0.6, higher_is_worse=False)
    assert [low_is_bad.verdict(v) for v in (0.9, 0.7, 0.5)] == ["pass", "warn", "fail"]


def test_overall_verdict_is_the_worst_graded_one_and_ignores_skipped() -> None:
    checks: list[Check] = [
        graded("realism.a", "a", 0.1, Threshold(0.5, 1.0), "m"),
        graded("artifacts.b", "b", 0.7, Threshold(0.5, 1.0), "m"),
        skipped("memorisation.c", "c", "no training set"),
    ]
    assert overall_verdict(checks) == "warn"
    assert overall_verdict(checks, "realism.") == "pass"
    assert overall_verdict(checks, "memorisation.") == "skipped"
    assert checks[2].to_dict()["value"] is None and checks[2].to_dict()["meaning"] == "no training set"
