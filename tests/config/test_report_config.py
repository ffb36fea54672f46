from pathlib import Path

import pytest

from medgan.config.loader import load_config, validate_config
from medgan.config.report import ReportConfig
from medgan.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def test_the_documented_yaml_holds_exactly_the_defaults() -> None:
    assert load_config(REPO / "configs" / "report.yaml", ReportConfig) == ReportConfig()


def test_a_fail_limit_below_its_warn_limit_is_refused() -> None:
    with pytest.raises(ConfigError, match="must not be below warn"):
        validate_config({"thresholds": {"seam": {"warn": 2.0, "fail": 1.0}}}, ReportConfig)
