"""pix2pix builds a conditional D, computes finite losses, learns, and drops D when lambda_adv is 0."""

from __future__ import annotations

import pytest
import torch
from phase_calls import run_phase

from medgan.config.schema import ExperimentConfig
from medgan.errors import ConfigError
from medgan.methods import get_method
from medgan.methods.pix2pix import Pix2PixOptions

TINY_MODEL = {
    "generator": {"name": "unet3d", "channels": [4, 8], "strides": [2], "num_res_units": 0},
    "discriminator": {"name": "patchgan3d", "channels": 4, "num_layers_d": 2},
}


def _method(**losses: object):  # noqa: ANN202
    config = ExperimentConfig.model_validate({"model": {**TINY_MODEL, "losses": losses}})
    return get_method("pix2pix")(config)


def _batch() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    source = torch.rand(2, 1, 16, 16, 16, generator=generator) * 2 - 1
    target = -source.clone()
    body_mask = (source > -0.5).float()
    return {"source": source, "target": target, "body_mask": body_mask}


def test_phases_networks_and_conditioned_discriminator() -> None:
    method = _method(instance_noise=0.0)  # deterministic critic inputs, recomputed below
    assert isinstance(method.options, Pix2PixOptions)
    networks = method.build_networks()
    assert [phase.name for phase in method.phases()] == ["G", "D"]
    assert [phase.trains for phase in method.phases()] == [("G",), ("D",)]
    assert method.optimizer_names() == ("G", "D") and method.build_state() == {}
    assert method.ema_networks() == ("G",)
    assert networks["D"].in_channels == 2  # source and target, concatenated
    batch = _batch()
    g_loss, g_stats = run_phase(method, "G", networks, batch)
    assert "fake_target" in batch and not batch["fake_target"].requires_grad
    d_loss, d_stats = run_phase(method, "D", networks, batch)
    assert torch.isfinite(g_loss) and torch.isfinite(d_loss)
    assert float(g_stats["loss"]) == pytest.approx(g_loss.item(), rel=1e-6)
    assert float(g_stats["loss"]) == pytest.approx(100.0 * float(g_stats["l1"]) + float(g_stats["adv"]), rel=1e-5)
    assert set(g_stats) == {
        "loss",
        "l1",
        "adv",
        "health/g_adv",
        "health/diversity_fake",
        "health/diversity_real",
    }
    assert float(g_stats["health/g_adv"]) == float(g_stats["adv"])
    assert float(g_stats["health/diversity_real"]) == pytest.approx(float(batch["target"].std(dim=0).mean()))
    assert float(d_stats["loss"]) == pytest.approx(d_loss.item(), rel=1e-6)
    assert set(d_stats) == {"loss", "health/d_real", "health/d_fake", "health/d_accuracy", "health/d_loss_ratio"}
    with torch.no_grad():
        # D judges the body: air outside the body mask for real and generated alike
        real = networks["D"](
            torch.cat([batch["source"], method.body_only(batch["target"], batch["body_mask"], "ct")], 1)
        )
        fake = networks["D"](
            torch.cat([batch["source"], method.body_only(batch["fake_target"], batch["body_mask"], "ct")], 1)
        )
    # lsgan decides "real" above 0.5; accuracy is the mean of the real and fake hit rates
    accuracy = 0.5 * (float((real > 0.5).float().mean()) + float((fake <= 0.5).float().mean()))
    assert 0.0 <= float(d_stats["health/d_accuracy"]) <= 1.0
    assert float(d_stats["health/d_accuracy"]) == pytest.approx(accuracy)
    assert float(d_stats["health/d_real"]) == pytest.approx(float(real.mean()), rel=1e-5)
    assert float(d_stats["health/d_fake"]) == pytest.approx(float(fake.mean()), rel=1e-5)
    # lsgan's chance level: D outputs 0.5 everywhere, 0.5 * (0.25 + 0.25) = 0.25
    assert float(d_stats["health/d_loss_ratio"]) == pytest.approx(d_loss.item() / 0.25, rel=1e-5)
    assert method.translate(networks, batch["source"]).shape == batch["source"].shape


def test_discriminator_phase_makes_its_own_fake_without_a_generator_phase() -> None:
    torch.manual_seed(0)
    method = _method()
    networks = method.build_networks()
    batch = _batch()
    d_loss, d_stats = run_phase(method, "D", networks, batch)
    assert torch.isfinite(d_loss) and 0.0 <= float(d_stats["health/d_accuracy"]) <= 1.0
    d_loss.backward()
    assert all(p.grad is not None for p in networks["D"].parameters())
    assert all(p.grad is None for p in networks["G"].parameters())


def test_l1_is_weighted_by_the_body_mask() -> None:
    method = _method(lambda_adv=0.0, background_l1_weight=0.0)
    networks = method.build_networks()
    batch = _batch()
    _, masked_stats = run_phase(method, "G", networks, dict(batch))
    batch_without_mask = {key: value for key, value in batch.items() if key != "body_mask"}
    _, plain_stats = run_phase(method, "G", networks, batch_without_mask)
    with torch.no_grad():
        error = (networks["G"](batch["source"]) - batch["target"]).abs()
    mask = batch["body_mask"]
    assert abs(float(masked_stats["l1"]) - float((error * mask).sum() / mask.sum())) < 1e-5
    assert abs(float(plain_stats["l1"]) - float(error.mean())) < 1e-5
    weighted = _method(lambda_adv=0.0, background_l1_weight=0.25)
    _, weighted_stats = run_phase(weighted, "G", networks, dict(batch))
    weights = mask + 0.25 * (1 - mask)
    assert abs(float(weighted_stats["l1"]) - float((error * weights).sum() / weights.sum())) < 1e-5


