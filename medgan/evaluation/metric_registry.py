"""The metric registry: validation metrics found by name, so methods declare them and the engine stays generic.

A metric is a function ``(outputs, config) -> float`` over one item's named
volumes (what a method's ``infer_outputs`` returns) that says which volumes it
needs. ``@register_metric("ssim", needs=("prediction", "target"))`` registers it;
a method lists ``{result key: metric name}`` in ``validation_metrics()``; the
engine computes each per validation item, averages over items and logs
``val/<result key>`` in ``metrics.jsonl``. A metric returns NaN where it does
not apply (it is then left out of the average).
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from medgan.errors import ConfigError

if TYPE_CHECKING:
    from medgan.config.schema import ExperimentConfig

MetricFunction = Callable[[Mapping[str, torch.Tensor], "ExperimentConfig"], float]


@dataclass(frozen=True)
class RegisteredMetric:
    """A metric function and the output volumes it reads."""

    name: str
    function: MetricFunction
    needs: tuple[str, ...]


_METRICS: dict[str, RegisteredMetric] = {}
_BUILTIN_MODULES = ("medgan.evaluation.validation_metrics",)


def register_metric(name: str, *, needs: Sequence[str]) -> Callable[[MetricFunction], MetricFunction]:
    """Decorator registering ``function`` as metric ``name``, reading the output volumes ``needs``."""

    def decorate(function: MetricFunction) -> MetricFunction:
        existing = _METRICS.get(name)
        if existing is not None and existing.function.__qualname__ != function.__qualname__:
            raise ValueError(f"metric name {name!r} is already registered by {existing.function.__qualname__}")
        _METRICS[name] = RegisteredMetric(name, function, tuple(needs))
        return function

    return decorate


def get_metric(name: str) -> RegisteredMetric:
    """The metric registered as ``name`` (ConfigError listing the known ones otherwise)."""
    for module in _BUILTIN_MODULES:
        importlib.import_module(module)
    if name not in _METRICS:
        raise ConfigError(f"unknown metric {name!r}; known: {', '.join(sorted(_METRICS))}")
    return _METRICS[name]


def compute_metrics(
    declared: Mapping[str, str], per_item_outputs: Sequence[Mapping[str, torch.Tensor]], config: ExperimentConfig
) -> dict[str, float]:
    """``{result key: mean over items}`` of every declared metric (NaN results are skipped)."""
    results: dict[str, float] = {}
    for key, metric_name in declared.items():
        metric = get_metric(metric_name)
        values = []
        for outputs in per_item_outputs:
            missing = [need for need in metric.needs if need not in outputs]
            if missing:
                raise KeyError(f"metric {metric_name!r} needs outputs {missing}; the method gave {sorted(outputs)}")
            value = float(metric.function(outputs, config))
            if not math.isnan(value):
                values.append(value)
        results[key] = sum(values) / len(values) if values else math.nan
    return results
