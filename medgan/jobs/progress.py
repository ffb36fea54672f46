"""Progress over a job's items: a rich bar on a terminal, one log line per item otherwise.

Batch jobs often run under a scheduler or with output piped to a file, where a
redrawn bar turns into noise; there every finished item gets one plain line.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


class ItemProgress:
    """Report finished items of a job (``enabled=False`` keeps it silent)."""

    def __init__(self, total: int, *, description: str, enabled: bool = True, console: Console | None = None) -> None:
        self.total = total
        self.description = description
        self.enabled = enabled
        self.console = console or Console(stderr=True)
        self.n_finished = 0
        self._bar: Progress | None = None
        self._task_id = None

    def __enter__(self) -> ItemProgress:
        if self.enabled and self.console.is_terminal:
            self._bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.fields[last]}"),
                console=self.console,
            )
            self._bar.__enter__()
            self._task_id = self._bar.add_task(self.description, total=self.total, last="")
        return self

    def item_finished(
        self, name: str, status: str, seconds: float, error: str | None = None, *, warnings: Sequence[str] = ()
    ) -> None:
        """Advance by one item and say what happened to it (and any warnings about it)."""
        self.n_finished += 1
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.update(self._task_id, advance=1, last=f"{status} {name}")
            if error:
                self._bar.console.print(f"[red]failed[/red] {name}: {error}", markup=True, highlight=False)
            for warning in warnings:
                self._bar.console.print(
                    f"[yellow]warning[/yellow] {escape(name)}: {escape(warning)}", markup=True, highlight=False
                )
            return
        line = f"{self.description} [{self.n_finished}/{self.total}] {status} {name} ({seconds:.1f} s)"
        if error:
            line += f": {error}"
        self.console.print(line, markup=False, highlight=False, soft_wrap=True)
        for warning in warnings:
            self.console.print(f"  warning: {warning}", markup=False, highlight=False, soft_wrap=True)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.__exit__(exc_type, exc, traceback)
