"""`medgan info`: show what medgan reads from each input, and every problem found.

Radiology AI engineers run this first on a new folder of studies: it answers
"will medgan read these, and in what geometry and intensity scale?" without
training anything. It never stops at the first bad file; the exit code says
whether any input was invalid. With ``--run RUN`` it also says what
``medgan translate --run RUN`` would do with each input: resample it to the
trained spacing (or not), and the input guard's verdict (refused and why, or its
warnings); an input the guard would refuse counts as invalid.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from medgan.config.schema import ExperimentConfig
from medgan.data.profile import DataProfile, format_numbers
from medgan.errors import MedganError
from medgan.inference.input_guard import check_source_against_profile, resampling_note, source_spacing
from medgan.io import VolumeReport, read_volume, validate_volume_file
from medgan.training.trained_run import load_run_config, load_run_profile, trained_spacing_of


@dataclass
class TranslatePreview:
    """What the translate job of one run would do with one input."""

    run_dir: str
    trained_spacing: list[float] | None
    input_spacing: list[float] | None  # mm per world axis R, A, S
    resampling: str | None
    verdict: str  # "ok" | "warnings" | "refused"
    refused: str | None = None
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RunExpectations:
    """The parts of a run the translate job checks inputs against (no networks loaded)."""

    run_dir: Path
    config: ExperimentConfig
    profile: DataProfile | None

    @classmethod
    def load(cls, run_dir: str | Path) -> RunExpectations:
        return cls(Path(run_dir), load_run_config(run_dir), load_run_profile(run_dir))

    @property
    def trained_spacing(self) -> tuple[float, float, float] | None:
        return trained_spacing_of(self.config, self.profile, warn=False)

    def preview(self, path: Path) -> TranslatePreview:
        """The translate job's view of ``path``: resampling and the guard's verdict."""
        trained = self.trained_spacing
        base = {"run_dir": str(self.run_dir), "trained_spacing": None if trained is None else list(trained)}
        try:
            source = read_volume(path)
        except MedganError as err:
            return TranslatePreview(**base, input_spacing=None, resampling=None, verdict="refused", refused=str(err))
        spacing = source_spacing(source)
        note = resampling_note(spacing, trained)
        try:
            warnings = check_source_against_profile(
                source, path, self.profile, self.config.data.source_modality, trained_spacing=trained
            )
        except MedganError as err:
            return TranslatePreview(
                **base, input_spacing=list(spacing), resampling=note, verdict="refused", refused=str(err)
            )
        return TranslatePreview(
            **base,
            input_spacing=list(spacing),
            resampling=note,
            verdict="warnings" if warnings else "ok",
            warnings=warnings,
        )


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
        table.add_row("spacing (mm)", format_numbers(report.spacing, 3))
        table.add_row("orientation", report.orientation)
        table.add_row("origin (mm, RAS)", format_numbers(report.origin, 1))
        table.add_row(
            "intensity",
            f"min {report.intensity_min:.1f}  max {report.intensity_max:.1f}  mean {report.intensity_mean:.1f}",
        )
    for problem in report.problems:
        table.add_row("[red]problem[/]", problem)
    for warning in report.warnings:
        table.add_row("[yellow]warning[/]", warning)
    return table


def _preview_table(preview: TranslatePreview) -> Table:
    """What translate would do, as rows under the report (verdict, resampling, warnings)."""
    table = Table(title=f"translate --run {preview.run_dir}", show_header=False, title_justify="left", box=None)
    table.add_column("field", style="bold")
    table.add_column("value")
    if preview.trained_spacing is not None:
        table.add_row("trained spacing", format_numbers(preview.trained_spacing, 3) + " mm")
    if preview.resampling:
        table.add_row("resolution", escape(preview.resampling))
    verdict = {"ok": "[green]ok[/]", "warnings": "[yellow]ok, with warnings[/]", "refused": "[bold red]REFUSED[/]"}
    table.add_row("verdict", verdict[preview.verdict])
    if preview.refused:
        table.add_row("[red]refused[/]", escape(preview.refused))
    for warning in preview.warnings:
        table.add_row("[yellow]warning[/]", escape(warning))
    return table


def run_info(
    paths: Sequence[Path],
    *,
    as_json: bool = False,
    console: Console | None = None,
    run_dir: str | Path | None = None,
) -> int:
    """Inspect every path, print a table (or JSON lines), and return the number of invalid inputs.

    With ``run_dir`` each valid input also gets the translate job's preview for that
    run (JSON: key ``translate``); inputs the guard would refuse count as invalid.
    """
    console = console or Console(highlight=False)
    expectations = RunExpectations.load(run_dir) if run_dir is not None else None
    n_invalid = n_refused = 0
    for path in paths:
        report = validate_volume_file(path)
        n_invalid += not report.ok
        preview = expectations.preview(Path(path)) if expectations is not None and report.ok else None
        n_refused += preview is not None and preview.verdict == "refused"
        if as_json:
            values = report.to_dict()
            if expectations is not None:
                values["translate"] = preview.to_dict() if preview is not None else None
            console.print_json(json.dumps(values), indent=None)
        else:
            console.print(_report_table(report))
            if preview is not None:
                console.print(_preview_table(preview))
            console.print()
    if not as_json:
        summary = f"{len(paths)} input(s), {n_invalid} invalid"
        if expectations is not None:
            summary += f", {n_refused} would be refused by translate"
        console.print(f"[bold red]{summary}[/]" if n_invalid or n_refused else f"[green]{summary}[/]")
    return n_invalid + n_refused
