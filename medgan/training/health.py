"""Training health: is the adversarial game balanced? Verdicts per log interval, health.json, a summary.

A GAN learns only while its discriminator is uncertain: at the equilibrium of
Goodfellow et al. (2014) D outputs 1/2 everywhere. Two failures are common and
silent in the loss curves (Arjovsky & Bottou 2017 on a discriminator that wins;
mode collapse in Salimans et al. 2016):

* **discriminator dominates**: D tells real from generated almost perfectly
  (accuracy above ``train.health.d_accuracy_max``) or its loss is near 0 (below
  ``d_loss_ratio_min`` of its chance level): G's adversarial gradient then
  carries little information;
* **generator collapsing**: generated outputs vary across a batch far less than
  real ones (``diversity_fake < diversity_ratio_min * diversity_real``).

A condition must hold for ``patience`` log intervals in a row before its verdict
is given; otherwise the verdict is *healthy*. A method without a discriminator
gets *not adversarial*. The statistics come from the method's phases under the
``health/`` keys (:func:`medgan.losses.discriminator_health`,
:func:`medgan.losses.batch_diversity`); the engine knows no task.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from medgan.config.schema import HealthConfig
from medgan.io.atomic import atomic_write_text

HEALTHY = "healthy"
DOMINATES = "discriminator dominates"
COLLAPSING = "generator collapsing"
NOT_ADVERSARIAL = "not adversarial"
VERDICTS = (HEALTHY, DOMINATES, COLLAPSING, NOT_ADVERSARIAL)
SHORT_WORD = {HEALTHY: "healthy", DOMINATES: "D-dominates", COLLAPSING: "collapsing", NOT_ADVERSARIAL: "no-D"}
VERDICT_CODE = {HEALTHY: 0, DOMINATES: 1, COLLAPSING: 2, NOT_ADVERSARIAL: -1}

ADVICE = {
    HEALTHY: "D is neither winning outright nor collapsing the generator: nothing to change.",
    DOMINATES: (
        "D tells real from generated almost perfectly, so G's adversarial gradient carries little information and "
        "G learns mostly from its other losses. Try a lower D learning rate (train.lr.D) or a higher G one, a "
        "smaller discriminator (fewer layers or channels), the hinge loss, augmenting what D sees, or a lower "
        "reconstruction weight so the adversarial term matters; a paired method whose validation metrics still "
        "improve may be acceptable as it is."
    ),
    COLLAPSING: (
        "Generated outputs vary across a batch far less than real ones: G produces nearly the same output for "
        "different inputs. Try a lower G learning rate, a larger batch, more augmentation of what D sees, or "
        "check that G's input carries the information it should."
    ),
    NOT_ADVERSARIAL: "The method has no discriminator (an L1-only or fitted baseline): there is no game to balance.",
}


def judge_interval(scalars: Mapping[str, float], thresholds: HealthConfig) -> tuple[bool, bool, bool]:
    """(adversarial, D dominating now, G collapsing now) for one interval's reduced statistics."""
    if "health/d_accuracy" not in scalars:
        return False, False, False
    dominating = scalars["health/d_accuracy"] > thresholds.d_accuracy_max or (
        scalars.get("health/d_loss_ratio", 1.0) < thresholds.d_loss_ratio_min
    )
    fake, real = scalars.get("health/diversity_fake"), scalars.get("health/diversity_real")
    collapsing = fake is not None and real is not None and real > 0 and fake < thresholds.diversity_ratio_min * real
    return True, dominating, collapsing


