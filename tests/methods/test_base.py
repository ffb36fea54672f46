"""The method registry finds methods by name and explains unknown names; phases validate themselves."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

from medgan.config.schema import ExperimentConfig
from medgan.errors import ConfigError
from medgan.methods import (
    Batch,
    GanMethod,
    InferenceContext,
    NetworkDict,
    Phase,
    PhaseContext,
    PhaseLoss,
    SampleVolume,
    get_method,
    known_methods,
    register_method,
)


def constant_loss(context: PhaseContext, networks: Mapping[str, nn.Module], batch: Batch) -> PhaseLoss:
    """A phase loss that reports its context, so the test can see what the phase was called with."""
    loss = torch.tensor(float(context.step) * context.gain)
    return loss, {"loss": loss.detach(), "gain": torch.tensor(context.gain)}


def test_get_method_imports_method_module_on_first_use() -> None:
    method_class = get_method("pix2pix")
    assert issubclass(method_class, GanMethod)
    assert method_class.name == "pix2pix" and method_class.pairing == "paired"


def test_unknown_method_is_config_error_listing_known_ones() -> None:
    with pytest.raises(ConfigError) as caught:
        get_method("pix3pix")
    assert "pix3pix" in str(caught.value) and "pix2pix" in str(caught.value)
    assert "pix2pix" in known_methods()


def test_name_taken_by_another_class_is_refused() -> None:
    with pytest.raises(ValueError, match="already registered"):

        @register_method("pix2pix")
        class Impostor(GanMethod):  # noqa: F841 - registration is the point
            pass


def test_phase_interval_and_validation() -> None:
    regulariser = Phase("D_reg", trains=("D",), loss=constant_loss, interval=4, optimizer="D")
    assert [step for step in range(10) if regulariser.is_due(step)] == [0, 4, 8]
    assert regulariser.optimizer_key == "D"
    assert Phase("G", trains=("G",), loss=constant_loss).optimizer_key == "G"
    with pytest.raises(ValueError, match="trains no network"):
        Phase("G", trains=(), loss=constant_loss)
    with pytest.raises(ValueError, match="interval"):
        Phase("G", trains=("G",), loss=constant_loss, interval=0)
    late = Phase("D", trains=("D",), loss=constant_loss, start_step=3)
    assert [step for step in range(6) if late.is_due(step)] == [3, 4, 5]
    lazy_late = Phase("D_reg", trains=("D",), loss=constant_loss, interval=4, start_step=3)
    assert [step for step in range(12) if lazy_late.is_due(step)] == [3, 7, 11]
    with pytest.raises(ValueError, match="start_step"):
        Phase("D", trains=("D",), loss=constant_loss, start_step=-1)


def test_phase_carries_its_loss_function() -> None:
    regulariser = Phase("D_reg", trains=("D",), loss=constant_loss, interval=4, optimizer="D")
    context = PhaseContext(step=8, phase=regulariser, gain=float(regulariser.interval))
    assert context.state == {}
    loss, stats = regulariser.loss(context, {}, {})
    assert float(loss) == 32.0
    assert set(stats) == {"loss", "gain"} and all(isinstance(value, torch.Tensor) for value in stats.values())
    assert float(stats["gain"]) == 4.0


def test_optimizer_names_are_shared_and_in_first_use_order() -> None:
    class Regularised(GanMethod):  # an unregistered toy: only its phases matter here
        def training_stream(self, cache_dir: Path | None) -> Dataset:
            raise NotImplementedError

        def build_networks(self) -> NetworkDict:
            return {"G": nn.Linear(1, 1), "D": nn.Linear(1, 1)}

        def phases(self) -> tuple[Phase, ...]:
            return (
                Phase("G", trains=("G",), loss=constant_loss),
                Phase("D", trains=("D",), loss=constant_loss),
                Phase("D_reg", trains=("D",), loss=constant_loss, interval=16, optimizer="D"),
            )

        def infer_outputs(
            self, networks: Mapping[str, nn.Module], item: Mapping[str, torch.Tensor], context: InferenceContext
        ) -> dict[str, torch.Tensor]:
            return {}

        def sample_volumes(self, outputs: Mapping[str, torch.Tensor]) -> dict[str, SampleVolume]:
            return {}

    method = Regularised(ExperimentConfig())
    assert method.optimizer_names() == ("G", "D")
    assert method.build_state() == {} and method.sample_names() == () and method.validation_set() == []
