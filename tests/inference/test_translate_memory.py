"""Memory stays bounded: translating a 128 x 128 x 100 MRI grows the process by a few volumes only."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_peak_memory_growth_is_a_small_multiple_of_the_volume(tmp_path: Path) -> None:
    """Runs the benchmark script in a fresh process (ru_maxrss is per process) with a tiny generator.

    The whole job (read, resample to 1 mm, sliding window, Invertd back to the
    0.9 x 0.9 x 1.2 mm input grid, NIfTI write) may hold about a dozen float32
    copies of the volume at its peak; running the network on the whole volume, or
    a float64 full-size resampling grid per step, would exceed the bound.
    """
    result_path = tmp_path / "memory.json"
    completed = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "translate_memory.py"),
            "--shape",
            "128",
            "128",
            "100",
            "--tiny",
            "--roi",
            "32",
            "32",
            "32",
            "--overlap",
            "0.5",
            "--json",
            str(result_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    result = json.loads(result_path.read_text())
    volume_mb = result["input_float32_mb"]
    assert volume_mb == pytest.approx(128 * 128 * 100 * 4 / 2**20, abs=0.1)
    assert 0 < result["peak_growth_mb"] < 20 * volume_mb + 60, result
    assert result["voxels_per_second"] > 0
