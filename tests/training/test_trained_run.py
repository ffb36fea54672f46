"""load_trained_run rebuilds a run's networks from config.yaml + a checkpoint, EMA weights by default."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from medgan.config.loader import save_resolved_config
from medgan.config.schema import ExperimentConfig
from medgan.errors import TrainingError
from medgan.methods import get_method
from medgan.training import load_trained_run
from medgan.training.checkpoint import save_checkpoint

TINY_MODEL = {
    "generator": {"name": "unet3d", "channels": [4, 8], "strides": [2], "num_res_units": 0},
    "discriminator": {"name": "patchgan3d", "channels": 4, "num_layers_d": 2},
}


def _write_run(run_dir: Path) -> tuple[dict[str, torch.nn.Module], dict[str, torch.nn.Module]]:
    config = ExperimentConfig.model_validate({"method": "pix2pix", "model": TINY_MODEL})
    save_resolved_config(config, run_dir / "config.yaml")
    method = get_method("pix2pix")(config)
    torch.manual_seed(1)
    networks = method.build_networks()
    torch.manual_seed(2)
    ema = {"G": method.build_networks()["G"]}
    save_checkpoint(run_dir / "checkpoints", 7, networks, ema, {"step": 7}, keep_last=2)
    return networks, ema


def test_round_trip_loads_ema_generator_by_default(tmp_path: Path) -> None:
    networks, ema = _write_run(tmp_path)
    run = load_trained_run(tmp_path)
    assert run.step == 7 and run.checkpoint_path.name == "step_000007"
    assert len(run.checkpoint_sha256) == 64 and len(run.config_sha256) == 64
    for key, tensor in ema["G"].state_dict().items():
        assert torch.equal(run.networks["G"].state_dict()[key], tensor)
    for key, tensor in networks["D"].state_dict().items():
        assert torch.equal(run.networks["D"].state_dict()[key], tensor)
    source = torch.rand(1, 1, 16, 16, 16) * 2 - 1
    with torch.no_grad():
        expected = ema["G"].eval()(source)
    assert torch.equal(run.translate(source), expected)


def test_raw_weights_when_ema_is_off(tmp_path: Path) -> None:
    networks, _ = _write_run(tmp_path)
    run = load_trained_run(tmp_path, use_ema=False)
    for key, tensor in networks["G"].state_dict().items():
        assert torch.equal(run.networks["G"].state_dict()[key], tensor)
    assert run.checkpoint_sha256 != load_trained_run(tmp_path).checkpoint_sha256


def test_folder_without_run_raises_training_error(tmp_path: Path) -> None:
    with pytest.raises(TrainingError, match="config.yaml"):
        load_trained_run(tmp_path)
    save_resolved_config(ExperimentConfig(), tmp_path / "config.yaml")
    with pytest.raises(TrainingError, match="no checkpoint"):
        load_trained_run(tmp_path)
