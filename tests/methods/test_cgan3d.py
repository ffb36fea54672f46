"""cgan3d: conditional networks, the lazy R1 phase on D's optimizer, ADA adapting during training."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
from contract import CPU, build
from tiny_data import tiny_method_config

from medgan.errors import ConfigError
from medgan.methods.capabilities import capabilities_of
from medgan.models import build_network, input_requirement
from medgan.models.conditional import minibatch_std
from medgan.training.engine import Trainer


def test_generator_reaches_a_64_grid_in_range_and_the_label_changes_the_volume() -> None:
    torch.manual_seed(0)
    generator = build_network(
        {"name": "cond_generator3d", "out_size": [64, 64, 64], "out_channels": 2, "channels": [16, 8, 8, 4, 4]}
    ).eval()
    noise = torch.randn(1, 128).repeat(2, 1)
    with torch.no_grad():
        volumes = generator(noise, torch.tensor([0, 1]))
    assert volumes.shape == (2, 2, 64, 64, 64)
    assert float(volumes.abs().max()) <= 1.0
    # same noise, other class: the class-conditional norms must change the output
    assert float((volumes[0] - volumes[1]).abs().mean()) > 1e-4


def test_generator_refuses_a_grid_its_blocks_cannot_reach() -> None:
    with pytest.raises(ConfigError, match="multiple of 16"):
        build_network({"name": "cond_generator3d", "out_size": [40, 40, 40], "channels": [8, 8, 8, 8, 8]})


def test_projection_critic_scores_each_volume_and_uses_the_label() -> None:
    torch.manual_seed(0)
    critic = build_network({"name": "projection3d", "in_channels": 1, "num_classes": 3, "channels": [4, 8, 8]})
    images = torch.randn(2, 1, 16, 16, 16)
    scores = critic(images, torch.tensor([0, 0]))
    assert scores.shape == (2, 1)
    assert not torch.allclose(scores, critic(images, torch.tensor([2, 2])))
    parametrized = [name for name, _ in critic.named_modules() if name.endswith("parametrizations.weight")]
    assert len(parametrized) >= 7  # every conv, the linear head and the class embedding are spectrally normalised
    assert input_requirement({"name": "projection3d", "channels": [4, 8, 8]}).multiple == 8  # 3 halvings


def test_the_method_samples_and_declares_its_phases(tiny_datalist: Path) -> None:
    _, method = build(tiny_method_config(tiny_datalist, "cgan3d"))
    assert capabilities_of(method) == ["sample"]
    assert [(phase.name, phase.interval, phase.optimizer_key) for phase in method.phases()] == [
        ("G", 1, "G"),
        ("D", 1, "D"),
        ("D_reg", 2, "D"),
    ]
    assert method.ema_networks() == ("G",)


def test_r1_phase_steps_d_optimizer_with_the_interval_correction(tiny_datalist: Path, tmp_path: Path) -> None:
    config_dict = tiny_method_config(tiny_datalist, "cgan3d")
    config_dict["train"]["lr"] = {"G": 1e-4, "D": 3e-4}
    config_dict["train"]["betas"] = [0.0, 0.99]
    config, method = build(config_dict)
    trainer = Trainer(config, tmp_path / "run", CPU, quiet=True, method=method)
    assert set(trainer.optimizers) == {"G", "D"}  # D_reg has no optimizer of its own
    ratio = 2 / 3  # interval 2: c = k / (k + 1)
    group = trainer.optimizers["D"].param_groups[0]
    assert group["lr"] == pytest.approx(3e-4 * ratio)
    assert group["betas"] == pytest.approx((0.0, 0.99**ratio))
    assert trainer.optimizers["G"].param_groups[0]["lr"] == pytest.approx(1e-4)
    batch = next(trainer._batches())
    stats, nonfinite = trainer.train_step(batch)  # step 0: G, D and D_reg are all due
    assert not nonfinite and float(stats["D_reg/r1"]) > 0 and torch.isfinite(stats["D_reg/loss"])


def overfitting_config(tiny_datalist: Path, steps: int) -> dict:
    """D learns fast, G hardly at all: D soon tells the two training volumes from noise, as on tiny data sets."""
    config = copy.deepcopy(tiny_method_config(tiny_datalist, "cgan3d", steps=steps, sample_every=0))
    config["model"]["ada"] = {"initial_p": 0.0, "interval": 1, "speed_images": 16, "target": 0.6}
    config["train"]["lr"] = {"G": 1e-8, "D": 2e-3}
    config["train"]["checkpoint_every"] = steps
    config["train"]["validate_every"] = 0
    return config


def test_ada_p_rises_when_the_discriminator_overfits_and_is_logged(tiny_datalist: Path, tmp_path: Path) -> None:
    config, method = build(overfitting_config(tiny_datalist, steps=16))
    trainer = Trainer(config, tmp_path / "run", CPU, quiet=True, method=method)
    trainer.fit()
    augment = trainer.method_state["ada"]
    assert 0.0 < augment.probability <= 1.0
    assert float(augment.last_rt) > 0.6  # it rose because D was sure of the reals
    logged = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    probabilities = [row["health/ada_p"] for row in logged if "health/ada_p" in row]
    assert probabilities and probabilities[-1] >= probabilities[0]


def test_sampling_never_augments(tiny_datalist: Path) -> None:
    """ADA only touches what D sees: sampling is the generator's output, whatever p is."""
    _, method = build(tiny_method_config(tiny_datalist, "cgan3d"))
    networks = method.build_networks()
    for module in networks.values():
        module.eval()
    state = method.build_state()
    state["ada"].p.fill_(1.0)
    noise, labels = torch.randn(2, 8), torch.tensor([0, 1])
    with torch.no_grad():
        torch.testing.assert_close(method.sample(networks, noise, labels), networks["G"](noise, labels))


def test_images_must_be_known_presets(tiny_datalist: Path) -> None:
    config = tiny_method_config(tiny_datalist, "cgan3d")
    config["model"]["images"] = {"ct": "pet"}
    with pytest.raises(ConfigError, match="pet"):
        build(config)


def test_minibatch_std_lets_the_critic_see_a_batch_of_copies() -> None:
    torch.manual_seed(0)
    spec = {"name": "projection3d", "in_channels": 1, "num_classes": 2, "channels": [4, 8]}
    plain, with_std = build_network(spec).eval(), build_network({**spec, "minibatch_std_group": 4}).eval()  # eval: no power step
    volume, others = torch.randn(1, 1, 8, 8, 8), torch.randn(3, 1, 8, 8, 8)
    labels = torch.zeros(4, dtype=torch.long)
    diverse, copies = torch.cat([volume, others]), volume.expand(4, -1, -1, -1, -1)
    # without it a volume's score ignores its batch; with it, the same volume scores otherwise among copies
    assert torch.allclose(plain(diverse, labels)[0], plain(copies, labels)[0], atol=1e-6)
    assert not torch.allclose(with_std(diverse, labels)[0], with_std(copies, labels)[0], atol=1e-4)
    features = torch.randn(6, 3, 2, 2, 2)
    channel = minibatch_std(features, 4)  # 6 is not a multiple of 4: groups of 3 (members 0, 2, 4 and 1, 3, 5)
    expected = features.reshape(3, 2, 3, 2, 2, 2).std(dim=0, unbiased=False).mean(dim=(1, 2, 3, 4))
    assert channel.shape == (6, 1, 2, 2, 2)
    assert torch.allclose(channel[:, 0, 0, 0, 0], expected.repeat(3), atol=1e-4)
    assert float(minibatch_std(features[:1], 4).abs().max()) < 1e-3  # a batch of one: no spread
