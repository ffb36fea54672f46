"""The report job (``medgan report``): check a synthetic set against real scans before anyone trains on it.

Steps: find the scans (:mod:`pipelines.report_inputs`), bring every one onto one grid in one
intensity scale (:mod:`medgan.evaluation.report.volumes`), run every check
(:mod:`medgan.evaluation.report.suite`), draw the figures, and write ``OUT/report.json``
(every check: id, title, value, threshold, verdict, meaning, details), ``OUT/report.html`` (one
self-contained page) and ``OUT/figures/*.png``. With ``translation`` the translate job's
``evaluation.json`` is added, with ``downstream`` the downstream study's table, verdicts and
plots. The report is recomputed on each run (it is quick next to the jobs it checks); its files
are written atomically, so an interrupted run leaves the previous report whole.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

import medgan
from medgan.config.report import ReportConfig
from medgan.data.presets import canonical_modality
from medgan.errors import ConfigError, InputError, medgan_error_in
from medgan.evaluation.report import intensity
from medgan.evaluation.report.checks import Check, overall_verdict
from medgan.evaluation.report.html import render_report
from medgan.evaluation.report.suite import run_checks
from medgan.evaluation.report.volumes import ReportGrid, ReportVolume, choose_grid, prepare_volume
from medgan.io.atomic import atomic_write_text
from medgan.io.strict_json import strict_json
from medgan.viz.montage import save_montage
from medgan.viz.report_plots import save_intensity_histograms, save_nearest_similarity
from pipelines import report_inputs
from pipelines.report_inputs import Scan

LOG = logging.getLogger(__name__)
GROUPS = ("realism", "intensity", "diversity", "memorisation", "artifacts")
DISPLAY_WINDOW = {"ct": (-1000.0, 1500.0), "mri": (-1.0, 1.0)}


@dataclass
class ReportResult:
    """Where the report went and its verdicts (overall and per group)."""

    report_json: Path
    report_html: Path
    verdicts: dict[str, str]
    checks: list[Check]

    def __str__(self) -> str:
        lines = [f"report:  {self.report_html}", f"data:    {self.report_json}", f"verdict: {self.verdicts['overall']}"]
        lines += [f"  {group:<13}{self.verdicts[group]}" for group in GROUPS]
        failing = [c for c in self.checks if c.verdict in ("fail", "warn")]
        lines += [f"  {c.verdict}: {c.title} = {c.value:.4g} ({c.threshold})" for c in failing if c.value is not None]
        return "\n".join(lines)


def _modality(config: ReportConfig, scans: list[Scan]) -> str:
    name = config.modality or config.image_key or ("ct" if "ct" in str(scans[0].image).lower() else None)
    if name is None:
        raise ConfigError("cannot tell the modality of the compared images", fix="pass --set modality=ct|mri")
    try:
        return canonical_modality(name)
    except ConfigError as err:
        raise ConfigError(
            f"the image key / modality {name!r} names no intensity preset", fix="pass --set modality=ct|mri"
        ) from err


def _prepare(scans: list[Scan], role: str, modality: str, grid: ReportGrid, progress: bool) -> list[ReportVolume]:
    from rich.progress import track

    volumes = []
    for scan in track(scans, description=f"reading {role} scans", disable=not progress):
        try:
            volume = prepare_volume(scan.image, modality, grid, name=f"{role}:{scan.name}", mask_path=scan.mask)
            volume.source = scan.source
            volumes.append(volume)
        except Exception as err:  # name the scan; keep a medgan error's own message
            cause = medgan_error_in(err)
            raise InputError(
                f"{role} scan {scan.name} could not be read onto the report grid: {cause or err}",
                path=scan.image,
                fix="check the file with `medgan info`, or leave it out of the datalist",
            ) from err
    return volumes


def _figures(
    checks: list[Check],
    real: list[ReportVolume],
    synthetic: list[ReportVolume],
    training: list[ReportVolume] | None,
    modality: str,
    config: ReportConfig,
    figures_dir: Path,
) -> list[dict[str, str]]:
    """Draws each check's figure (names recorded in ``check.figures``); returns the sample montages."""
    by_name = {v.name: v for v in [*real, *synthetic, *(training or [])]}
    window = DISPLAY_WINDOW[modality]
    for check in checks:
        if check.check_id == "intensity.tissue_wasserstein":
            real_voxels = intensity.pooled_body_voxels(
                [v.values for v in real], [v.body for v in real], max_voxels=config.max_voxels, seed=config.seed
            )
            syn_voxels = intensity.pooled_body_voxels(
                [v.values for v in synthetic],
                [v.body for v in synthetic],
                max_voxels=config.max_voxels,
                seed=config.seed + 1,  # the very voxels the check measured
            )
            bands = {k: tuple(v) for k, v in check.details["bands"].items()}
            save_intensity_histograms(
                real_voxels, syn_voxels, bands, figures_dir / "intensity.png", unit=check.details["unit"]
            )
            check.figures.append("intensity.png")
        elif check.check_id == "memorisation.nearest_training" and check.verdict != "skipped":
            save_nearest_similarity(
                check.details["held_out_nearest_ncc"],
                check.details["synthetic_nearest_ncc"],
                check.details["limit_ncc"],
                figures_dir / "memorisation.png",
            )
            rows = {}
            for syn_name, train_name, ncc in check.details["closest_pairs"][:3]:
                rows[f"{syn_name} (NCC {ncc:.3f})"] = by_name[syn_name].values
                rows[f"nearest: {train_name}"] = by_name[train_name].values
            save_montage(
                rows,
                figures_dir / "memorisation_pairs.png",
                windows={k: window for k in rows},
                title="closest synthetic / training pairs",
            )
            check.figures += ["memorisation.png", "memorisation_pairs.png"]
        elif check.details.get("worst") and check.verdict in ("warn", "fail"):
            names = [n for n in check.details["worst"] if n in by_name][:3]
            rows = {name: by_name[name].values for name in names}
            overlays = {name: by_name[name].mask for name in names if by_name[name].mask is not None}
            file = f"worst_{check.check_id.replace('.', '_')}.png"
            save_montage(
                rows,
                figures_dir / file,
                windows={k: window for k in rows},
                overlays=overlays or None,
                title=f"worst cases: {check.title}",
            )
            check.figures.append(file)
    montages = []
    for role, volumes in (("real", real), ("synthetic", synthetic)):
        shown = volumes[: config.montage_volumes]
        rows = {v.name: v.values for v in shown}
        overlays = {v.name: v.mask for v in shown if v.mask is not None and v.mask.any()}
        file = f"samples_{role}.png"
        save_montage(
            rows,
            figures_dir / file,
            windows={k: window for k in rows},
            overlays=overlays or None,
            title=f"{role} scans on the report grid" + (" (lesion masks outlined where cut)" if overlays else ""),
        )
        montages.append({"file": file, "caption": f"{role}: the first {len(shown)} scans (axial / coronal / sagittal)"})
    return montages


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise InputError(
            f"cannot read the {what}: {err}", path=path, fix=f"pass the {what} file a medgan job wrote"
        ) from err


