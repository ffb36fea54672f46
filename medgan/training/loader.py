"""Batches for the engine: any method's draw stream, cut into one batch per step for this rank.

Step ``s`` on rank ``r`` of ``W`` uses draws ``(s * W + r) * n ... + n - 1`` with
``n = batch_size / stream.samples_per_draw``, so ranks see different data and a
resumed run continues at the same draw. Draws are concatenated along the batch
axis; dtypes are kept (float images, int64 labels, complex k-space).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from medgan.config.schema import ExperimentConfig
from medgan.errors import ConfigError


class StepBatchSampler(Sampler[list[int]]):
    """Yields, for each step from ``start_step`` to ``steps``, this rank's draw indices."""

    def __init__(self, start_step: int, steps: int, draws_per_step: int, rank: int, world_size: int) -> None:
        self.start_step, self.steps = start_step, steps
        self.draws_per_step, self.rank, self.world_size = draws_per_step, rank, world_size

    def __len__(self) -> int:
        return max(self.steps - self.start_step, 0)

    def __iter__(self) -> Iterator[list[int]]:
        for step in range(self.start_step, self.steps):
            first = (step * self.world_size + self.rank) * self.draws_per_step
            yield list(range(first, first + self.draws_per_step))


def concat_draws(draws: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Collate draws into one batch by concatenating their samples along the batch axis."""
    return {key: torch.cat([draw[key] for draw in draws]) for key in draws[0]}


def build_step_loader(
    stream: Dataset, config: ExperimentConfig, *, start_step: int, rank: int = 0, world_size: int = 1
) -> DataLoader:
    """The DataLoader yielding one batch per step from ``start_step`` (this rank's share)."""
    samples_per_draw = int(getattr(stream, "samples_per_draw", 1))
    if config.train.batch_size % samples_per_draw:
        raise ConfigError(
            f"train.batch_size ({config.train.batch_size}) must be a multiple of the {samples_per_draw} samples "
            "each draw of the training stream gives",
            fix=f"set train.batch_size to a multiple of {samples_per_draw}",
        )
    draws_per_step = config.train.batch_size // samples_per_draw
    sampler = StepBatchSampler(start_step, config.train.steps, draws_per_step, rank, world_size)
    workers = config.data.num_workers
    return DataLoader(
        stream,
        batch_sampler=sampler,
        collate_fn=concat_draws,
        num_workers=workers,
        persistent_workers=False,
        prefetch_factor=2 if workers else None,
    )
