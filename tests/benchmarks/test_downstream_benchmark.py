"""The downstream benchmark in smoke mode: a study per source, verdicts, plots copied, strict JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from benchmark_scripts import load_script


@pytest.mark.slow
def test_smoke_run_writes_a_study_with_verdicts_and_plots(tmp_path: Path) -> None:
    bench = load_script("downstream")
    out, plots = tmp_path / "downstream.json", tmp_path / "plots"
    bench.main(["--smoke", "--quiet", "--out", str(out), "--plots", str(plots)])
    text = out.read_text()
    report = json.loads(text)
    assert "nan" not in text.lower() and set(report["sources"]) == {"procedural"}
    assert report["phantom"]["lesion_mix"] == "haemorrhage"  # the calibrated mix
    study = report["sources"]["procedural"]
    assert study["n_runs"] == 10 and study["n_failed"] == 0 and len(study["verdicts"]) == 1
    assert {c["condition"] for c in study["cells"]} >= {"real", "negative_control"}
    assert sorted(p.name for p in (plots / "procedural").iterdir()) == ["classify_roc_n8.png", "classify_sweeps.png"]


def test_calibration_reads_the_real_only_cell_at_16_cases() -> None:
    bench = load_script("downstream")
    cells = [{"task": "classify", "condition": "real", "n_real": 16, "estimate": 0.7, "low": 0.6, "high": 0.8}]
    assert bench.calibration(cells) == {
        "real_only_auc_16": {"estimate": 0.7, "low": 0.6, "high": 0.8},
        "target": [0.65, 0.85],
        "met": True,
    }
    assert bench.calibration([{**cells[0], "estimate": 0.55}])["met"] is False
