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
from phase_calls import run_phase
from safetensors.torch import load_file

from medgan.config.schema import ExperimentConfig
from medgan.errors import ConfigError
from medgan.methods.base import InferenceContext, SampleVolume, Stateful, get_method
from medgan.methods.cyclegan import CycleGAN, CycleGANOptions
from medgan.methods.image_pool import ImagePool
from medgan.training import load_trained_run
from medgan.training.checkpoint import load_checkpoint_state
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
        # one plain fp32 window per patch: validation outputs are then the networks' own outputs
        inference={
            "roi_size": [PATCH] * 3,
            "sw_batch_size": 1,
            "context": 0,
            "precision": "fp32",
            "air_outside_body": False,
        },
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


G_STATS = {"loss", "adv", "cycle", "identity", "health/g_adv", "health/diversity_fake", "health/diversity_real"}
D_HEALTH = {"health/d_real", "health/d_fake", "health/d_accuracy", "health/d_loss_ratio"}
D_STATS = {"loss", "d_target", "d_source", "d_target_accuracy", "d_source_accuracy", *D_HEALTH}


def test_registered_as_unpaired_method() -> None:
    assert get_method("cyclegan") is CycleGAN
    assert CycleGAN.pairing == "unpaired"
    assert isinstance(tiny_config().model, CycleGANOptions)


def test_builds_two_generators_two_discriminators_and_two_pools_in_its_state() -> None:
    method = CycleGAN(tiny_config())
    networks = method.build_networks()
    assert set(networks) == {"G", "F", "D_target", "D_source"}  # the pools are state, not networks
    state = method.build_state()
    assert set(state) == {"pool_target", "pool_source"}
    assert all(isinstance(pool, ImagePool) and isinstance(pool, Stateful) for pool in state.values())
    assert state["pool_target"].images.shape == (4, 1, PATCH, PATCH, PATCH)
    assert int(state["pool_target"].num_stored) == 0 and int(state["pool_source"].num_stored) == 0
    # the two pools draw from different random streams, fixed by train.seed
    assert not torch.equal(state["pool_target"].rng_state, state["pool_source"].rng_state)
    assert torch.equal(state["pool_target"].rng_state, method.build_state()["pool_target"].rng_state)
    other_seed = tiny_config()
    other_seed.train.seed = 4
    assert not torch.equal(state["pool_target"].rng_state, CycleGAN(other_seed).build_state()["pool_target"].rng_state)
    phases = {phase.name: phase.trains for phase in method.phases()}
    assert phases == {"G": ("G", "F"), "D": ("D_target", "D_source")}
    assert method.optimizer_names() == ("G", "D")
    assert method.ema_networks() == ("G",)
    assert method.inference_network_names() == ("G",)


def test_channel_counts_follow_the_generator_spec() -> None:
    config = tiny_config(lambda_identity=0.0)
    config.model.generator.update(in_channels=2, out_channels=1)
    method = CycleGAN(config)
    networks = method.build_networks()
    volume = torch.zeros(1, 2, PATCH, PATCH, PATCH)
    assert networks["G"](volume).shape[1] == 1
    assert networks["F"](networks["G"](volume)).shape[1] == 2
    assert networks["D_source"].in_channels == 2 and networks["D_target"].in_channels == 1
    state = method.build_state()
    assert state["pool_source"].images.shape[1] == 2 and state["pool_target"].images.shape[1] == 1


def test_identity_loss_needs_equal_channel_counts() -> None:
    config = tiny_config()
    config.model.generator.update(in_channels=2, out_channels=1)
    with pytest.raises(ConfigError, match="lambda_identity"):
        CycleGAN(config)


def test_cyclegan_without_adversarial_loss_is_refused() -> None:
    with pytest.raises(ConfigError, match="lambda_adv"):
        CycleGAN(tiny_config(lambda_adv=0.0))


def test_options_and_learning_rates_are_checked_against_cyclegan() -> None:
    with pytest.raises(ConfigError, match="lambda_l1") as caught:
        tiny_config(lambda_l1=100.0)
    assert "cyclegan" in str(caught.value) and "pix2pix" in str(caught.value)  # whose option it is
    assert tiny_config().train.lr == {"G": CycleGAN.default_lr, "D": CycleGAN.default_lr}
    with pytest.raises(ConfigError, match="cyclegan") as caught:
        ExperimentConfig(method="cyclegan", train={"lr": {"G": 1e-3, "D_target": 1e-3}})
    assert "missing ['D']" in str(caught.value) and "not an optimizer: ['D_target']" in str(caught.value)


def test_discriminator_too_deep_for_the_patch_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="model.discriminator"):
        ExperimentConfig(
            method="cyclegan",
            data={"patch_size": [PATCH] * 3},
            model={"discriminator": {"name": "patchgan3d", "channels": 4, "num_layers_d": 3}},
            inference={"roi_size": [PATCH] * 3},
        )


