"""The demo job end to end on tiny phantom heads: train, translate, evaluate, and resume."""

import json

import numpy as np
import pytest

from medgan.io import read_volume
from pipelines.demo import run_demo
from pipelines.sample_data import make_sample_data


@pytest.mark.slow
def test_demo_trains_translates_scores_and_resumes(tmp_path, tiny_pix2pix_overrides):
    make_sample_data(tmp_path / "data", subjects=6, shape=(32, 32, 32), lesion_fraction=0.5, seed=1, progress=False)
    datalist = tmp_path / "data" / "datalist.json"
    result = run_demo(tmp_path / "demo", steps=2, quiet=True, datalist=datalist, overrides=tiny_pix2pix_overrides)

    test_entries = json.loads(datalist.read_text())["test"]
    report = json.loads(result.report.report_path.read_text())
    assert len(report["per_subject"]) == len(test_entries) >= 1
    assert report["summary"]["mae_hu"]["n"] == len(test_entries)
    assert result.report.montage_path.is_file()
    first = report["per_subject"][0]
    pseudo_ct = read_volume(first["output"])
    reference_ct = read_volume(tmp_path / "data" / test_entries[0]["ct"])
    assert pseudo_ct.shape == reference_ct.shape
    assert np.allclose(pseudo_ct.affine.numpy(), reference_ct.affine.numpy(), atol=1e-4)
    assert float(pseudo_ct.min()) >= -1024.5 and float(pseudo_ct.max()) <= 3071.5

    checkpoint_files = sorted((result.run_dir / "checkpoints").rglob("*.safetensors"))
    mtimes = [path.stat().st_mtime_ns for path in checkpoint_files]
    again = run_demo(tmp_path / "demo", steps=2, quiet=True, datalist=datalist, overrides=tiny_pix2pix_overrides)
    assert again.run_dir == result.run_dir
    assert [path.stat().st_mtime_ns for path in checkpoint_files] == mtimes  # training was not redone
    manifest_lines = (result.pseudo_ct_dir / "manifest.jsonl").read_text().splitlines()
    statuses = [json.loads(line)["status"] for line in manifest_lines]
    assert statuses.count("done") == len(test_entries)
    assert statuses.count("skipped") == len(test_entries)
