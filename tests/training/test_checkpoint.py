"""Checkpoints are atomic: a failed save leaves `latest` on the previous good one; bad weights are refused."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from medgan.errors import TrainingError
from medgan.training.checkpoint import (
    capture_rng_states,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint_state,
    restore_rng_states,
    save_checkpoint,
)


def _nets() -> dict[str, nn.Module]:
    torch.manual_seed(0)
    return {"G": nn.Conv3d(1, 2, 3), "D": nn.Sequential(nn.Conv3d(2, 1, 3), nn.InstanceNorm3d(1, affine=True))}


def test_crash_mid_save_keeps_previous_latest(tmp_path: Path) -> None:
    root = tmp_path / "checkpoints"
    networks = _nets()
    save_checkpoint(root, 1, networks, {}, {"step": 1}, keep_last=3)
    # A state torch.save cannot pickle fails after both safetensors files are written in staging.
    with pytest.raises(Exception):  # noqa: B017 - any failure mid-save must leave the old checkpoint in place
        save_checkpoint(root, 2, networks, {}, {"step": 2, "unpicklable": lambda: None}, keep_last=3)
    assert latest_checkpoint(root) == root / "step_000001"
    assert [step for step, _ in list_checkpoints(root)] == [1]
    assert sorted(p.name for p in root.iterdir()) == ["latest", "step_000001"]  # no staging left behind


def test_nonfinite_weights_are_never_saved(tmp_path: Path) -> None:
    root = tmp_path / "checkpoints"
    networks = _nets()
    save_checkpoint(root, 1, networks, {}, {"step": 1}, keep_last=3)
    with torch.no_grad():
        networks["G"].weight[0, 0, 0, 0, 0] = float("nan")
    with pytest.raises(TrainingError, match="non-finite"):
        save_checkpoint(root, 2, networks, {}, {"step": 2}, keep_last=3)
    assert latest_checkpoint(root) == root / "step_000001"
    assert not (root / "step_000002").exists()


def test_keeps_last_k_and_state_loads_weights_only(tmp_path: Path) -> None:
    root = tmp_path / "checkpoints"
    networks = _nets()
    for step in range(1, 5):
        save_checkpoint(root, step, networks, {"G": networks["G"]}, {"step": step, "rng": capture_rng_states()},
                        keep_last=2)
    assert [step for step, _ in list_checkpoints(root)] == [3, 4]
    state = load_checkpoint_state(latest_checkpoint(root))  # weights_only=True inside
    assert state["step"] == 4


def test_rng_states_round_trip_through_state_file(tmp_path: Path) -> None:
    random.seed(5)
    np.random.seed(5)  # noqa: NPY002
    torch.manual_seed(5)
    root = tmp_path / "checkpoints"
    save_checkpoint(root, 1, _nets(), {}, {"rng": capture_rng_states()}, keep_last=1)
    expected = (random.random(), np.random.rand(), torch.rand(3))  # noqa: NPY002
    restore_rng_states(load_checkpoint_state(root / "step_000001")["rng"])
    actual = (random.random(), np.random.rand(), torch.rand(3))  # noqa: NPY002
    assert actual[0] == expected[0] and actual[1] == expected[1] and torch.equal(actual[2], expected[2])
