"""The translation benchmark runs end to end in smoke mode and writes a complete, strict JSON report."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import ModuleType

import pytest
from benchmark_scripts import load_script


@pytest.mark.slow
def test_smoke_run_of_two_methods_writes_the_report(tmp_path: Path) -> None:
    """bulk_density and a tiny pix2pix: trained to a 3 s budget, translated, scored, compared; every section."""
    bench = load_script("translation")
    out = tmp_path / "results" / "translation.json"
    bench.main(
        [
            "--smoke",
            "--methods", "pix2pix", "bulk_density",
            "--budget-seconds", "3",
            "--out", str(out),
            "--work-dir", str(tmp_path / "work"),
        ]
    )  # fmt: skip
    report = json.loads(out.read_text())  # strict JSON: json.loads accepts NaN, so check below
    assert report["smoke"] is True and report["budget_seconds"] == 3
    assert "budget" in report["budget_scheme"] and "ru_maxrss" in report["memory_measurement"]
    assert list(report["methods"]) == ["bulk_density", "pix2pix"]  # the baseline runs first
    env = report["environment"]
    assert env["torch"] and env["torch_threads"] >= 1 and len(env["load_average_at_start"]) == 3
    for name, result in report["methods"].items():
        train, translation = result["train"], result["translation"]
        assert train["steps"] >= bench.MIN_STEPS and train["steps_per_second"] > 0
        assert 0 <= train["data_wait_fraction"] <= 1 and train["calibration_seconds_per_step"] > 0
        assert train["peak_rss_mb"] >= train["rss_after_imports_mb"] > 0
        assert translation["volumes"] == report["test_subjects"] == 4
        assert translation["voxels_per_second"] > 0 and translation["peak_rss_mb"] > 0
        for metric in bench.METRICS:
            stats = translation["summary"][metric]
            assert stats["ci_low"] <= stats["mean"] <= stats["ci_high"], (name, metric)
        assert len(translation["per_subject"]) == 4
        ratios = result["ratios"]
        assert ratios["mae_hu_ratio_vs_bulk_density"] > 0 and ratios["steps_per_second_ratio_vs_bulk_density"] > 0
        assert (Path(train["run_dir"]) / "metrics.jsonl").is_file()
    assert report["methods"]["bulk_density"]["ratios"]["mae_hu_ratio_vs_bulk_density"] == 1.0
    versus = report["checks"]["pix2pix_vs_bulk_density"]
    assert set(versus) == set(bench.METRICS) and versus["mae_hu"]["subjects_a_better"].endswith("/4")
    assert isinstance(report["checks"]["pix2pix_beats_bulk_density_on_mae_and_bone_dice"], bool)
    assert set(report["checks"]["data_wait_below_10_percent"]) == {"bulk_density", "pix2pix"}
    assert "nan" not in out.read_text().lower() and "infinity" not in out.read_text().lower()
    table = out.with_suffix(".md").read_text()
    assert "| pix2pix |" in table and "| bulk_density |" in table
    assert "MAE outside body HU" in table and "resolution ratio" in table and "| speed.translate_speedup |" in table
    assert all(math.isfinite(v) for v in report["methods"]["pix2pix"]["ratios"].values() if v is not None)
    check_new_sections(bench, report)


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def check_new_sections(bench: ModuleType, report: dict) -> None:
    """Fine-grid heads, window invariance, translate speed, targets and CPU features: present and sane."""
    assert "mae_hu_outside_body" in bench.METRICS
    heads = report["fine_grid_heads"]
    assert heads["seed"] == bench.FINE_SEED != 0 and heads["subjects"] >= 1
    floor = heads["ct_round_trip_mae_hu"]
    assert len(floor["per_subject"]) == heads["subjects"] and floor["mean"] > 0
    assert floor["coarse_spacing_mm"] == 2 * heads["spacing_mm"]
    for result in report["methods"].values():
        assert result["translation"]["summary"]["mae_hu_outside_body"]["mean"] >= 0
        fine = result["translation"]["fine_grid"]
        assert fine["volumes"] == heads["subjects"] == len(fine["per_subject"])
        assert fine["summary"]["mae_hu"]["mean"] > 0
        ratio = result["resolution_ratio"]
        assert _finite(ratio["value"]) and ratio["value"] > 0 and "same phantom subjects" in ratio["note"]
        twin = fine["twin"]["summary"]["mae_hu"]["mean"]
        assert ratio["value"] == ratio["mae_hu_fine"] / twin and ratio["mae_hu_same_subjects_5mm"] == twin
        assert ratio["vs_test_heads"] == ratio["mae_hu_fine"] / ratio["mae_hu_test"]
        assert len(fine["twin"]["per_subject"]) == heads["subjects"]
        matched = fine["vs_round_trip_reference"]["summary"]["mae_hu"]["mean"]
        assert ratio["matched"] == matched / twin and ratio["mae_hu_fine_vs_round_trip_reference"] == matched
        assert matched != fine["summary"]["mae_hu"]["mean"]  # scored against another reference
        assert 0 <= result["translation"]["summary"]["texture_ratio"]["mean"] < 100
    assert report["methods"]["bulk_density"]["translation"]["window_invariance"] is None
    invariance = report["methods"]["pix2pix"]["translation"]["window_invariance"]
    assert set(invariance["variants"]) == {"small_windows", "fp32"}
    for variant in invariance["variants"].values():
        mean, peak = variant["mean_abs_difference_in_body_hu"], variant["max_abs_difference_in_body_hu"]
        assert _finite(mean) and 0 <= mean <= peak < 4000
        assert len(variant["per_subject"]) == 4 and _finite(variant["mae_hu"])
    assert "inference.roi_size=[32,32,32]" in invariance["variants"]["small_windows"]["overrides"]

    speed = report["speed"]
    assert speed["input"]["shape"] and speed["input"]["voxels"] > 0 and "resampl" in speed["note"]
    for path in ("todays_default", "default"):
        timing = speed["paths"][path]
        assert len(timing["seconds"]) == speed["repeats"] >= 1 and timing["seconds_median"] > 0
        assert timing["plan"]["precision"] in ("fp32", "bf16")
    assert speed["paths"]["todays_default"]["plan"]["precision"] == "fp32"
    assert speed["paths"]["todays_default"]["plan"]["roi_size"] == [32, 32, 32]
    assert _finite(speed["speedup_default_vs_todays_default"]) and speed["speedup_default_vs_todays_default"] > 0
    network = speed["network_path"]
    assert network["todays_default"]["seconds_median"] > 0 and network["default"]["seconds_median"] > 0
    assert speed["network_speedup_default_vs_todays_default"] == pytest.approx(
        network["todays_default"]["seconds_median"] / network["default"]["seconds_median"]
    )
    assert len(network["network_grid"]["shape"]) == 3
    assert speed["default_precision"] == speed["cpu"]["inference_precision_auto"]
    assert speed["mae_run_method"] == "pix2pix"
    quality = speed["test_mae"]
    assert all(_finite(value) for value in quality["mae_hu"].values()) and quality["abs_difference_hu"] >= 0

    assert set(report["cpu_features"]) == {"amx_bf16", "avx512_bf16", "avx512f", "avx2"}
    assert all(isinstance(flag, bool) for flag in report["cpu_features"].values())
    expected = {
        "resolution_ratio.bulk_density",
        "resolution_ratio.pix2pix",
        "resolution_ratio_matched.bulk_density",
        "resolution_ratio_matched.pix2pix",
        "window_invariance_hu.pix2pix",
        "speed.translate_speedup",
        "speed.network_path_speedup",
        "speed.test_mae_difference_hu",
        "mae_vs_bulk_density.best_neural",
        "bone_dice.best_neural",
        "outside_body_hu.bulk_density",
        "outside_body_hu.pix2pix",
    }
    assert set(report["targets"]) == expected
    for item in report["targets"].values():
        assert _finite(item["value"]) and _finite(item["target"]) and isinstance(item["met"], bool)
        assert item["comparison"] in ("<=", ">=")


def _scored(**means: float) -> dict:
    return {"translation": {"summary": {metric: {"mean": value} for metric, value in means.items()}}}


def test_quality_targets_name_the_best_neural_method_and_each_gan_against_its_baseline() -> None:
    bench = load_script("translation")
    results = {
        "bulk_density": _scored(mae_hu=200.0, dice_bone=0.6, mae_hu_outside_body=20.0),
        "pix2pix": _scored(mae_hu=120.0, dice_bone=0.8, mae_hu_outside_body=60.0),
        "unet_l1": _scored(mae_hu=90.0, dice_bone=0.86, mae_hu_outside_body=18.0),
        "cyclegan": _scored(mae_hu=210.0, dice_bone=0.5, mae_hu_outside_body=30.0),
    }
    found = bench.quality_targets(results)
    best = found["mae_vs_bulk_density.best_neural"]
    assert best["method"] == "unet_l1" and best["value"] == pytest.approx(0.45) and best["met"]
    assert found["bone_dice.best_neural"]["value"] == 0.86 and found["bone_dice.best_neural"]["met"]
    assert not found["outside_body_hu.pix2pix"]["met"] and found["outside_body_hu.unet_l1"]["met"]
    assert found["mae_ratio.pix2pix_vs_unet_l1"]["value"] == pytest.approx(120 / 90)
    assert not found["mae_ratio.pix2pix_vs_unet_l1"]["met"]
    assert not found["mae_ratio.cyclegan_vs_bulk_density"]["met"]
    results["pix2pix"] = _scored(mae_hu=float("nan"), dice_bone=0.9, mae_hu_outside_body=10.0)
    found = bench.quality_targets(results)
    assert found["mae_vs_bulk_density.best_neural"]["method"] == "unet_l1"  # a failed method is not the best
    assert found["mae_ratio.pix2pix_vs_unet_l1"]["value"] is None and not found["mae_ratio.pix2pix_vs_unet_l1"]["met"]


def test_benchmark_scores_the_metrics_evaluate_translation_reports() -> None:
    """The benchmark keeps its own list (its parent process imports no medgan); it must stay the CLI's."""
    from pipelines.evaluate_translation import HEADLINE_METRICS

    assert tuple(load_script("translation").METRICS) == tuple(HEADLINE_METRICS)
