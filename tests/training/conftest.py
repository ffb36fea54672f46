"""Fixtures of the engine tests: the shared tiny pix2pix config as a file or a dict."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from tiny_data import tiny_method_config


def tiny_config(datalist: Path, **train_overrides: object) -> dict:
    """The tiny pix2pix config (see tests/conftest.py)."""
    return tiny_method_config(datalist, "pix2pix", **train_overrides)


@pytest.fixture
def write_config(tmp_path: Path, tiny_datalist: Path):  # noqa: ANN201
    """Write a tiny config YAML (train overrides as kwargs) and return its path."""

    def write(name: str = "tiny", **train_overrides: object) -> Path:
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(tiny_config(tiny_datalist, **train_overrides)))
        return path

    return write


@pytest.fixture
def tiny_experiment(tiny_datalist: Path) -> dict:
    """The tiny pix2pix config as a dict (for building ExperimentConfig directly)."""
    return tiny_config(tiny_datalist)
