"""`medgan info`: one report per input, problems reported not raised, JSON output."""

import json

import numpy as np
from rich.console import Console

from medgan.io import write_nifti
from pipelines.info import run_info


def test_reports_geometry_and_counts_invalid(tmp_path):
    affine = np.diag([-1.5, -1.5, 3.0, 1.0])
    good = write_nifti(np.full((10, 12, 6), 40.0, np.float32), tmp_path / "ct.nii.gz", affine=affine)
    missing = tmp_path / "missing.nii.gz"
    console = Console(record=True, width=200)
    n_invalid = run_info([good, missing], console=console)
    text = console.export_text()
    assert n_invalid == 1
    assert "10 x 12 x 6" in text
    assert "1.5 x 1.5 x 3" in text
    assert "LPS" in text
    assert "2 input(s), 1 invalid" in text


def test_json_lines_are_parseable(tmp_path):
    good = write_nifti(np.arange(4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6), tmp_path / "a.nii.gz", affine=np.eye(4))
    console = Console(record=True, width=400)
    assert run_info([good], as_json=True, console=console) == 0
    report = json.loads(console.export_text().strip().splitlines()[0])
    assert report["ok"] is True
    assert report["shape"] == [4, 5, 6]
    assert report["intensity_max"] == 119.0
