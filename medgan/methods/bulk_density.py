"""Bulk-density baseline: threshold-segment the MRI, assign each class its fitted CT value.

The network is :class:`medgan.models.bulk_density.BulkDensity3D` (config
``model.generator: {name: bulk_density3d, dark_threshold, closing_radius}``): a
fixed intensity/closing segmentation into air, soft tissue and bone, and one
learnable value per class. Why fit those three values by gradient descent rather
than with a separate "fit" pass of running averages: it keeps the baseline a
method like any other. It trains through the same engine (optimizer, lr schedule,
checkpoints, resume, logging, DDP) with one phase and no discriminator, and infers
through the same ``translate``, so the translate job and the benchmarks run it
unchanged. The loss is the L1 over the whole patch (air outside the head is a
class to learn too), whose per-class minimiser is the median CT value of the
class; Adam with a large learning rate (``train.lr.G`` around 1e-2) and the
linear decay settles on it in a few hundred steps.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch
from pydantic import Field
from torch import nn

from medgan.data.presets import get_preset
from medgan.errors import ConfigError
from medgan.losses import masked_l1
from medgan.methods.base import Batch, MethodOptions, NetworkDict, Phase, PhaseContext, PhaseLoss, register_method
from medgan.methods.options import NetworkSpec
from medgan.methods.translation import TranslationMethod
from medgan.models import BulkDensity3D, build_network
from medgan.models.bulk_density import CLASS_NAMES

if TYPE_CHECKING:
    from medgan.config.schema import ExperimentConfig


def _default_bulk_density() -> dict[str, Any]:
    return {"name": "bulk_density3d", "dark_threshold": -0.8, "closing_radius": 3}


class BulkDensityOptions(MethodOptions):
    """Bulk density: just the segmentation-and-values network (no discriminator, no loss weights)."""

    generator: NetworkSpec = Field(
        default_factory=_default_bulk_density,
        description="The bulk_density3d network: {name: bulk_density3d, dark_threshold, closing_radius}.",
    )


@register_method("bulk_density")
class BulkDensity(TranslationMethod):
    """Paired baseline: three-class MRI segmentation with CT values fitted to the training pairs."""

    pairing = "paired"
    options_model = BulkDensityOptions
    options: BulkDensityOptions
    default_lr = 1e-2

    def __init__(self, config: ExperimentConfig) -> None:
        super().__init__(config)
        generator_name = self.options.generator.get("name")
        if generator_name != "bulk_density3d":
            raise ConfigError(
                f"method bulk_density fits a bulk_density3d network, but model.generator.name is {generator_name!r}",
                fix="set model.generator to {name: bulk_density3d, dark_threshold: -0.8, closing_radius: 3}",
            )
        self.target_preset = get_preset(config.data.target_modality)

    def check_config(self) -> None:
        """The network must take the patch and the sliding window."""
        self.check_generator_input(self.options.generator)

    def build_networks(self) -> NetworkDict:
        """The single network ``G``: segmentation thresholds + the three class values."""
        network = build_network(self.options.generator)
        assert isinstance(network, BulkDensity3D)  # guaranteed by the name check in __init__
        return {"G": network}

    def phases(self) -> tuple[Phase, ...]:
        """One phase, ``G``, fitting the class values (learning rate ``train.lr.G``)."""
        return (Phase("G", trains=("G",), loss=self.fit_loss),)

    def ema_networks(self) -> tuple[str, ...]:
        """None: the fitted values themselves are the model (an EMA would only lag behind them)."""
        return ()

    def inference_network_names(self) -> tuple[str, ...]:
        """``translate`` needs ``G``."""
        return ("G",)

    def fit_loss(self, context: PhaseContext, networks: Mapping[str, nn.Module], batch: Batch) -> PhaseLoss:
        """L1 between the bulk-density image and the target over the whole patch; logs class values in units."""
        prediction = networks["G"](batch["source"])
        loss = masked_l1(prediction, batch["target"])
        stats = {"loss": loss.detach()}
        stats.update(self.class_values_in_units(networks["G"]))
        return loss, stats

    def class_values_in_units(self, network: nn.Module) -> dict[str, torch.Tensor]:
        """The fitted class values keyed ``value_<class>``: in the target's units (HU for CT) when its
        preset has a fixed window, else in network range."""
        bulk_density = getattr(network, "module", network)  # unwrap DistributedDataParallel
        assert isinstance(bulk_density, BulkDensity3D)
        values = bulk_density.class_values.detach().float().clamp(-1.0, 1.0)
        if self.target_preset.fixed_window is not None:
            values = self.target_preset.from_network(values)
        return {f"value_{name}": values[index] for index, name in enumerate(CLASS_NAMES)}

    def translate(self, networks: Mapping[str, nn.Module], source_net: torch.Tensor) -> torch.Tensor:
        """Bulk-density pseudo-target for ``source_net`` (B, 1, D, H, W) in [-1, 1]."""
        return networks["G"](source_net)
