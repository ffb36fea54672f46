"""Training statistics kept as tensors and reduced at log time.

Why: ``float(loss)`` on every step forces a CUDA synchronisation per number;
summing detached tensors on the device and converting once per log interval
keeps the GPU busy. The reduced value of a key is its mean over the steps of the
interval that reported it; non-finite means (e.g. a diversity undefined for a
batch of one) are left out of the row.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch


class StatsAccumulator:
    """Per-key running sums and counts of scalar tensors over one log interval."""

    def __init__(self) -> None:
        self._sums: dict[str, torch.Tensor] = {}
        self._counts: dict[str, int] = {}

    def add(self, stats: Mapping[str, torch.Tensor | float]) -> None:
        """Add one step's statistics (scalar tensors or floats)."""
        for key, value in stats.items():
            value = torch.as_tensor(value).detach().float().reshape(())
            self._sums[key] = self._sums[key] + value.to(self._sums[key].device) if key in self._sums else value
            self._counts[key] = self._counts.get(key, 0) + 1

    def reduce(self) -> dict[str, float]:
        """The interval's means as floats (one device -> host copy), then start a new interval."""
        if not self._sums:
            return {}
        keys = list(self._sums)
        devices = {tensor.device for tensor in self._sums.values()}
        device = devices.pop() if len(devices) == 1 else torch.device("cpu")
        sums = torch.stack([self._sums[key].to(device) for key in keys]).cpu().tolist()
        means = {key: total / self._counts[key] for key, total in zip(keys, sums, strict=True)}
        self._sums, self._counts = {}, {}
        return {key: value for key, value in means.items() if math.isfinite(value)}
