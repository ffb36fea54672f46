"""`medgan info`: show what medgan reads from each input, and every problem found.

Radiology AI engineers run this first on a new folder of studies: it answers
"will medgan read these, and in what geometry and intensity scale?" without
training anything. It never stops at the first bad file; the exit code says
whether any input was invalid.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table

from medgan.io import VolumeReport, validate_volume_file


def _format_numbers(values: Sequence[float], digits: int = 2) -> str:
    return " x ".join(f"{v:.{digits}f}".rstrip("0").rstrip(".") for v in values)


def _report_table(report: VolumeReport) -> Table:
    """A two-column table of one report, problems in red and warnings in yellow."""
    status = "[green]ok[/]" if report.ok else "[bold red]INVALID[/]"
    table = Table(title=f"{report.path}  {status}", show_header=False, title_justify="left", box=None, pad_edge=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    if report.ok:
        table.add_row("format", report.source_format)
        table.add_row("modality", report.modality or "(unknown)")
        table.add_row("shape", " x ".join(str(n) for n in report.shape))
        table.add_row("spacing (mm)", _format_numbers(report.spacing, 3))
        table.add_row("orientation", report.orientation)
        table.add_row("origin (mm, RAS)", _format_numbers(report.origin, 1))
        table.add_row(
            "intensity",
            f"min {report.intensity_min:.1f}  max {report.intensity_max:.1f}  mean {report.intensity_mean:.1f}",
        )
    for problem in report.problems:
        table.add_row("[red]problem[/]", problem)
    for warning in report.warnings:
        table.add_row("[yellow]warning[/]", warning)
    return table


def run_info(paths: Sequence[Path], *, as_json: bool = False, console: Console | None = None) -> int:
    """Inspect every path, print a table (or JSON lines), and return the number of invalid inputs."""
    console = console or Console(highlight=False)
    n_invalid = 0
    for path in paths:
        report = validate_volume_file(path)
        n_invalid += not report.ok
        if as_json:
            console.print_json(json.dumps(report.to_dict()), indent=None)
        else:
            console.print(_report_table(report))
            console.print()
    if not as_json:
        summary = f"{len(paths)} input(s), {n_invalid} invalid"
        console.print(f"[bold red]{summary}[/]" if n_invalid else f"[green]{summary}[/]")
    return n_invalid
