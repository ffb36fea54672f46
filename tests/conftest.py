"""Fixtures shared by every test folder (the data and configs themselves are in tests/tiny_data.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tiny_data import write_tiny_dataset


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist (``make test`` runs one worker per core) each worker computes on one thread.

    Two workers with torch's default of one thread per core would oversubscribe the CPU (OpenMP
    threads waiting on each other); child processes the tests start inherit the same setting.
    """
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        os.environ["OMP_NUM_THREADS"] = "1"
        torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_datalist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A shared tiny dataset (read-only for tests)."""
    return write_tiny_dataset(tmp_path_factory.mktemp("tiny_data"))
