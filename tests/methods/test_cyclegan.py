"""CycleGAN: networks, phases, losses, pools, config errors; and training through the real engine."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from head_volumes import write_heads
from safetensors.torch import load_file

from medgan.config.schema import ExperimentConfig
from medgan.errors import ConfigError
from medgan.methods.base import get_method
from medgan.methods.cyclegan import CycleGAN
from medgan.methods.image_pool import ImagePool
from medgan.training import load_trained_run
from pipelines.train import run_training

PATCH = 16


def tiny_config(**losses: Any) -> ExperimentConfig:
    """A cyclegan config with 16^3 patches and networks of a few thousand parameters."""
    return ExperimentConfig(
        method="cyclegan",
        data={"patch_size": [PATCH] * 3, "samples_per_volume": 1},
        model={
            "generator": {"name": "unet3d", "channels": [4, 8], "strides": [2], "num_res_units": 0},
            "discriminator": {"name": "patchgan3d", "channels": 4, "num_layers_d": 2},
            "losses": {"pool_size": 4, **losses},
        },
        train={"batch_size": 2, "seed": 3},
    )


def unpaired_batch(seed: int = 0) -> dict[str, torch.Tensor]:
    """Source: smooth blobs; target: the same blobs of another 'subject', inverted and shifted."""
    generator = torch.Generator().manual_seed(seed)
    source = torch.nn.functional.avg_pool3d(
        torch.rand(2, 1, PATCH, PATCH, PATCH, generator=generator) * 2 - 1, 3, stride=1, padding=1
    )
    target = torch.nn.functional.avg_pool3d(
        torch.rand(2, 1, PATCH, PATCH, PATCH, generator=generator) * 2 - 1, 3, stride=1, padding=1
    )
    return {"source": source, "target": -0.5 * target + 0.2}


def test_registered_as_unpaired_method() -> None:
    assert get_method("cyclegan") is CycleGAN
    assert CycleGAN.pairing == "unpaired"


def test_builds_two_generators_two_discriminators_and_two_pools() -> None:
    method = CycleGAN(tiny_config())
    networks = method.build_networks()
    assert set(networks) == {"G", "F", "D_target", "D_source", "pool_target", "pool_source"}
    assert isinstance(networks["pool_target"], ImagePool)
    assert networks["pool_target"].images.shape == (4, 1, PATCH, PATCH, PATCH)
    # the two pools draw from different random streams
    assert not torch.equal(networks["pool_target"].rng_state, networks["pool_source"].rng_state)
    phases = {phase.name: phase.trains for phase in method.phases()}
    assert phases == {"G": ("G", "F"), "D": ("D_target", "D_source")}
    assert method.ema_networks() == ("G",)
    assert method.inference_network_names() == ("G",)


def test_channel_counts_follow_the_generator_spec() -> None:
    config = tiny_config(lambda_identity=0.0)
    config.model.generator.update(in_channels=2, out_channels=1)
    networks = CycleGAN(config).build_networks()
    volume = torch.zeros(1, 2, PATCH, PATCH, PATCH)
    assert networks["G"](volume).shape[1] == 1
    assert networks["F"](networks["G"](volume)).shape[1] == 2
    assert networks["D_source"].in_channels == 2 and networks["D_target"].in_channels == 1
    assert networks["pool_source"].images.shape[1] == 2


def test_identity_loss_needs_equal_channel_counts() -> None:
    config = tiny_config()
    config.model.generator.update(in_channels=2, out_channels=1)
    with pytest.raises(ConfigError, match="lambda_identity"):
        CycleGAN(config)


def test_cyclegan_without_adversarial_loss_is_refused() -> None:
    with pytest.raises(ConfigError, match="lambda_adv"):
        CycleGAN(tiny_config(lambda_adv=0.0))


def test_generator_phase_loss_combines_the_weighted_terms() -> None:
    torch.manual_seed(0)
    method = CycleGAN(tiny_config(lambda_cycle=10.0, lambda_identity=0.5))
    networks = method.build_networks()
    batch = unpaired_batch()
    loss, logs = method.phase_loss("G", networks, batch)
    assert set(logs) == {"loss", "adv", "cycle", "identity"}
    expected = logs["adv"] + 10.0 * logs["cycle"] + 0.5 * 10.0 * logs["identity"]
    assert loss.item() == pytest.approx(expected, rel=1e-5) == logs["loss"]
    # the fakes are left for the D phase, detached
    assert batch["fake_target"].shape == batch["target"].shape and not batch["fake_target"].requires_grad
    loss.backward()
    for name in ("G", "F"):
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in networks[name].parameters())

    _, logs_without_identity = CycleGAN(tiny_config(lambda_identity=0.0)).phase_loss("G", networks, unpaired_batch())
    assert "identity" not in logs_without_identity


def test_discriminator_phase_feeds_the_pools() -> None:
    torch.manual_seed(0)
    method = CycleGAN(tiny_config())
    networks = method.build_networks()
    batch = unpaired_batch()
    method.phase_loss("G", networks, batch)
    loss, logs = method.phase_loss("D", networks, batch)
    assert torch.isfinite(loss) and {"d_target", "d_source"} <= set(logs)
    assert int(networks["pool_target"].num_stored) == 2 and int(networks["pool_source"].num_stored) == 2
    assert torch.equal(networks["pool_target"].images[:2], batch["fake_target"])
    loss.backward()
    assert all(p.grad is not None for p in networks["D_target"].parameters())
    assert all(p.grad is None for p in networks["G"].parameters())  # fakes are detached

    # without a preceding G phase the D phase makes its own fakes
    loss_alone, _ = method.phase_loss("D", networks, unpaired_batch(1))
    assert torch.isfinite(loss_alone) and int(networks["pool_target"].num_stored) == 4


def test_unknown_phase_is_an_error() -> None:
    method = CycleGAN(tiny_config())
    with pytest.raises(KeyError):
        method.phase_loss("R1", method.build_networks(), unpaired_batch())


def test_translate_and_samples_have_the_source_shape_and_range() -> None:
    method = CycleGAN(tiny_config())
    networks = method.build_networks()
    batch = unpaired_batch()
    prediction = method.translate(networks, batch["source"])
    assert prediction.shape == batch["source"].shape
    assert prediction.abs().max() <= 1.0
    samples = method.sample_outputs(networks, batch)
    assert set(samples) == {"source", "prediction", "reconstruction", "target"}
    assert samples["reconstruction"].shape == batch["source"].shape


def test_a_few_optimisation_steps_reduce_the_cycle_loss() -> None:
    torch.manual_seed(0)
    method = CycleGAN(tiny_config())
    networks = method.build_networks()
    optimisers = {
        phase.name: torch.optim.Adam(
            [p for name in phase.trains for p in networks[name].parameters()], lr=5e-3, betas=(0.5, 0.999)
        )
        for phase in method.phases()
    }
    batch_template = unpaired_batch()
    cycle_losses = []
    for _ in range(10):
        batch = dict(batch_template)
        for phase in method.phases():
            optimisers[phase.name].zero_grad(set_to_none=True)
            loss, logs = method.phase_loss(phase.name, networks, batch)
            loss.backward()
            optimisers[phase.name].step()
            if phase.name == "G":
                cycle_losses.append(logs["cycle"])
    assert all(torch.isfinite(torch.tensor(cycle_losses)))
    assert sum(cycle_losses[-3:]) < 0.8 * sum(cycle_losses[:3])


# ---- through the real engine ------------------------------------------------------------------------


def engine_config(datalist: Path) -> dict:
    """The tiny cyclegan of ``tiny_config`` as a YAML-able dict, 4 steps on the tiny heads."""
    return {
        "method": "cyclegan",
        "data": {
            "datalist": str(datalist),
            "patch_size": [PATCH] * 3,
            "samples_per_volume": 1,
            "validation_volumes": 1,
        },
        "model": {
            "generator": {"name": "unet3d", "channels": [4, 8], "strides": [2], "num_res_units": 0},
            "discriminator": {"name": "patchgan3d", "channels": 4, "num_layers_d": 2},
            "losses": {"pool_size": 3},
        },
        "train": {
            "steps": 4,
            "batch_size": 2,
            "seed": 5,
            "lr": {"G": 2e-3, "D": 2e-3},
            "lr_schedule": "constant",
            "ema_decay": 0.5,
            "device": "cpu",
            "precision": "fp32",
            "checkpoint_every": 2,
            "validate_every": 0,
            "log_every": 1,
            "sample_every": 0,
        },
        "inference": {"roi_size": [PATCH] * 3, "sw_batch_size": 2},
    }


@pytest.fixture(scope="module")
def engine_config_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cyclegan")
    datalist = write_heads(root / "data", subjects=3, size=24)
    path = root / "cyclegan.yaml"
    path.write_text(yaml.safe_dump(engine_config(datalist)))
    return path


@pytest.fixture(scope="module")
def straight_run(engine_config_path: Path) -> Path:
    return run_training(engine_config_path, run_dir=engine_config_path.parent / "straight", quiet=True)


def test_engine_trains_cyclegan_on_unpaired_data(straight_run: Path) -> None:
    rows = [json.loads(line) for line in (straight_run / "metrics.jsonl").read_text().splitlines()]
    train_rows = [row for row in rows if row["kind"] == "train"]
    assert [row["step"] for row in train_rows] == [1, 2, 3, 4]
    for row in train_rows:
        for key in ("G/loss", "G/adv", "G/cycle", "G/identity", "D/loss", "D/d_target", "D/d_source"):
            assert math.isfinite(row[key]) and row[key] > 0, key
    initial = load_file(str(straight_run / "checkpoints" / "step_000000" / "networks.safetensors"))
    final = load_file(str(straight_run / "checkpoints" / "step_000004" / "networks.safetensors"))
    for network in ("G", "F", "D_target", "D_source"):
        keys = [key for key in final if key.startswith(f"{network}.") and final[key].is_floating_point()]
        assert any(not torch.equal(initial[key], final[key]) for key in keys), f"{network} did not change"
    # the pools were checkpointed full (4 steps x 2 fakes > 3 slots), holding generated patches
    assert int(final["pool_target.num_stored"]) == 3 and int(final["pool_source.num_stored"]) == 3
    assert final["pool_target.images"].abs().sum() > 0
    assert not torch.equal(initial["pool_target.rng_state"], final["pool_target.rng_state"])


def test_resume_reproduces_pools_and_weights_exactly(engine_config_path: Path, straight_run: Path) -> None:
    stopped = run_training(
        engine_config_path, run_dir=engine_config_path.parent / "stopped", quiet=True, overrides=["train.steps=2"]
    )
    resumed = run_training(engine_config_path, run_dir=stopped, resume=True, quiet=True)
    for name in ("networks.safetensors", "ema.safetensors"):
        expected = load_file(str(straight_run / "checkpoints" / "step_000004" / name))
        actual = load_file(str(resumed / "checkpoints" / "step_000004" / name))
        assert expected.keys() == actual.keys()
        for key in expected:
            assert torch.equal(expected[key], actual[key]), f"{name}:{key} differs after resume"


def test_trained_cyclegan_translates_with_its_generator(straight_run: Path) -> None:
    run = load_trained_run(straight_run)
    source = torch.rand(1, 1, PATCH, PATCH, PATCH) * 2 - 1
    prediction = run.translate(source)
    assert prediction.shape == source.shape
    assert prediction.abs().max() <= 1.0
    assert torch.equal(prediction, run.networks["G"](source))
