"""Calling a method's phases the way the engine does: by name, with a PhaseContext and the state slot."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from medgan.methods.base import Batch, GanMethod, Phase, PhaseContext, PhaseLoss, Stats


def phase_named(method: GanMethod, name: str) -> Phase:
    """The method's phase called ``name`` (KeyError when it has none)."""
    phases = {phase.name: phase for phase in method.phases()}
    return phases[name]


def run_phase(
    method: GanMethod,
    name: str,
    networks: Mapping[str, nn.Module],
    batch: Batch,
    *,
    state: Mapping[str, Any] | None = None,
    step: int = 0,
) -> PhaseLoss:
    """``phase.loss(PhaseContext(step, phase, gain=interval, state), networks, batch)``; checks the stats' form."""
    phase = phase_named(method, name)
    context = PhaseContext(step, phase, float(phase.interval), {} if state is None else state)
    loss, stats = phase.loss(context, networks, batch)
    assert_detached_scalars(stats)
    return loss, stats


def assert_detached_scalars(stats: Stats) -> None:
    """Every statistic is a detached 0-d tensor (the engine reduces them only at log time)."""
    for key, value in stats.items():
        assert isinstance(value, torch.Tensor), f"{key} is a {type(value).__name__}, not a tensor"
        assert value.ndim == 0, f"{key} has shape {tuple(value.shape)}, not a 0-d tensor"
        assert not value.requires_grad, f"{key} is not detached"
