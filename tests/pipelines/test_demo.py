"""The demo end to end on tiny phantom heads: all seven stages, their outputs, and resuming."""

import json

import numpy as np
import pytest

from medgan.io import read_volume
from pipelines.demo import QUICK_PLAN, DemoPlan, run_demo
from pipelines.sample_data import make_sample_data

TINY_SAMPLER = (
    "data.patch_size=[16,16,16]",
    "data.spacing=[15,15,15]",
    "model.generator.channels=[8,4]",
    "model.generator.latent_dim=8",
    "model.generator.embedding_dim=4",
    "model.discriminator.channels=[4,8]",
    "train.batch_size=2",
    "train.checkpoint_every=2",
    "train.sample_every=0",
    "train.precision=fp32",
)
TINY_REPORT = ("two_sample_steps=5", "two_sample_edge=16", "in_domain_steps=5", "in_domain_edge=16")


@pytest.mark.slow
def test_the_demo_runs_every_stage_reports_and_resumes(tmp_path, tiny_pix2pix_overrides):
    make_sample_data(tmp_path / "data", subjects=20, shape=(32, 32, 32), lesion_fraction=0.5, seed=1, progress=False)
    datalist = tmp_path / "data" / "datalist.json"
    plan = DemoPlan(
        translator_steps=2,
        translator_overrides=tuple(tiny_pix2pix_overrides),
        sampler_steps=2,
        sampler_overrides=TINY_SAMPLER,
        n_generated=4,
        study_subjects=None,
        downstream_overrides=(),
        downstream_quick=True,
        report_overrides=TINY_REPORT,
    )
    result = run_demo(tmp_path / "demo", quiet=True, plan=plan, datalist=datalist)

    test_entries = json.loads(datalist.read_text())["test"]
    translation = json.loads(result.translation.report_path.read_text())
    assert len(translation["per_subject"]) == len(test_entries) >= 1
    pseudo_ct = read_volume(translation["per_subject"][0]["output"])
    reference_ct = read_volume(tmp_path / "data" / test_entries[0]["ct"])
    assert pseudo_ct.shape == reference_ct.shape
    assert np.allclose(pseudo_ct.affine.numpy(), reference_ct.affine.numpy(), atol=1e-4)

    enriched = json.loads((result.enriched / "datalist.json").read_text())
    assert any(entry.get("synthetic") for entry in enriched["training"])
    assert len(list(result.generated.glob("sample_*"))) == 4
    report = json.loads(result.report.report_json.read_text())
    assert report["translation"]["summary"]["mae_hu"]["n"] == len(test_entries)
    assert report["downstream"]["cells"] and report["inputs"]["synthetic"].startswith(str(result.generated))
    assert {check["id"].split(".")[0] for check in report["checks"]} == {
        "realism",
        "intensity",
        "diversity",
        "memorisation",
        "artifacts",
    }
    lines = result.headline()
    assert lines[0].startswith("pseudo-CT MAE:") and "HU" in lines[0]
    assert lines[1].startswith("downstream verdict:") and lines[2].startswith("realism verdict:")
    assert str(result).splitlines()[0].endswith("report.html")

    checkpoints = sorted((tmp_path / "demo").rglob("checkpoints/**/*.safetensors"))
    mtimes = [path.stat().st_mtime_ns for path in checkpoints]
    again = run_demo(tmp_path / "demo", quiet=True, plan=plan, datalist=datalist)
    assert [path.stat().st_mtime_ns for path in checkpoints] == mtimes  # no training redone
    assert again.downstream.summary.n_done == 0  # every study run was reused
    statuses = [json.loads(line)["status"] for line in (result.generated / "manifest.jsonl").read_text().splitlines()]
    assert statuses.count("skipped") == 4


def test_the_quick_plan_is_smaller_than_the_full_one():
    from pipelines.demo import FULL_PLAN

    assert QUICK_PLAN.translator_steps < 2000 and QUICK_PLAN.sampler_steps < FULL_PLAN.sampler_steps
    assert QUICK_PLAN.study_subjects is None and QUICK_PLAN.downstream_quick
