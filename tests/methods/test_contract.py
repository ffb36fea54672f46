"""Every registered method passes the method contract; broken toy methods do not.

Adding a method means adding its tiny ``model`` section to ``TINY_METHOD_MODELS``
in tests/tiny_data.py; then these tests run on it automatically.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest
from contract import (
    check_metrics_and_samples,
    check_networks_and_phases,
    check_one_step_is_finite,
    check_options_reject_foreign_keys,
    check_resume_is_exact,
)
from pydantic import ConfigDict
from tiny_data import TINY_METHOD_MODELS, tiny_method_config
from torch import nn

from medgan.methods.base import Batch, PhaseContext, PhaseLoss, known_methods, register_method, unregister_method
from medgan.methods.pix2pix import Pix2Pix, Pix2PixOptions

METHODS = known_methods()


def test_every_registered_method_has_a_tiny_config() -> None:
    assert {"pix2pix", "cyclegan", "bulk_density"} <= set(METHODS)
    assert set(METHODS) <= set(TINY_METHOD_MODELS), "add the new method's tiny model to tests/tiny_data.py"


@pytest.mark.parametrize("method", METHODS)
def test_networks_and_phases(method: str, tiny_datalist: Path) -> None:
    check_networks_and_phases(tiny_method_config(tiny_datalist, method))


@pytest.mark.parametrize("method", METHODS)
def test_one_step_is_finite(method: str, tiny_datalist: Path, tmp_path: Path) -> None:
    check_one_step_is_finite(tiny_method_config(tiny_datalist, method), tmp_path / "run")


@pytest.mark.parametrize("method", METHODS)
def test_resume_is_bit_exact(method: str, tiny_datalist: Path, tmp_path: Path) -> None:
    check_resume_is_exact(tiny_method_config(tiny_datalist, method, validate_every=0, sample_every=0), tmp_path)


@pytest.mark.parametrize("method", METHODS)
def test_metrics_and_samples_have_the_declared_keys(method: str, tiny_datalist: Path) -> None:
    check_metrics_and_samples(tiny_method_config(tiny_datalist, method))


@pytest.mark.parametrize("method", METHODS)
def test_options_reject_foreign_keys(method: str, tiny_datalist: Path) -> None:
    check_options_reject_foreign_keys(tiny_method_config(tiny_datalist, method))


# ---- the contract catches broken methods -----------------------------------------------------------


class LeakyStatePix2Pix(Pix2Pix):
    """Keeps a step counter in a Python attribute instead of the state slot: resume cannot restore it."""

    def __init__(self, config) -> None:  # noqa: ANN001
        super().__init__(config)
        self.calls = 0

    def generator_loss(self, context: PhaseContext, networks: Mapping[str, nn.Module], batch: Batch) -> PhaseLoss:
        loss, stats = super().generator_loss(context, networks, batch)
        self.calls += 1
        return loss * (1.0 + 0.5 * self.calls), stats


class LooseOptions(Pix2PixOptions):
    """Options that accept any key: a foreign option would pass silently."""

    model_config = ConfigDict(extra="allow")


class LooseOptionsPix2Pix(Pix2Pix):
    options_model = LooseOptions


@pytest.fixture
def toy_method():  # noqa: ANN201
    """Register a toy method class under a test name for the duration of one test."""
    registered: list[str] = []

    def register(name: str, cls: type) -> str:
        register_method(name)(cls)
        registered.append(name)
        return name

    yield register
    for name in registered:
        unregister_method(name)


def _toy_config(datalist: Path, name: str, **train: object) -> dict:
    return {**tiny_method_config(datalist, "pix2pix", **train), "method": name}


def test_contract_catches_state_kept_outside_the_state_slot(toy_method, tiny_datalist: Path, tmp_path: Path) -> None:
    name = toy_method("leaky_state_toy", LeakyStatePix2Pix)
    config = _toy_config(tiny_datalist, name, validate_every=0, sample_every=0)
    with pytest.raises(AssertionError, match="differs after resume"):
        check_resume_is_exact(config, tmp_path)


def test_contract_catches_options_that_accept_foreign_keys(toy_method, tiny_datalist: Path) -> None:
    name = toy_method("loose_options_toy", LooseOptionsPix2Pix)
    with pytest.raises(AssertionError, match="accepted the foreign option"):
        check_options_reject_foreign_keys(_toy_config(tiny_datalist, name))
