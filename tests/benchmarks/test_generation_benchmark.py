"""The generation benchmark in smoke mode: every path timed, ratios and FLOP fractions sane, strict JSON."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from benchmark_scripts import load_script


@pytest.mark.slow
def test_smoke_run_times_every_path_against_the_eager_baseline(tmp_path: Path) -> None:
    bench = load_script("generation")
    out = tmp_path / "generation.json"
    bench.main(["--smoke", "--out", str(out)])
    report = json.loads(out.read_text())
    assert "nan" not in out.read_text().lower()
    assert report["generate_precision"] in ("fp32", "bf16") and set(report["matmul_peak_gflops"]) == {"fp32", "bf16"}
    grid = report["grids"]["16^3"]
    paths = grid["paths"]
    assert paths["eager_fp32"]["speedup_vs_eager_fp32"] == pytest.approx(1.0)
    assert {"generate_batch1", "generate_batch2", "inference_mode_fp32_batch1"} <= set(paths)
    assert ("bf16_batch1" in paths) == (report["bf16_paths"] == "timed")
    assert "coarse_grid_fp32_batch1" in paths
    assert "generate_batch2_system_allocator" in paths  # the allocator's own share, timed before the setting
    assert grid["best_generate_path"] != "generate_batch2_system_allocator"
    assert report["generate_allocator"].startswith(("glibc malloc keeps", "system allocator"))
    assert 0 < grid["gflop_per_volume_coarse_grid"] < grid["gflop_per_volume"]  # fewer multiply-adds
    for path in paths.values():
        assert path["volumes_per_second"] > 0 and path["precision"] in ("fp32", "bf16")
        assert 0 < path["fraction_of_matmul_peak"] < 10 and math.isfinite(path["gflops_per_second"])
    assert grid["gflop_per_volume"] > 0 and grid["best_generate_path"].startswith("generate_batch")
    target = report["targets"]["16^3"]
    assert target["value"] == grid["speedup_best_generate_vs_eager_fp32"] and isinstance(target["met"], bool)
    quality = report["quality"]  # the quality part ran too, on a tiny phantom
    assert set(quality["cells"]) == {"n4_ada_on", "n4_ada_off", "n8_ada_on", "n8_ada_off"}
    assert quality["phantom"]["splits"] == {"train_4": 4, "train_8": 8, "heldout": 8}
    classifier = quality["classifier"]
    assert 0 <= classifier["heldout_real_accuracy"] <= 1
    assert set(classifier["heldout_real_mean_lesion_probability"]) == {"0", "1"}
    assert quality["phantom"]["lesion_mix"] == "haemorrhage" and quality["classifier"]["input"] == "the MRI channel"
    for name, cell in quality["cells"].items():
        assert cell["health"]["verdict"] and 0 <= cell["conditioning_accuracy"] <= 1
        assert set(cell["mean_lesion_probability"]) == {"0", "1"}
        assert all(0 <= value <= 1 for value in cell["mean_lesion_probability"].values())
        assert (cell["health"]["ada_p"] is None) == (not cell["ada"])
        for label in ("0", "1"):
            per_class = cell["per_class"][label]
            assert per_class["samples"] == 4 and 0 < per_class["ms_ssim"] <= 1
            assert set(per_class["statistics"]) == {"body_ml", "bone_ml", "soft_tissue_ml", "mean_hu_body"}
            assert set(per_class["spread_ratio_vs_real"]) == set(per_class["statistics"])
        met = quality["targets"][name]["met"]
        assert met == (classifier["informative"] and cell["conditioning_gap_vs_real"] <= 0.1)


@pytest.mark.slow
def test_throughput_part_keeps_the_stored_quality_section(tmp_path: Path) -> None:
    bench = load_script("generation")
    out = tmp_path / "generation.json"
    out.write_text(json.dumps({"quality": {"kept": True}, "grids": {"old": 1}}))
    bench.main(["--smoke", "--part", "throughput", "--out", str(out)])
    report = json.loads(out.read_text())
    assert report["quality"] == {"kept": True} and "old" not in report["grids"]


def test_quality_cells_run_apart_merge_into_one_section(tmp_path: Path) -> None:
    quality = load_script("generation_quality")
    out = tmp_path / "generation.json"
    out.write_text(json.dumps({"grids": {"kept": 1}}))
    setup = {"smoke": False, "phantom": {"seed": 41}, "overrides": ["a"]}

    def section(name: str, steps: int) -> dict:
        return {**setup, "classifier": {"steps": steps}, "cells": {name: {"steps": steps}}, "targets": {name: {}}}

    quality.write_section(out, "quality", section("n64_ada_on", 600))
    quality.write_section(out, "quality", section("n64_ada_off", 600), merge_cells=True)
    quality.write_section(out, "quality", section("n64_ada_on", 2000), merge_cells=True)  # replaces its namesake
    stored = json.loads(out.read_text())
    assert stored["grids"] == {"kept": 1}
    assert stored["quality"]["cells"] == {"n64_ada_on": {"steps": 2000}, "n64_ada_off": {"steps": 600}}
    assert set(stored["quality"]["targets"]) == {"n64_ada_on", "n64_ada_off"}
    other_phantom = {**section("n16_ada_on", 600), "phantom": {"seed": 7}}
    quality.write_section(out, "quality", other_phantom, merge_cells=True)  # another setup: nothing to merge with
    assert set(json.loads(out.read_text())["quality"]["cells"]) == {"n16_ada_on"}
    with pytest.raises(ValueError, match="unknown cells"):
        quality.measure_quality(smoke=True, cells_wanted=["n5_ada_on"])
