"""The small supervised training loop shared by the study's classifier and segmenter.

Why one loop: both train a registered network for a fixed number of Adam steps over seeded
mini-batches (reshuffled every epoch), with an optional per-batch transform (flips, classical
augmentation). A fixed step count, not a fixed epoch count, gives every condition of a study
the same compute however many cases it trains on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import torch
from torch import nn

BatchTransform = Callable[[torch.Tensor, torch.Tensor, torch.Generator], tuple[torch.Tensor, torch.Tensor]]


class FitSettings(Protocol):
    """What the loop reads from a trainer's settings (``ClassifierSettings``, ``SegmenterSettings``)."""

    steps: int
    batch_size: int
    lr: float
    weight_decay: float
    seed: int


def fit(
    network: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    settings: FitSettings,
    *,
    transform: BatchTransform | None = None,
    device: torch.device | str = "cpu",
) -> nn.Module:
    """Train ``network`` in place on (``inputs``, ``targets``) with ``settings``; return it in eval mode.

    ``transform(inputs, targets, generator)`` may change each mini-batch (on the CPU, before
    it moves to ``device``); the same seed gives the same batches and the same weights.
    """
    if inputs.shape[0] == 0:
        raise ValueError("no training volumes")
    device = torch.device(device)
    network.to(device).train()
    optimiser = torch.optim.Adam(network.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    generator = torch.Generator().manual_seed(settings.seed)
    batch_size = min(settings.batch_size, inputs.shape[0])
    order = torch.randperm(inputs.shape[0], generator=generator)
    cursor = 0
    for _ in range(settings.steps):
        if cursor + batch_size > order.numel():  # a new epoch: reshuffle
            order, cursor = torch.randperm(inputs.shape[0], generator=generator), 0
        chosen = order[cursor : cursor + batch_size]
        cursor += batch_size
        batch_inputs, batch_targets = inputs[chosen], targets[chosen]
        if transform is not None:
            batch_inputs, batch_targets = transform(batch_inputs, batch_targets, generator)
        loss = loss_fn(network(batch_inputs.to(device)), batch_targets.to(device))
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
    return network.eval()
