"""`medgan evaluate-translation`: score translated volumes against their reference scans.

Pairs each output of a `medgan translate` job (through its manifest, which links
every output to the input it came from) with the datalist entry of that input,
computes the SynthRAD-style metrics of `medgan.evaluation` per subject inside the
body mask, aggregates them with bootstrap confidence intervals, and writes a JSON
report plus a montage of the first subjects (source, reference, translation, error)
so a person can look at what the numbers mean.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from medgan.data.body import body_mask, complete_label_key
from medgan.data.datalist import load_datalist
from medgan.errors import InputError
from medgan.evaluation import aggregate_metrics, body_mask_from_ct, translation_metrics
from medgan.io import atomic_write_text, read_volume
from medgan.io.strict_json import strict_json
from medgan.jobs.manifest import merge_manifests
from medgan.viz import save_montage

HEADLINE_METRICS = (
    "mae_hu",
    "psnr_db",
    "ssim",
    "dice_bone",
    "mae_hu_bone",
    "mae_hu_soft_tissue",
    "mae_hu_air",  # air tissue inside the body (sinuses, airways)
    "mae_hu_outside_body",  # background around the head, outside the body mask
    "texture_ratio",  # fine texture in soft tissue, pseudo-CT / CT (1 = CT-like, < 1 smoother, > 1 noisier)
)
METRIC_NOTES = {
    "mae_hu_air": "MAE over the air tissue inside the body mask (reference CT < -400 HU: sinuses, airways)",
    "mae_hu_outside_body": "MAE over every voxel outside the body mask (the background around the head); "
    "not part of mae_hu; null when the mask covers the whole volume",
    "texture_ratio": "high-pass standard deviation (volume minus a 1-voxel Gaussian blur) in soft tissue eroded by "
    "3 voxels, pseudo-CT / CT: 1 = CT-like fine texture, < 1 smoother, > 1 noisier (MAE alone hides both)",
}
MONTAGE_SUBJECTS = 3
CT_WINDOW_HU = (-1000.0, 1500.0)
ERROR_WINDOW_HU = (0.0, 500.0)


@dataclass
class TranslationReport:
    """Per-subject metrics, their summary (mean, std, 95% CI) and where the report files are."""

    per_subject: list[dict[str, Any]]
    summary: dict[str, dict[str, float]]
    report_path: Path
    montage_path: Path | None

    def headline(self) -> str:
        """One line per key metric, e.g. `mae_hu  62.1 (95% CI 55.0-69.3)`."""
        lines = []
        for name in HEADLINE_METRICS:
            stats = self.summary.get(name)
            if stats and stats["n"]:
                lines.append(
                    f"{name:<20}{stats['mean']:9.3f}  (95% CI {stats['ci_low']:.3f} .. {stats['ci_high']:.3f}, "
                    f"n={stats['n']})"
                )
        return "\n".join(lines)


def _outputs_by_input(translated_dir: Path) -> dict[str, Path]:
    """Map each finished input path (resolved) to its output file, from the job's manifests."""
    outputs = {}
    for record in merge_manifests(translated_dir).values():
        if record.status in ("done", "skipped") and record.input and record.output:
            outputs[str(Path(record.input).resolve())] = translated_dir / record.output
    return outputs


def _body_mask(entry: dict[str, Any], ct_hu: np.ndarray, labels_key: str | None) -> np.ndarray:
    """The labelled head when the datalist has a tissue label map, else the CT's body outline."""
    if labels_key:
        return body_mask(ct_hu, labels=read_volume(entry[labels_key]).numpy()[0]).numpy() > 0
    return body_mask_from_ct(ct_hu)


def evaluate_translation(
    translated_dir: str | Path,
    datalist: str | Path,
    *,
    split: str = "test",
    source_key: str = "mri",
    target_key: str = "ct",
    labels_key: str | None = "labels",
    report_path: str | Path | None = None,
) -> TranslationReport:
    """Score every translated output of ``split`` against the datalist's ``target_key`` scan.

    Writes ``report_path`` (default ``<translated_dir>/evaluation.json``) and a montage
    PNG beside it. Entries of the split with no finished translation are an error that
    names them (translate them first), so a report never silently covers fewer subjects.
    The body is the ``labels_key`` label map when every entry has one (the training rule,
    :mod:`medgan.data.body`), else the CT above -500 HU.
    """
    translated_dir = Path(translated_dir)
    entries = load_datalist(datalist, split, require_keys=(source_key, target_key))
    labels_key = complete_label_key(labels_key, entries)
    outputs = _outputs_by_input(translated_dir)
    missing = [str(entry[source_key]) for entry in entries if str(Path(entry[source_key]).resolve()) not in outputs]
    if missing:
        raise InputError(
            f"{len(missing)} of {len(entries)} '{split}' inputs have no finished translation: {', '.join(missing[:5])}",
            path=translated_dir,
            fix=f"run `medgan translate --run RUN {datalist} --split {split} --out {translated_dir}` first",
        )
    per_subject, montage_rows = [], {}
    for index, entry in enumerate(entries):
        output_path = outputs[str(Path(entry[source_key]).resolve())]
        pseudo_ct_hu = read_volume(output_path).numpy()[0]
        ct_hu = read_volume(entry[target_key]).numpy()[0]
        if pseudo_ct_hu.shape != ct_hu.shape:
            raise InputError(
                f"translation has shape {pseudo_ct_hu.shape} but the reference {entry[target_key]} has {ct_hu.shape}",
                path=output_path,
                fix="translate the source of this datalist entry again (outputs must be on the input grid)",
            )
        metrics = translation_metrics(pseudo_ct_hu, ct_hu, _body_mask(entry, ct_hu, labels_key))
        subject = str(entry.get("subject", Path(output_path).name))
        per_subject.append({"subject": subject, "output": str(output_path), **metrics})
        if index < MONTAGE_SUBJECTS:
            montage_rows[f"{subject} {source_key}"] = read_volume(entry[source_key]).numpy()[0]
            montage_rows[f"{subject} {target_key} (HU)"] = ct_hu
            montage_rows[f"{subject} translated (HU)"] = pseudo_ct_hu
            montage_rows[f"{subject} |error| (HU)"] = np.abs(pseudo_ct_hu - ct_hu)
    summary = aggregate_metrics(per_subject)
    report_path = Path(report_path) if report_path else translated_dir / "evaluation.json"
    report = {
        "datalist": str(datalist),
        "split": split,
        "headline": {name: summary[name] for name in HEADLINE_METRICS if name in summary},
        "metric_notes": METRIC_NOTES,
        "summary": summary,
        "per_subject": per_subject,
    }
    atomic_write_text(report_path, json.dumps(strict_json(report), indent=2))
    montage_path = _write_montage(montage_rows, report_path.with_suffix(".png"), target_key)
    return TranslationReport(per_subject, summary, report_path, montage_path)


def _write_montage(rows: dict[str, np.ndarray], path: Path, target_key: str) -> Path | None:
    """Source / reference / translation / error rows, CT rows in one HU window."""
    if not rows:
        return None
    windows = {}
    for name in rows:
        if name.endswith("|error| (HU)"):
            windows[name] = ERROR_WINDOW_HU
        elif name.endswith("(HU)"):
            windows[name] = CT_WINDOW_HU
    cmaps = {name: "magma" for name in rows if name.endswith("|error| (HU)")}
    return save_montage(rows, path, windows=windows, cmaps=cmaps, title=f"translation vs reference {target_key}")
