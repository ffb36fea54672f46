"""The non-finite guard: count skipped steps and decide when to restore the last good checkpoint.

Non-finite steps (NaN/Inf loss or gradient) are skipped and counted; after
``train.max_nonfinite_in_row`` in a row the engine reloads the last good
checkpoint's weights, EMA, optimizer and method state with every lr multiplied
by ``train.restore_lr_factor`` and carries on from the current step (so the data
that broke it is not replayed), or stops with TrainingError when
``nonfinite_action`` is ``stop`` or ``max_restores`` restores are used up.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from medgan.config.schema import TrainConfig
from medgan.errors import TrainingError


class NonFiniteGuard:
    """Counters of skipped steps and restores, and the lr scale restores have applied."""

    def __init__(self, train: TrainConfig) -> None:
        self.train = train
        self.total = 0
        self.in_row = 0
        self.restores = 0
        self.lr_scale = 1.0

    def record(self, nonfinite: bool) -> bool:
        """Count one step; True when enough non-finite steps in a row call for a restore."""
        if not nonfinite:
            self.in_row = 0
            return False
        self.total += 1
        self.in_row += 1
        return self.in_row >= self.train.max_nonfinite_in_row

    def begin_restore(self, step: int, checkpoint: Path | None, run_dir: Path) -> None:
        """Raise TrainingError when no restore is allowed; else count it and lower the lr scale."""
        train = self.train
        if train.nonfinite_action == "stop" or checkpoint is None or self.restores >= train.max_restores:
            if train.nonfinite_action == "stop":
                reason = "nonfinite_action is 'stop'"
            elif checkpoint is None:
                reason = "there is no checkpoint to restore"
            else:
                reason = f"{self.restores} restores used up"
            raise TrainingError(
                f"{self.in_row} non-finite steps in a row at step {step} ({reason})",
                path=run_dir,
                fix="lower train.lr, use precision fp32, or check the data for NaN/Inf voxels",
            )
        self.restores += 1
        self.lr_scale *= train.restore_lr_factor
        self.in_row = 0

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint keeps (the in-row count restarts at 0 on resume)."""
        return {"nonfinite_total": self.total, "restores": self.restores, "lr_scale": self.lr_scale}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s counters."""
        self.total = int(state["nonfinite_total"])
        self.restores = int(state["restores"])
        self.lr_scale = float(state["lr_scale"])
