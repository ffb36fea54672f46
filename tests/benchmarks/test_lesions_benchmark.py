"""The lesion realism benchmark in smoke mode: every set scored, the real-vs-real control present, strict JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from benchmark_scripts import load_script


@pytest.mark.slow
def test_smoke_run_scores_procedural_and_real_lesions(tmp_path: Path) -> None:
    bench = load_script("lesions")
    out = tmp_path / "lesions.json"
    bench.main(["--smoke", "--out", str(out)])
    text = out.read_text()
    report = json.loads(text)
    assert "nan" not in text.lower() and set(report["sets"]) == {"procedural", "lesion_gan", "real_fit"}
    procedural = report["sets"]["procedural"]
    assert procedural["lesions"] == report["throughput"]["cases"] == 8  # one per healthy subject
    assert 0 <= procedural["two_sample_auc_vs_heldout"] <= 1 and procedural["frechet_distance_vs_heldout"] >= 0
    assert set(procedural["seam_score"]) == {"mri", "ct"} and "mri_contrast_to_shell" in procedural["feature_means"]
    assert set(procedural["standardised_mean_difference"]) == set(procedural["feature_means"])
    assert report["throughput"]["cases_per_second"] > 0 and report["heldout"]["lesions"] == 4
    assert report["sets"]["lesion_gan"]["lesions"] == report["throughput"]["gan_cases"] == 8
