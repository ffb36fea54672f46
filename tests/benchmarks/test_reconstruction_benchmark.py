"""The reconstruction benchmark in smoke mode: both methods and zero-filling scored by the real job, strict JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from benchmark_scripts import load_script


@pytest.mark.slow
def test_smoke_run_scores_zero_filled_baseline_and_gan(tmp_path: Path) -> None:
    bench = load_script("reconstruction")
    out = tmp_path / "reconstruction.json"
    bench.main(["--smoke", "--out", str(out)])
    text = out.read_text()
    report = json.loads(text)
    assert "nan" not in text.lower() and report["test_heads"] == 4
    cell = report["accelerations"]["4x"]
    assert set(cell["methods"]) == {"baseline", "gan"} and 0 < cell["zero_filled"]["ssim"] <= 1
    for method in cell["methods"].values():
        assert method["volumes"] == 4 and method["volumes_per_second"] > 0
        assert method["ssim_gain_vs_zero_filled"] == pytest.approx(method["ssim"] - cell["zero_filled"]["ssim"])
    target = report["targets"]["ssim_gain_vs_zero_filled_4x"]
    assert target["met"] == (target["value"] >= 0.10)
