"""Pieces of the translate-speed benchmark that need no trained run: targets, overrides."""

from __future__ import annotations

import math
from pathlib import Path

from benchmark_scripts import load_script

REPO = Path(__file__).resolve().parents[2]


def test_todays_default_path_is_the_issue_override_set() -> None:
    speed = load_script("translate_speed")
    assert speed.PATHS["default"] == ()
    assert set(speed.PATHS["todays_default"]) == {
        "inference.roi_size=[32,32,32]",
        "inference.overlap=0.5",
        "inference.context=0",
        "inference.precision=fp32",
        "inference.channels_last=false",
        "inference.sw_batch_size=2",
    }


def test_overrides_apply_to_a_config() -> None:
    from medgan.config.loader import load_config
    from medgan.config.schema import ExperimentConfig

    speed = load_script("translate_speed")
    config = load_config(REPO / "configs" / "unet_l1_mri2ct.yaml", ExperimentConfig)
    changed = speed.config_with(config, speed.TODAYS_DEFAULT)
    assert tuple(changed.inference.roi_size) == (32, 32, 32) and changed.inference.context == 0
    assert changed.inference.precision == "fp32" and changed.inference.channels_last is False
    assert config.inference.context == 16  # the original is untouched


def test_targets_met_and_missing() -> None:
    speed = load_script("translate_speed")
    assert speed.target(5.0, 4.0, ">=")["met"] is True
    assert speed.target(3.0, 4.0, ">=")["met"] is False
    assert speed.target(1.0, 2.0, "<=") == {"value": 1.0, "target": 2.0, "comparison": "<=", "met": True}
    missing = speed.target(None, 2.0, "<=")
    assert missing["value"] is None and missing["met"] is False
    assert speed.target(math.nan, 2.0, "<=")["met"] is False
    found = speed.targets(
        {"speedup_default_vs_todays_default": 4.5, "network_speedup_default_vs_todays_default": 3.0, "test_mae": None}
    )
    assert found["translate_speedup"]["met"] is True and found["test_mae_difference_hu"]["met"] is False
    assert found["network_path_speedup"]["met"] is False


def test_cpu_report_names_the_flags_and_the_auto_precision() -> None:
    report = load_script("translate_speed").cpu_report()
    assert report["flags_read"] == ["amx_bf16", "avx512_bf16", "avx512f", "avx2"]
    assert set(report["features"]) == set(report["flags_read"])
    native = report["features"]["amx_bf16"] or report["features"]["avx512_bf16"]
    assert report["inference_precision_auto"] == ("bf16" if native else "fp32")
