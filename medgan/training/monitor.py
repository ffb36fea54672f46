"""What a run reports: metrics.jsonl, TensorBoard events, a progress bar or plain log lines.

Only the main process (rank 0) writes; on other ranks every method is a no-op.
``metrics.jsonl`` holds one JSON object per logged step (training losses, learning
rates, throughput) and per validation; on resume, rows past the resumed step (logged
after the checkpoint the run restarts from) are dropped so the file matches the run.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from medgan.io.atomic import atomic_write_text
from medgan.training.run_layout import METRICS_FILE, TENSORBOARD_DIR


def truncate_metrics(path: Path, last_step: int) -> None:
    """Drop rows of ``metrics.jsonl`` whose step is beyond ``last_step`` (atomically)."""
    if not path.is_file():
        return
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # a torn last line from a crash
        if int(row.get("step", 0)) <= last_step:
            kept.append(line)
    atomic_write_text(path, "".join(f"{line}\n" for line in kept))


class RunMonitor:
    """Writes metrics and shows progress for one training run (rank 0 only)."""

    def __init__(self, run_dir: Path, *, enabled: bool, quiet: bool, start_step: int, total_steps: int) -> None:
        self.enabled, self.quiet = enabled, quiet
        self.total_steps = total_steps
        self.metrics_path = run_dir / METRICS_FILE
        self._writer = None
        self._progress: Progress | None = None
        self._task = None
        self._last_time, self._last_step = time.perf_counter(), start_step
        if not enabled:
            return
        truncate_metrics(self.metrics_path, start_step)
        from torch.utils.tensorboard import SummaryWriter

        self._writer = SummaryWriter(log_dir=str(run_dir / TENSORBOARD_DIR), purge_step=start_step + 1)
        if not quiet:
            self._progress = Progress(
                TextColumn("[bold]train"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"),
                TimeRemainingColumn(),
                TextColumn("{task.fields[status]}"),
                TextColumn("{task.fields[losses]}"),
                console=Console(stderr=True),
                transient=False,
            )
            self._progress.start()
            self._task = self._progress.add_task(
                "train", total=total_steps, completed=start_step, rate="", losses="", status=""
            )

    def steps_per_second(self, step: int) -> float:
        """Throughput since the previous call (steps per second)."""
        now = time.perf_counter()
        rate = (step - self._last_step) / max(now - self._last_time, 1e-9)
        self._last_time, self._last_step = now, step
        return rate

    def log(self, step: int, scalars: dict[str, float], *, kind: str = "train") -> None:
        """Append one metrics row and write the scalars to TensorBoard."""
        if not self.enabled:
            return
        row: dict[str, Any] = {"step": step, "kind": kind, "time": round(time.time(), 3), **scalars}
        with open(self.metrics_path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(row) + "\n")
        for key, value in scalars.items():
            self._writer.add_scalar(key, value, global_step=step)
        if kind != "train" or self.quiet:
            summary = "  ".join(f"{key}={value:.4g}" for key, value in scalars.items())
            self.message(f"step {step}/{self.total_steps} [{kind}] {summary}")

    def advance(
        self, step: int, losses: dict[str, float] | None, rate: float | None, *, status: str | None = None
    ) -> None:
        """Move the progress bar to ``step``; at log intervals also show losses, speed and the health word."""
        if self._progress is None:
            return
        fields: dict[str, str] = {}
        if losses is not None:
            fields["losses"] = " ".join(f"{key}={value:.3g}" for key, value in losses.items())
        if rate is not None:
            fields["rate"] = f"{rate:.2f} it/s"
        if status is not None:
            fields["status"] = status
        self._progress.update(self._task, completed=step, **fields)

    def message(self, text: str) -> None:
        """A line for the user (above the progress bar, or a plain line when quiet)."""
        if not self.enabled:
            return
        if self._progress is not None:
            self._progress.console.print(text, markup=False, highlight=False)
        else:
            print(text, file=sys.stdout, flush=True)

    def close(self) -> None:
        """Stop the progress bar and flush TensorBoard."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        if self._writer is not None:
            self._writer.close()
            self._writer = None
