"""`medgan info`: one report per input, problems reported not raised, JSON output; `--run` previews translate."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from rich.console import Console
from tiny_data import TINY_METHOD_MODELS

from medgan.config.loader import save_resolved_config
from medgan.config.schema import ExperimentConfig
from medgan.data.profile import build_data_profile
from medgan.io import write_nifti
from pipelines.cli import cli
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


@pytest.fixture
def profiled_run(tmp_path, tiny_datalist):
    """A run folder as `medgan info --run` reads it: config.yaml and data_profile.json (2 mm MRIs, 48 mm FOV)."""
    run_dir = tmp_path / "run"
    config = ExperimentConfig.model_validate(
        {"method": "pix2pix", "data": {"datalist": str(tiny_datalist)}, "model": TINY_METHOD_MODELS["pix2pix"]}
    )
    save_resolved_config(config, run_dir / "config.yaml")
    build_data_profile(tiny_datalist, source_key="mri", source_modality="mri").save(run_dir / "data_profile.json")
    return run_dir


def _head(size, inside, shell, outside):
    grid = np.meshgrid(*[np.linspace(-1, 1, size)] * 3, indexing="ij")
    radius = np.sqrt(sum(axis**2 for axis in grid))
    return np.select([radius < 0.6, radius < 0.8], [inside, shell], outside).astype(np.float32)


def test_run_previews_what_translate_would_do(tmp_path, profiled_run):
    fine_mri = write_nifti(_head(40, 600.0, 80.0, 5.0), tmp_path / "fine_mri.nii.gz", affine=np.diag([1.0] * 3 + [1]))
    ct = write_nifti(_head(24, 40.0, 1200.0, -1000.0), tmp_path / "ct.nii.gz", affine=np.diag([2.0] * 3 + [1]))
    console = Console(record=True, width=400)
    assert run_info([fine_mri, ct], console=console, run_dir=profiled_run) == 1  # the CT would be refused
    text = console.export_text()
    assert "resampled 1 x 1 x 1 mm -> 2 x 2 x 2 mm (trained spacing) and back" in text
    assert "REFUSED" in text and "look like CT in HU, not MRI" in text
    assert "2 input(s), 0 invalid, 1 would be refused by translate" in text

    console = Console(record=True, width=2000)
    assert run_info([fine_mri, ct], as_json=True, console=console, run_dir=profiled_run) == 1
    mri_line, ct_line = (json.loads(line)["translate"] for line in console.export_text().strip().splitlines())
    assert mri_line["verdict"] == "ok" and mri_line["trained_spacing"] == [2.0, 2.0, 2.0]
    assert mri_line["input_spacing"] == [1.0, 1.0, 1.0] and mri_line["warnings"] == []
    assert ct_line["verdict"] == "refused" and str(ct) in ct_line["refused"]


def test_info_run_exit_code_and_warnings_through_the_cli(tmp_path, profiled_run):
    small = write_nifti(_head(12, 600.0, 80.0, 5.0), tmp_path / "small.nii.gz", affine=np.diag([2.0] * 3 + [1]))
    result = CliRunner().invoke(cli, ["info", "--run", str(profiled_run), "--json", str(small)])
    assert result.exit_code == 0, result.output
    preview = json.loads(result.output.strip().splitlines()[-1])["translate"]
    assert preview["verdict"] == "warnings" and "field of view much smaller" in preview["warnings"][0]

    ct = write_nifti(_head(24, 40.0, 1200.0, -1000.0), tmp_path / "ct.nii.gz", affine=np.diag([2.0] * 3 + [1]))
    assert CliRunner().invoke(cli, ["info", "--run", str(profiled_run), str(ct)]).exit_code == 1
