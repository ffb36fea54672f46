"""Optimizers and learning rates of the engine: one AdamW per optimizer name the phases declare.

Phases that name the same optimizer share it (``Phase.optimizer``). When a
phase that runs every step shares its optimizer with a lazy regularisation phase
that runs every ``k`` steps, the optimizer's lr and betas are corrected as in
StyleGAN2 / StyleGAN2-ADA (Karras et al. 2020): with ``c = k / (k + 1)``,
``lr * c`` and ``beta ** c``, because the shared Adam then sees ``k + 1`` updates
where an unregularised one sees ``k``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from medgan.config.schema import TrainConfig
from medgan.errors import ConfigError, TrainingError
from medgan.methods.base import Phase


@dataclass(frozen=True)
class OptimizerPlan:
    """One optimizer: the phases stepping it, its parameters, and its (corrected) lr and betas."""

    name: str
    phases: tuple[str, ...]
    parameters: tuple[nn.Parameter, ...]
    lr: float
    betas: tuple[float, float]


def phase_parameters(phase: Phase, networks: Mapping[str, nn.Module]) -> list[nn.Parameter]:
    """The parameters of the networks ``phase`` trains, each once."""
    unknown = [name for name in phase.trains if name not in networks]
    if unknown:
        raise TrainingError(f"phase {phase.name!r} trains unknown networks {unknown} (networks: {sorted(networks)})")
    seen: set[int] = set()
    parameters = []
    for name in phase.trains:
        for parameter in networks[name].parameters():
            if id(parameter) not in seen:
                seen.add(id(parameter))
                parameters.append(parameter)
    return parameters


def lazy_regularisation_ratio(phases: Sequence[Phase]) -> float:
    """``c = k / (k + 1)`` for a main phase sharing with a regulariser every ``k`` steps, else 1."""
    main = [phase for phase in phases if phase.interval == 1]
    lazy = {phase.interval for phase in phases if phase.interval > 1}
    if not main or not lazy:
        return 1.0
    if len(lazy) > 1:
        names = [phase.name for phase in phases]
        raise TrainingError(f"phases {names} share an optimizer with different regularisation intervals {lazy}")
    interval = lazy.pop()
    return interval / (interval + 1)


def plan_optimizers(
    phases: Sequence[Phase], networks: Mapping[str, nn.Module], train: TrainConfig
) -> list[OptimizerPlan]:
    """One plan per optimizer name, in first-use order, with the lazy-regularisation correction applied."""
    by_optimizer: dict[str, list[Phase]] = {}
    for phase in phases:
        by_optimizer.setdefault(phase.optimizer_key, []).append(phase)
    learning_rates = train.lr or {}
    plans = []
    for name, sharing in by_optimizer.items():
        if name not in learning_rates:
            raise ConfigError(
                f"train.lr has no learning rate for optimizer {name!r} (it has {sorted(learning_rates)})",
                fix=f"set train.lr.{name}=0.0002",
            )
        seen: set[int] = set()
        parameters = []
        for phase in sharing:
            for parameter in phase_parameters(phase, networks):
                if id(parameter) not in seen:
                    seen.add(id(parameter))
                    parameters.append(parameter)
        ratio = lazy_regularisation_ratio(sharing)
        betas = (train.betas[0] ** ratio, train.betas[1] ** ratio)
        plans.append(
            OptimizerPlan(name, tuple(p.name for p in sharing), tuple(parameters), learning_rates[name] * ratio, betas)
        )
    return plans


def build_optimizers(plans: Sequence[OptimizerPlan], weight_decay: float) -> dict[str, torch.optim.Optimizer]:
    """An AdamW per plan."""
    return {
        plan.name: torch.optim.AdamW(list(plan.parameters), lr=plan.lr, betas=plan.betas, weight_decay=weight_decay)
        for plan in plans
    }


def lr_multiplier(train: TrainConfig, step: int) -> float:
    """Schedule factor at ``step``: 1, or linear decay to 0 after ``lr_decay_start * steps``."""
    if train.lr_schedule == "constant":
        return 1.0
    decay_start = int(train.lr_decay_start * train.steps)
    if step < decay_start:
        return 1.0
    return max(0.0, 1.0 - (step - decay_start) / max(train.steps - decay_start, 1))


def set_learning_rates(
    optimizers: Mapping[str, torch.optim.Optimizer], base_lr: Mapping[str, float], factor: float
) -> dict[str, float]:
    """Set every optimizer's lr to ``base_lr * factor``; returns ``{"lr/<name>": lr}`` to log."""
    for name, optimizer in optimizers.items():
        for group in optimizer.param_groups:
            group["lr"] = base_lr[name] * factor
    return {f"lr/{name}": base_lr[name] * factor for name in optimizers}