def test_generator_phase_loss_combines_the_weighted_terms() -> None:
    torch.manual_seed(0)
    method = CycleGAN(tiny_config(lambda_cycle=10.0, lambda_identity=0.5))
    networks = method.build_networks()
    batch = unpaired_batch()
    loss, stats = run_phase(method, "G", networks, batch)
    assert set(stats) == G_STATS
    values = {key: float(value) for key, value in stats.items()}
    expected = values["adv"] + 10.0 * values["cycle"] + 0.5 * 10.0 * values["identity"]
    assert loss.item() == pytest.approx(expected, rel=1e-5) == values["loss"]
    assert values["health/g_adv"] == values["adv"]
    assert values["health/diversity_real"] == pytest.approx(float(batch["target"].std(dim=0).mean()))
    # the fakes are left for the D phase, detached
    assert batch["fake_target"].shape == batch["target"].shape and not batch["fake_target"].requires_grad
    assert values["health/diversity_fake"] == pytest.approx(float(batch["fake_target"].std(dim=0).mean()))
    loss.backward()
    for name in ("G", "F"):
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in networks[name].parameters())

    without_identity = CycleGAN(tiny_config(lambda_identity=0.0))
    _, stats_without_identity = run_phase(without_identity, "G", networks, unpaired_batch())
    assert set(stats_without_identity) == G_STATS - {"identity"}


def test_discriminator_phase_feeds_the_pools_in_the_state_slot() -> None:
    torch.manual_seed(0)
    method = CycleGAN(tiny_config())
    networks = method.build_networks()
    state = method.build_state()
    batch = unpaired_batch()
    run_phase(method, "G", networks, batch, state=state)
    assert int(state["pool_target"].num_stored) == 0  # only the D phase queries the pools
    loss, stats = run_phase(method, "D", networks, batch, state=state)
    assert torch.isfinite(loss) and set(stats) == D_STATS
    values = {key: float(value) for key, value in stats.items()}
    assert values["loss"] == pytest.approx(values["d_target"] + values["d_source"], rel=1e-6)
    assert loss.item() == pytest.approx(values["loss"], rel=1e-6)
    # health is the mean over the two discriminators
    for key in ("d_target_accuracy", "d_source_accuracy", "health/d_accuracy"):
        assert 0.0 <= values[key] <= 1.0, key
    assert values["health/d_accuracy"] == pytest.approx(
        0.5 * (values["d_target_accuracy"] + values["d_source_accuracy"])
    )
    # lsgan's chance level is 0.25 per discriminator
    expected_ratio = 0.5 * (values["d_target"] / 0.25 + values["d_source"] / 0.25)
    assert values["health/d_loss_ratio"] == pytest.approx(expected_ratio, rel=1e-5)
    assert int(state["pool_target"].num_stored) == 2 and int(state["pool_source"].num_stored) == 2
    assert torch.equal(state["pool_target"].images[:2], batch["fake_target"])
    assert torch.equal(state["pool_source"].images[:2], batch["fake_source"])
    loss.backward()
    assert all(p.grad is not None for p in networks["D_target"].parameters())
    assert all(p.grad is not None for p in networks["D_source"].parameters())
    assert all(p.grad is None for p in networks["G"].parameters())  # fakes are detached

    # without a preceding G phase the D phase makes its own fakes
    loss_alone, _ = run_phase(method, "D", networks, unpaired_batch(1), state=state)
    assert torch.isfinite(loss_alone) and int(state["pool_target"].num_stored) == 4
    assert int(state["pool_source"].num_stored) == 4


def test_pool_state_round_trips_through_its_state_dict() -> None:
    method = CycleGAN(tiny_config())
    networks = method.build_networks()
    state = method.build_state()
    for seed in range(3):
        run_phase(method, "D", networks, unpaired_batch(seed), state=state)
    restored = method.build_state()
    for name, pool in state.items():
        restored[name].load_state_dict(pool.state_dict())
    batch = unpaired_batch(7)
    torch.manual_seed(0)
    _, stats = run_phase(method, "D", networks, dict(batch), state=state)
    torch.manual_seed(0)
    _, restored_stats = run_phase(method, "D", networks, dict(batch), state=restored)
    assert {key: float(value) for key, value in stats.items()} == {
        key: float(value) for key, value in restored_stats.items()
    }
    for name in state:
        assert torch.equal(state[name].images, restored[name].images)
        assert torch.equal(state[name].rng_state, restored[name].rng_state)


