"""Fixtures shared by every test folder (the data and configs themselves are in tests/tiny_data.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tiny_data import write_tiny_dataset


@pytest.fixture(scope="session")
def tiny_datalist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A shared tiny dataset (read-only for tests)."""
    return write_tiny_dataset(tmp_path_factory.mktemp("tiny_data"))


