"""Periodic validation and sample montages, for any method.

The method says what to compute (:meth:`~medgan.methods.base.GanMethod.infer_outputs`
on its validation items), how to score it (metric names from
:mod:`medgan.evaluation.metric_registry`) and what to show
(:meth:`~medgan.methods.base.GanMethod.sample_volumes`); this module only runs
those on rank 0 and writes the results.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import nn

from medgan.config.schema import ExperimentConfig
from medgan.evaluation.metric_registry import compute_metrics
from medgan.methods.base import GanMethod, InferenceContext, SampleVolume
from medgan.viz import save_montage


def validate(
    method: GanMethod,
    networks: Mapping[str, nn.Module],
    items: Sequence[Mapping[str, torch.Tensor]],
    config: ExperimentConfig,
    context: InferenceContext,
) -> tuple[dict[str, float], dict[str, torch.Tensor]]:
    """``{"val/<key>": value}`` over ``items`` and the first item's outputs (for the montage)."""
    for module in networks.values():
        module.eval()
    outputs = [method.infer_outputs(networks, item, context) for item in items]
    metrics = compute_metrics(method.validation_metrics(), outputs, config)
    return {f"val/{key}": value for key, value in metrics.items()}, (outputs[0] if outputs else {})


def batch_outputs(
    method: GanMethod, networks: Mapping[str, nn.Module], batch: Mapping[str, torch.Tensor], context: InferenceContext
) -> dict[str, torch.Tensor]:
    """The method's outputs for the first sample of a training batch (when there is no validation set)."""
    for module in networks.values():
        module.eval()
    first = {key: value[:1] for key, value in batch.items()}
    return method.infer_outputs(networks, first, context)


def write_samples(rows: Mapping[str, SampleVolume], path: Path, title: str) -> Path:
    """A montage PNG with one row per sample volume, each in its own display window."""
    volumes = {name: row.volume.float().cpu() for name, row in rows.items()}
    windows = {name: row.window for name, row in rows.items()}
    return save_montage(volumes, path, windows=windows, title=title)