def test_l1_only_unet_has_no_discriminator_and_learns() -> None:
    torch.manual_seed(0)
    method = _method(lambda_adv=0.0)
    networks = method.build_networks()
    assert set(networks) == {"G"} and [phase.name for phase in method.phases()] == ["G"]
    assert method.optimizer_names() == ("G",)
    optimizer = torch.optim.Adam(networks["G"].parameters(), lr=1e-2)
    batch = _batch()
    losses = []
    for step in range(8):
        optimizer.zero_grad()
        loss, stats = run_phase(method, "G", networks, dict(batch), step=step)
        assert set(stats) == {"loss", "l1"}  # no adversarial term, so no health statistics either
        loss.backward()
        optimizer.step()
        losses.append(float(stats["l1"]))
    assert losses[-1] < 0.8 * losses[0]


def test_adversarial_start_trains_the_l1_alone_before_the_critic_joins() -> None:
    config = ExperimentConfig.model_validate(
        {"model": {**TINY_MODEL, "losses": {"adversarial_start": 0.25}}, "train": {"steps": 40}}
    )
    method = get_method("pix2pix")(config)
    networks = method.build_networks()
    assert set(networks) == {"G", "D"} and method.optimizer_names() == ("G", "D")
    critic = {phase.name: phase for phase in method.phases()}["D"]
    assert [step for step in range(40) if critic.is_due(step)] == list(range(10, 40))  # from 0.25 * 40 on
    batch = _batch()
    _, warmup_stats = run_phase(method, "G", networks, dict(batch), step=9)
    assert set(warmup_stats) == {"loss", "l1"}  # the L1-only U-Net: no adversarial term yet
    assert float(warmup_stats["loss"]) == pytest.approx(100.0 * float(warmup_stats["l1"]), rel=1e-6)
    _, gan_stats = run_phase(method, "G", networks, dict(batch), step=10)
    assert "adv" in gan_stats and "health/g_adv" in gan_stats
    with pytest.raises(ConfigError, match="adversarial_start"):
        get_method("pix2pix")(
            ExperimentConfig.model_validate({"model": {**TINY_MODEL, "losses": {"adversarial_start": 1.0}}})
        )


def test_options_are_validated_against_pix2pix() -> None:
    with pytest.raises(ConfigError, match="pool_size") as caught:
        ExperimentConfig.model_validate({"model": {**TINY_MODEL, "losses": {"pool_size": 4}}})
    assert "pix2pix" in str(caught.value) and "cyclegan" in str(caught.value)  # whose option it is


def test_learning_rates_default_to_the_methods_optimizers_or_must_name_them() -> None:
    config = ExperimentConfig.model_validate({"model": TINY_MODEL})
    assert config.train.lr == {"G": 2e-4, "D": 2e-4}
    l1_only = ExperimentConfig.model_validate({"model": {**TINY_MODEL, "losses": {"lambda_adv": 0.0}}})
    assert l1_only.train.lr == {"G": 2e-4}
    with pytest.raises(ConfigError, match="train.lr") as caught:
        ExperimentConfig.model_validate({"model": TINY_MODEL, "train": {"lr": {"G": 1e-3}}})
    assert "missing ['D']" in str(caught.value)
    with pytest.raises(ConfigError, match="not an optimizer") as caught:
        ExperimentConfig.model_validate(
            {"model": {**TINY_MODEL, "losses": {"lambda_adv": 0.0}}, "train": {"lr": {"G": 1e-3, "D": 1e-3}}}
        )
    assert "['D']" in str(caught.value)


def test_patch_too_small_for_the_networks_is_a_config_error() -> None:
    deep = {**TINY_MODEL, "generator": {"name": "unet3d", "channels": [4, 8, 16], "strides": [2, 2]}}
    with pytest.raises(ConfigError, match="data.patch_size"):
        ExperimentConfig.model_validate({"model": deep, "data": {"patch_size": [6, 6, 6]}})


def test_the_critic_sees_air_outside_the_body_and_instance_noise() -> None:
    method = _method(instance_noise=0.05)
    batch = _batch()
    batch["body_mask"] = torch.zeros_like(batch["body_mask"])
    batch["body_mask"][..., 4:12, 4:12, 4:12] = 1.0
    pair = method._critic_input(batch, batch["target"])
    target_seen = pair[:, 1:]
    outside = batch["body_mask"] == 0
    air = method.background_net("ct")
    assert abs(float(target_seen[outside].mean()) - air) < 0.01  # air, up to the noise
    assert float(target_seen[outside].std()) == pytest.approx(0.05, rel=0.1)  # the instance noise
    assert float((pair[:, :1] - batch["source"]).std()) == pytest.approx(0.05, rel=0.1)