def _translation(path: Path, figures_dir: Path) -> dict[str, Any]:
    file = path / "evaluation.json" if path.is_dir() else path
    if not file.is_file():
        raise InputError(
            "no evaluation.json in the translation folder",
            path=path,
            fix="run `medgan translate` with a datalist that has the target images (it writes evaluation.json)",
        )
    content = _read_json(file, "translation evaluation")
    figures = []
    if file.with_suffix(".png").is_file():
        shutil.copyfile(file.with_suffix(".png"), figures_dir / "translation.png")
        figures.append("translation.png")
    return {
        "source": str(file),
        "summary": content.get("summary", {}),
        "per_subject": content.get("per_subject", []),
        "figures": figures,
    }


def _downstream(path: Path, figures_dir: Path) -> dict[str, Any]:
    content = _read_json(path, "downstream study result")
    if "cells" not in content:
        raise InputError(
            "this is not a downstream.json (no 'cells')",
            path=path,
            fix="pass OUT/downstream.json of `medgan downstream`",
        )
    figures = []
    for plot in sorted((path.parent / "plots").glob("*.png")):
        shutil.copyfile(plot, figures_dir / f"downstream_{plot.name}")
        figures.append(f"downstream_{plot.name}")
    verdicts = [v["text"] if isinstance(v, dict) else str(v) for v in content.get("verdicts", [])]
    return {
        "source": str(path),
        "verdicts": verdicts,
        "cells": content["cells"],
        "n_runs_planned": content.get("n_runs_planned"),
        "n_runs_finished": content.get("n_runs_finished"),
        "figures": figures,
    }


