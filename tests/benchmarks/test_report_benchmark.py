"""The report benchmark in smoke mode: a perfect and a memorising generator, and what fired."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from benchmark_scripts import load_script


@pytest.mark.slow
def test_smoke_run_finds_the_planted_copies_and_writes_strict_json(tmp_path: Path) -> None:
    bench = load_script("report")
    out = tmp_path / "report.json"
    bench.main(["--smoke", "--quiet", "--out", str(out)])
    text = out.read_text()
    result = json.loads(text)
    assert "nan" not in text.lower() and set(result["sets"]) == {"independent", "memorised"}
    assert result["sets"]["memorised"]["expected_fired"] is True
    assert "memorisation.nearest_training" not in result["sets"]["independent"]["failing"]
    assert result["summary"]["planted_faults_detected"] == "1 / 1"
