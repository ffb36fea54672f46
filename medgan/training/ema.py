"""Exponential moving averages of network weights (the weights used at inference).

Why: GAN weights oscillate; an EMA of the generator (Karras et al., StyleGAN;
Yazici et al. 2019) gives smoother, better outputs at no training cost.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

import torch
from torch import nn


def ema_decay_at(decay: float, step: int, *, rampup: float | None = None, start_step: int = 0) -> float:
    """The EMA decay to apply after ``step`` (0-based count of finished steps before this one).

    Before ``start_step`` the copy follows the weights (0). With ``rampup`` (StyleGAN2-ADA's
    ``ema_rampup``, Karras et al. 2020) the EMA's half-life is at most ``rampup`` times the
    steps taken so far, so a short run's EMA is not an average dominated by its first,
    untrained steps: ``min(decay, 0.5 ** (1 / (rampup * steps)))``.
    """
    if step < start_step or decay == 0.0:
        return 0.0
    if rampup is None:
        return decay
    steps_so_far = max(step + 1, 1)
    return min(decay, 0.5 ** (1.0 / max(rampup * steps_so_far, 1e-8)))


def make_ema_copies(networks: Mapping[str, nn.Module], names: tuple[str, ...]) -> dict[str, nn.Module]:
    """Frozen deep copies (eval mode, no grad) of the named networks."""
    copies = {}
    for name in names:
        ema = copy.deepcopy(networks[name]).eval()
        ema.requires_grad_(False)
        copies[name] = ema
    return copies


@torch.no_grad()
def update_ema(ema_networks: Mapping[str, nn.Module], networks: Mapping[str, nn.Module], decay: float) -> None:
    """``ema = decay * ema + (1 - decay) * weights`` for floating parameters; buffers are copied.

    ``decay = 0`` makes the EMA equal to the weights (used before ``train.ema_start_step``).
    """
    for name, ema in ema_networks.items():
        source = networks[name]
        for ema_param, param in zip(ema.parameters(), source.parameters(), strict=True):
            if decay == 0.0 or not ema_param.is_floating_point():
                ema_param.copy_(param.detach())
            else:
                ema_param.lerp_(param.detach(), 1.0 - decay)
        for ema_buffer, buffer in zip(ema.buffers(), source.buffers(), strict=True):
            ema_buffer.copy_(buffer)