def run_report(config: ReportConfig, *, progress: bool = True) -> ReportResult:
    """Compare ``config.synthetic`` with ``config.real``; write the report under ``config.out``."""
    for key in ("real", "synthetic", "out"):
        if getattr(config, key) is None:
            raise ConfigError(f"the report needs --{key}", fix=f"pass --{key} PATH (or set `{key}:` in the config)")
    out = Path(config.out)  # type: ignore[arg-type]
    figures_dir = out / "figures"
    figures_dir.mkdir(parents=True, exist_ok=True)
    real_list = report_inputs.real_scans(Path(config.real), config)  # type: ignore[arg-type]
    synthetic_list = report_inputs.synthetic_scans(Path(config.synthetic), config)  # type: ignore[arg-type]
    training_path = config.training
    if training_path is None and report_inputs.has_training_list(Path(config.real), config):  # type: ignore[arg-type]
        training_path = Path(config.real)  # type: ignore[arg-type]
        LOG.info("memorisation: comparing against the %r list of %s", config.training_split, training_path)
    training_list = report_inputs.training_scans(Path(training_path), config) if training_path else None
    modality = _modality(config, real_list)
    grid = choose_grid([s.image for s in real_list], max_edge=config.max_edge, spacing=config.spacing)
    LOG.info("report grid: %s mm, %s voxels (%s)", grid.spacing, grid.shape, modality)
    real = _prepare(real_list, "real", modality, grid, progress)
    synthetic = _prepare(synthetic_list, "synthetic", modality, grid, progress)
    training = _prepare(training_list, "training", modality, grid, progress) if training_list else None
    checks = run_checks(
        real, synthetic, training, grid, modality, config, progress=lambda name: LOG.info("checks: %s", name)
    )
    montages = _figures(checks, real, synthetic, training, modality, config, figures_dir)
    verdicts = {"overall": overall_verdict(checks), **{g: overall_verdict(checks, g + ".") for g in GROUPS}}
    content: dict[str, Any] = {
        "medgan_version": medgan.__version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "inputs": {
            "real": f"{config.real} ({len(real)} scans)",
            "synthetic": f"{config.synthetic} ({len(synthetic)} scans)",
            "training (memorisation)": f"{training_path} ({len(training)} scans)" if training else "not given",
            "modality": modality,
            "grid": f"{grid.spacing:g} mm isotropic, {' x '.join(map(str, grid.shape))} voxels, RAS",
        },
        "grid": grid.to_dict(),
        "verdicts": verdicts,
        "checks": [c.to_dict() for c in checks],
        "montages": montages,
        "settings": json.loads(config.model_dump_json()),
    }
    if config.translation:
        content["translation"] = _translation(Path(config.translation), figures_dir)
    if config.downstream:
        content["downstream"] = _downstream(Path(config.downstream), figures_dir)
    content = strict_json(content)
    report_json = atomic_write_text(out / "report.json", json.dumps(content, indent=1, default=_plain) + "\n")
    report_html = atomic_write_text(out / "report.html", render_report(content, figures_dir))
    return ReportResult(report_json, report_html, verdicts, checks)


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
