"""Plots of the downstream study: the metric against real-case count and ratio with 95 % bands, and curves.

Input is plain data (``downstream.json``'s cells and per-regime curves), so this module stays a
leaf of the package. Each PNG is written atomically through the montage module's writer.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from medgan.viz.montage import _write_atomically

CONDITION_STYLE = {
    "real": ("real only", "tab:grey"),
    "classical": ("real + classical aug.", "tab:blue"),
    "synthetic": ("real + synthetic", "tab:orange"),
    "synthetic_classical": ("real + synthetic + classical", "tab:red"),
    "negative_control": ("negative control", "tab:green"),
}
METRIC_LABEL = {"auc": "test AUC", "froc_mean": "mean lesion sensitivity (FROC)"}


def _save(fig: Figure, path: Path) -> Path:
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    _write_atomically(path, buffer.getvalue())
    return path


def _sweep_axes(ax, cells: Sequence[Mapping[str, Any]], x_of, *, log_x: bool) -> None:
    for condition, (label, colour) in CONDITION_STYLE.items():
        points = sorted((x_of(c), c) for c in cells if c["condition"] == condition and x_of(c) is not None)
        if not points:
            continue
        xs = [x for x, _ in points]
        ax.plot(xs, [c["estimate"] for _, c in points], "o-", color=colour, label=label)
        ax.fill_between(xs, [c["low"] for _, c in points], [c["high"] for _, c in points], color=colour, alpha=0.15)
    if log_x:
        ax.set_xscale("log", base=2)
    ax.grid(alpha=0.3)


def _legend(ax) -> None:
    """A legend when the panel has labelled lines (a real-only study's ratio panel may have none)."""
    if ax.get_legend_handles_labels()[1]:
        ax.legend(fontsize=7)


def save_sweep_plot(
    cells: Sequence[Mapping[str, Any]],
    path: Path,
    *,
    task: str,
    reference_ratio: float,
    reference_n_real: Any,
) -> Path:
    """Two panels: the metric vs real cases (at the reference ratio) and vs the ratio (at the reference count)."""
    task_cells = [c for c in cells if c["task"] == task]
    if not task_cells:
        raise ValueError(f"no cells of task {task!r} to plot")
    metric = task_cells[0]["metric"]
    fig = Figure(figsize=(11, 4.2), facecolor="white")
    left, right = fig.subplots(1, 2)

    def by_n(cell):
        return cell["n_real_cases"] if cell["ratio"] in (None, reference_ratio) else None

    _sweep_axes(left, task_cells, by_n, log_x=True)
    _legend(left)
    left.set_xlabel(f"real training cases (synthetic:real = {reference_ratio:g})")
    left.set_ylabel(METRIC_LABEL.get(metric, metric))
    ratio_cells = [c for c in task_cells if c["n_real"] == reference_n_real]

    def by_ratio(cell):
        return cell["ratio"] if cell["ratio"] is not None else None

    _sweep_axes(right, ratio_cells, by_ratio, log_x=True)
    for cell in ratio_cells:  # references without synthetic data: horizontal bands
        if cell["ratio"] is None:
            label, colour = CONDITION_STYLE[cell["condition"]]
            right.axhline(cell["estimate"], color=colour, label=label, linestyle="--")
            right.axhspan(cell["low"], cell["high"], color=colour, alpha=0.1)
    _legend(right)
    right.set_xlabel(f"synthetic:real ratio ({reference_n_real} real cases)")
    fig.suptitle(f"downstream {task}: mean over seeds, 95 % bootstrap band (test cases x seeds)")
    fig.tight_layout()
    return _save(fig, path)


def save_curve_plot(curves: Mapping[str, Mapping[str, Sequence[float]]], path: Path, *, title: str, task: str) -> Path:
    """ROC (classify) or FROC (detect) curves of each condition at one regime."""
    fig = Figure(figsize=(5.5, 4.5), facecolor="white")
    ax = fig.subplots()
    for key, curve in curves.items():
        curve_task, condition = key.split("/", 1)
        if curve_task != task:
            continue
        label, colour = CONDITION_STYLE.get(condition, (condition, None))
        ax.step(curve["x"], curve["y"], where="post", color=colour, label=label)
    if task == "classify":
        ax.plot([0, 1], [0, 1], ":", color="black", linewidth=0.8)
        ax.set_xlabel("1 - specificity")
        ax.set_ylabel("sensitivity")
    else:
        ax.set_xlabel("false positives per scan")
        ax.set_ylabel("lesion sensitivity")
        ax.set_xlim(0, 4)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return _save(fig, path)
