"""The downstream job end to end on the bundled heads: outputs, resume identity, the leakage guard, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medgan.config.downstream import DownstreamConfig
from medgan.config.enrich import EnrichConfig
from medgan.errors import InputError
from pipelines.downstream import run_downstream
from pipelines.enrich import run_enrich

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data"
DATALIST = SAMPLE / "datalist.json"


@pytest.fixture(scope="module")
def enriched(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One synthetic lesion case per healthy training head (8), plus two made from test heads."""
    out = tmp_path_factory.mktemp("enriched")
    run_enrich(EnrichConfig(datalist=DATALIST, split="training", out=out / "train"), progress=False)
    run_enrich(EnrichConfig(datalist=DATALIST, split="test", fit_split="training", out=out / "test"), progress=False)
    # one synthetic datalist holding both: the test-made cases must be refused by the study
    merged = json.loads((out / "train" / "datalist.json").read_text())
    test_made = [e for e in json.loads((out / "test" / "datalist.json").read_text())["test"] if e.get("synthetic")]
    for entry in test_made:
        for key in ("mri", "ct", "lesion_mask"):
            entry[key] = str(out / "test" / entry[key])
    merged["training"] += test_made
    merged_path = out / "train" / "merged_datalist.json"  # beside the paths it holds relative
    merged_path.write_text(json.dumps(merged))
    return merged_path


def study(out: Path, synthetic: Path, **changes: object) -> DownstreamConfig:
    base = {"datalist": DATALIST, "synthetic_datalist": synthetic, "out": out, "workers": 1}
    return DownstreamConfig(**{**base, **changes})


@pytest.mark.slow
def test_quick_study_writes_results_plots_and_resumes_identically(tmp_path: Path, enriched: Path) -> None:
    config = study(tmp_path / "study", enriched)
    result = run_downstream(config, quick=True, progress=False)
    assert result.summary.n_done == result.n_runs == 2 * 5 and result.summary.n_failed == 0
    content = json.loads(result.result_path.read_text())
    assert content["n_runs_finished"] == 10
    assert {c["condition"] for c in content["cells"]} == {
        "real",
        "classical",
        "synthetic",
        "synthetic_classical",
        "negative_control",
    }
    for cell in content["cells"]:
        assert cell["low"] <= cell["estimate"] <= cell["high"]
    assert len(content["verdicts"]) == 1 and "8 real cases" in content["verdicts"][0]["text"]
    assert {p.name for p in result.plot_paths} == {"classify_sweeps.png", "classify_roc_n8.png"}
    assert all(p.stat().st_size > 1000 for p in result.plot_paths)

    # leakage guard: no run trained on a case made from a test head (8 eligible, 2 refused)
    run = json.loads((tmp_path / "study" / "runs" / "classify-synthetic-n8-r1-rep0.json").read_text())
    assert run["n_synthetic_cases"] == 8 and run["n_real_cases"] == 8
    # the sample heads and enrich's cases name their lesion types: classify tells them apart too
    assert run["lesion_types"] == ["calcified_mass", "haemorrhage", "hypointense_mass"]
    assert all("type_balanced_accuracy" in cell["secondary_means"] for cell in content["cells"])

    # a killed study: the missing runs are trained again, with identical results
    killed = tmp_path / "study" / "runs" / "classify-negative_control-n8-r1-rep1.json"
    before = json.loads(killed.read_text())
    killed.unlink()
    again = run_downstream(config, quick=True, progress=False)
    assert (again.summary.n_done, again.summary.n_skipped) == (1, 9)
    after = json.loads(killed.read_text())
    assert after["checkpoint_sha256"] == before["checkpoint_sha256"]
    assert after["test_scores"] == before["test_scores"]

    # a smaller grid, another bootstrap and worker count: the runs it keeps are not trained again
    runs_dir = tmp_path / "study" / "runs"
    stamps = {path.name: path.stat().st_mtime_ns for path in runs_dir.iterdir()}
    subset = config.model_copy(update={"conditions": ["real", "synthetic"], "n_boot": 300})
    smaller = run_downstream(subset, quick=True, progress=False)
    assert smaller.n_runs == 4
    assert {path.name: path.stat().st_mtime_ns for path in runs_dir.iterdir()} == stamps
    assert json.loads(smaller.result_path.read_text())["n_runs_finished"] == 4


def test_a_synthetic_datalist_without_synthetic_cases_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no synthetic lesion cases"):
        run_downstream(study(tmp_path / "s", DATALIST), quick=True, progress=False)


def test_a_list_without_both_classes_is_refused(tmp_path: Path) -> None:
    content = json.loads(DATALIST.read_text())
    content["test"] = [e for e in content["test"] if e["label"] == 0]
    for split in ("training", "validation", "test"):
        for entry in content[split]:
            for key in ("mri", "ct", "labels", "lesion_mask"):
                if key in entry:
                    entry[key] = str(SAMPLE / entry[key])
    path = tmp_path / "datalist.json"
    path.write_text(json.dumps(content))
    with pytest.raises(InputError, match="'test' list's real cases hold only label"):
        run_downstream(study(tmp_path / "s", path, datalist=path), quick=True, progress=False)


def test_cli_names_the_problem_without_a_traceback(tmp_path: Path) -> None:
    from test_cli import assert_one_line_error, run_medgan_process

    config = tmp_path / "downstream.yaml"
    config.write_text(f"datalist: {DATALIST}\nsynthetic_datalist: {DATALIST}\nout: {tmp_path / 'out'}\n")
    done = run_medgan_process(["downstream", str(config), "--quick", "--quiet"], cwd=tmp_path)
    assert_one_line_error(done, "no synthetic lesion cases")
