"""The shipped cyclegan, bulk-density and L1-only U-Net configs load, build and take a step."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from phase_calls import run_phase

from medgan.config.loader import load_config
from medgan.config.schema import ExperimentConfig
from medgan.methods.base import get_method

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def load(name: str) -> ExperimentConfig:
    return load_config(CONFIGS / f"{name}.yaml", ExperimentConfig)


@pytest.mark.parametrize(
    ("name", "networks", "state", "phases"),
    [
        ("cyclegan_mri2ct", {"G", "F", "D_target", "D_source"}, {"pool_target", "pool_source"}, ["G", "D"]),
        ("bulk_density_mri2ct", {"G"}, set(), ["G"]),
        ("unet_l1_mri2ct", {"G"}, set(), ["G"]),
    ],
)
def test_config_builds_its_method_and_one_step_is_finite(
    name: str, networks: set[str], state: set[str], phases: list[str]
) -> None:
    config = load(name)
    assert config.data.datalist == Path("sample_data/datalist.json")
    method = get_method(config.method)(config)
    assert isinstance(config.model, method.options_model)
    built = method.build_networks()
    assert set(built) == networks
    method_state = method.build_state()
    assert set(method_state) == state
    assert [phase.name for phase in method.phases()] == phases
    assert set(method.optimizer_names()) == set(config.train.lr)
    torch.manual_seed(0)
    shape = (2, 1, *config.data.patch_size)  # two samples, so the batch-diversity health stats are defined
    batch = {"source": torch.rand(shape) * 2 - 1, "target": torch.rand(shape) * 2 - 1, "body_mask": torch.ones(shape)}
    for phase in method.phases():
        loss, stats = run_phase(method, phase.name, built, batch, state=method_state)
        assert torch.isfinite(loss) and "loss" in stats
        assert all(torch.isfinite(value) for value in stats.values()), stats


def test_unet_l1_is_pix2pix_without_the_adversarial_term() -> None:
    unet_l1, pix2pix = load("unet_l1_mri2ct"), load("pix2pix_mri2ct")
    assert unet_l1.method == pix2pix.method == "pix2pix"
    assert unet_l1.model.losses.lambda_adv == 0.0 and pix2pix.model.losses.lambda_adv > 0
    # the same generator, data and schedule, so the two runs differ only in the critic
    assert unet_l1.model.generator == pix2pix.model.generator
    critic_only = {"lambda_adv", "adversarial_start"}  # the warm-up before the critic joins: no critic, no warm-up
    assert unet_l1.model.losses.model_dump(exclude=critic_only) == pix2pix.model.losses.model_dump(exclude=critic_only)
    assert unet_l1.data == pix2pix.data
    assert unet_l1.train.steps == pix2pix.train.steps and unet_l1.train.lr["G"] == pix2pix.train.lr["G"]


def test_cyclegan_config_follows_the_paper_but_for_the_identity_loss() -> None:
    """The paper's loss, cycle weight and pool; no identity term (MRI and CT intensities mean different things)."""
    losses = load("cyclegan_mri2ct").model.losses
    assert (losses.adversarial, losses.lambda_cycle, losses.lambda_identity, losses.pool_size) == (
        "lsgan",
        10.0,
        0.0,
        50,
    )
