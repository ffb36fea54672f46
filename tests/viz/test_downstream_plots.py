"""The downstream sweep plot: both panels drawn, a legend only where a panel has labelled lines."""

from __future__ import annotations

import warnings
from pathlib import Path

from medgan.viz.downstream_plots import save_sweep_plot


def _cell(condition: str, n_real: int, ratio: float | None, estimate: float) -> dict:
    return {
        "task": "classify",
        "condition": condition,
        "n_real": n_real,
        "ratio": ratio,
        "n_real_cases": n_real,
        "metric": "auc",
        "estimate": estimate,
        "low": estimate - 0.1,
        "high": estimate + 0.1,
    }


def test_a_real_only_study_plots_without_an_empty_legend(tmp_path: Path) -> None:
    cells = [_cell("real", 16, None, 0.55), _cell("real", 32, None, 0.6)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warns when asked for a legend of no labelled lines
        path = save_sweep_plot(
            cells, tmp_path / "sweeps.png", task="classify", reference_ratio=1.0, reference_n_real=16
        )
    assert path.stat().st_size > 1000


def test_a_full_study_plots_both_sweeps(tmp_path: Path) -> None:
    cells = [_cell("real", 16, None, 0.55), _cell("synthetic", 16, 1.0, 0.6), _cell("synthetic", 16, 2.0, 0.62)]
    path = save_sweep_plot(cells, tmp_path / "sweeps.png", task="classify", reference_ratio=1.0, reference_n_real=16)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