class HealthMonitor:
    """Turns each log interval's statistics into a verdict and keeps ``health.json`` up to date (rank 0)."""

    def __init__(self, path: Path, thresholds: HealthConfig, *, log_every: int, enabled: bool = True) -> None:
        self.path, self.thresholds, self.log_every, self.enabled = path, thresholds, log_every, enabled
        self.dominating_streak = 0
        self.collapsing_streak = 0
        self.runs: list[dict[str, Any]] = []  # run-length history: {first_step, last_step, verdict, intervals}
        self.last_scalars: dict[str, float] = {}

    def resume(self, step: int) -> None:
        """Keep the history written up to ``step`` (a resumed run rewrites what came after)."""
        if not self.path.is_file():
            return
        try:
            runs = json.loads(self.path.read_text(encoding="utf-8")).get("history", [])
        except (json.JSONDecodeError, OSError):
            return
        kept = []
        for run in runs:
            if run["first_step"] > step:
                break
            if run["last_step"] > step:
                run = {**run, "last_step": step}
                run["intervals"] = max(1, (step - run["first_step"]) // self.log_every + 1)
            kept.append(run)
        self.runs = kept

    def update(self, step: int, scalars: Mapping[str, float]) -> str:
        """The verdict for the interval ending at ``step``; writes ``health.json``."""
        adversarial, dominating, collapsing = judge_interval(scalars, self.thresholds)
        self.dominating_streak = self.dominating_streak + 1 if dominating else 0
        self.collapsing_streak = self.collapsing_streak + 1 if collapsing else 0
        patience = self.thresholds.patience
        if not adversarial:
            verdict = NOT_ADVERSARIAL
        elif self.collapsing_streak >= patience:
            verdict = COLLAPSING
        elif self.dominating_streak >= patience:
            verdict = DOMINATES
        else:
            verdict = HEALTHY
        if self.runs and self.runs[-1]["verdict"] == verdict:
            self.runs[-1]["last_step"] = step
            self.runs[-1]["intervals"] += 1
        else:
            self.runs.append({"first_step": step, "last_step": step, "verdict": verdict, "intervals": 1})
        self.last_scalars = {key: value for key, value in scalars.items() if key.startswith("health/")}
        if self.enabled:
            atomic_write_text(self.path, json.dumps(self.report(step), indent=1) + "\n")
        return verdict

    def report(self, step: int) -> dict[str, Any]:
        """What ``health.json`` holds."""
        verdict = self.runs[-1]["verdict"] if self.runs else HEALTHY
        intervals = {name: 0 for name in VERDICTS}
        for run in self.runs:
            intervals[run["verdict"]] += run["intervals"]
        return {
            "step": step,
            "verdict": verdict,
            "advice": ADVICE[verdict],
            "intervals": intervals,
            "last": self.last_scalars,
            "thresholds": self.thresholds.model_dump(),
            "history": self.runs,
        }

    def state_dict(self) -> dict[str, int]:
        """The streak counters (checkpointed so a resumed run gives the same verdicts)."""
        return {"dominating_streak": self.dominating_streak, "collapsing_streak": self.collapsing_streak}

    def load_state_dict(self, state: Mapping[str, int]) -> None:
        """Restore :meth:`state_dict`."""
        self.dominating_streak = int(state.get("dominating_streak", 0))
        self.collapsing_streak = int(state.get("collapsing_streak", 0))


def health_summary(path: Path) -> str:
    """One paragraph on a run's health from its ``health.json``: the final verdict, how often, what to try."""
    if not path.is_file():
        return "training health: no health.json (the run logged no interval)."
    report = json.loads(path.read_text(encoding="utf-8"))
    intervals = report["intervals"]
    total = max(sum(intervals.values()), 1)
    shares = ", ".join(f"{name} {count / total:.0%}" for name, count in intervals.items() if count)
    last = report.get("last", {})
    numbers = []
    if "health/d_accuracy" in last:
        numbers.append(f"D accuracy {last['health/d_accuracy']:.2f}")
    if "health/d_loss_ratio" in last:
        numbers.append(f"D loss {last['health/d_loss_ratio']:.2f} x chance")
    if "health/diversity_fake" in last and "health/diversity_real" in last:
        fake, real = last["health/diversity_fake"], last["health/diversity_real"]
        numbers.append(f"diversity {fake:.3f} generated vs {real:.3f} real")
    if "health/ada_p" in last:
        numbers.append(f"ADA augmentation p {last['health/ada_p']:.2f}")
    measured = f" ({'; '.join(numbers)} in the last interval)" if numbers else ""
    return (
        f"training health at step {report['step']}: {report['verdict']}{measured}. Over the run: {shares} of the "
        f"log intervals. {report['advice']} Details: {path}."
    )