def test_translate_validation_outputs_and_samples() -> None:
    torch.manual_seed(0)
    method = CycleGAN(tiny_config())
    networks = method.build_networks()
    for network in networks.values():
        network.eval()
    batch = unpaired_batch()
    prediction = method.translate(networks, batch["source"])
    assert prediction.shape == batch["source"].shape
    assert prediction.abs().max() <= 1.0
    item = {"source": batch["source"][:1], "target": batch["target"][:1], "body_mask": torch.ones(1, 1, *[PATCH] * 3)}
    outputs = method.infer_outputs(networks, item, InferenceContext(torch.device("cpu"), "fp32"))
    assert set(outputs) == {"source", "prediction", "target", "body_mask", "reconstruction"}
    assert outputs["reconstruction"].shape == item["source"].shape
    # the patch is one sliding window, so the outputs are the networks' own: G(source), F(G(source))
    with torch.no_grad():
        assert torch.allclose(outputs["prediction"], networks["G"](item["source"]), atol=1e-5)
        assert torch.allclose(outputs["reconstruction"], networks["F"](outputs["prediction"]), atol=1e-5)
    rows = method.sample_volumes(outputs)
    assert tuple(rows) == method.sample_names() == ("mri", "ct pred", "ct real", "|error| (net)", "mri cycle")
    assert all(isinstance(row, SampleVolume) and row.volume.shape == (PATCH,) * 3 for row in rows.values())
    assert rows["mri cycle"].window == (-1.0, 1.0)
    assert torch.equal(rows["mri cycle"].volume, outputs["reconstruction"][0, 0])


def test_a_few_optimisation_steps_reduce_the_cycle_loss() -> None:
    torch.manual_seed(0)
    method = CycleGAN(tiny_config())
    networks = method.build_networks()
    state = method.build_state()
    optimisers = {
        phase.optimizer_key: torch.optim.Adam(
            [p for name in phase.trains for p in networks[name].parameters()], lr=5e-3, betas=(0.5, 0.999)
        )
        for phase in method.phases()
    }
    batch_template = unpaired_batch()
    cycle_losses = []
    for step in range(10):
        batch = dict(batch_template)
        for phase in method.phases():
            optimisers[phase.optimizer_key].zero_grad(set_to_none=True)
            loss, stats = run_phase(method, phase.name, networks, batch, state=state, step=step)
            loss.backward()
            optimisers[phase.optimizer_key].step()
            if phase.name == "G":
                cycle_losses.append(float(stats["cycle"]))
    assert all(math.isfinite(value) for value in cycle_losses)
    assert sum(cycle_losses[-3:]) < 0.8 * sum(cycle_losses[:3])
    assert int(state["pool_target"].num_stored) == 4  # 10 steps x 2 fakes filled the 4 slots


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
        for key in ("health/d_accuracy", "D/d_target_accuracy", "D/d_source_accuracy"):
            assert 0.0 <= row[key] <= 1.0, key
        for key in ("health/d_real", "health/d_fake", "health/d_loss_ratio", "health/g_adv", "health/diversity_real"):
            assert math.isfinite(row[key]), key
    checkpoints = straight_run / "checkpoints"
    initial = load_file(str(checkpoints / "step_000000" / "networks.safetensors"))
    final = load_file(str(checkpoints / "step_000004" / "networks.safetensors"))
    assert {key.split(".")[0] for key in final} == {"G", "F", "D_target", "D_source"}  # no pool among the weights
    for network in ("G", "F", "D_target", "D_source"):
        keys = [key for key in final if key.startswith(f"{network}.") and final[key].is_floating_point()]
        assert any(not torch.equal(initial[key], final[key]) for key in keys), f"{network} did not change"
    # the pools were checkpointed full (4 steps x 2 fakes > 3 slots) in the method state, holding generated patches
    initial_pools = load_checkpoint_state(checkpoints / "step_000000")["method_state"]
    final_pools = load_checkpoint_state(checkpoints / "step_000004")["method_state"]
    assert set(final_pools) == {"pool_target", "pool_source"}
    assert int(initial_pools["pool_target"]["num_stored"]) == 0
    assert int(final_pools["pool_target"]["num_stored"]) == 3 and int(final_pools["pool_source"]["num_stored"]) == 3
    assert final_pools["pool_target"]["images"].abs().sum() > 0
    assert not torch.equal(initial_pools["pool_target"]["rng_state"], final_pools["pool_target"]["rng_state"])


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
    expected_state = load_checkpoint_state(straight_run / "checkpoints" / "step_000004")["method_state"]
    actual_state = load_checkpoint_state(resumed / "checkpoints" / "step_000004")["method_state"]
    assert expected_state.keys() == actual_state.keys() == {"pool_target", "pool_source"}
    for pool, tensors in expected_state.items():
        assert tensors.keys() == actual_state[pool].keys()
        for key, tensor in tensors.items():
            assert torch.equal(tensor, actual_state[pool][key]), f"{pool}.{key} differs after resume"


def test_trained_cyclegan_translates_with_its_generator(straight_run: Path) -> None:
    run = load_trained_run(straight_run)
    source = torch.rand(1, 1, PATCH, PATCH, PATCH) * 2 - 1
    prediction = run.translate(source)
    assert prediction.shape == source.shape
    assert prediction.abs().max() <= 1.0
    assert torch.equal(prediction, run.networks["G"](source))
