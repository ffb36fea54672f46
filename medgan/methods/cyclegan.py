"""CycleGAN: unpaired source -> target translation (e.g. MRI -> pseudo-CT of other subjects).

Zhu, Park, Isola & Efros, "Unpaired Image-to-Image Translation using
Cycle-Consistent Adversarial Networks", ICCV 2017. Two generators, ``G``
(source -> target) and ``F`` (target -> source), two discriminators, ``D_target``
(real target vs ``G(source)``) and ``D_source`` (real source vs ``F(target)``).
The generators minimise

    lambda_adv * (adv(D_target(G(s))) + adv(D_source(F(t))))
    + lambda_cycle * (|F(G(s)) - s| + |G(F(t)) - t|)
    + lambda_identity * lambda_cycle * (|G(t) - t| + |F(s) - s|)

(least-squares adversarial loss by default, as in the paper; identity weight 0.5 x
the cycle weight, as in the authors' code). The discriminators see generated
samples through history pools (:mod:`medgan.methods.image_pool`), which live in
the networks dict as ``pool_target`` / ``pool_source`` so the engine checkpoints
them with the weights. ``translate`` uses ``G`` (its EMA copy at inference).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import torch
from torch import nn

from medgan.errors import ConfigError
from medgan.losses import build_adversarial_loss, masked_l1
from medgan.methods.base import Batch, GanMethod, NetworkDict, Phase, PhaseLoss, register_method
from medgan.methods.image_pool import ImagePool, derive_seed
from medgan.models import build_network

if TYPE_CHECKING:
    from medgan.config.schema import ExperimentConfig

# Random-stream ids of the two pools (see derive_seed).
_TARGET_POOL_STREAM = 1
_SOURCE_POOL_STREAM = 2


@register_method("cyclegan")
class CycleGAN(GanMethod):
    """Unpaired translation with cycle consistency, identity loss and discriminator history pools."""

    pairing = "unpaired"

    def __init__(self, config: ExperimentConfig) -> None:
        super().__init__(config)
        losses = config.model.losses
        if losses.lambda_adv <= 0:
            raise ConfigError(
                "cyclegan needs an adversarial loss (model.losses.lambda_adv > 0): unpaired training has no "
                "other signal tying the generated images to the target domain",
                fix="set model.losses.lambda_adv to 1.0, or use method: pix2pix for an L1-only paired model",
            )
        generator_spec = config.model.generator
        self.source_channels = int(generator_spec.get("in_channels", 1))
        self.target_channels = int(generator_spec.get("out_channels", 1))
        if losses.lambda_identity > 0 and self.source_channels != self.target_channels:
            raise ConfigError(
                f"cyclegan's identity loss feeds target images to the source -> target generator, which needs "
                f"equal channel counts (generator in_channels={self.source_channels}, "
                f"out_channels={self.target_channels})",
                fix="set model.losses.lambda_identity: 0",
            )
        self.adversarial_loss = build_adversarial_loss(losses.adversarial)
        self.lambda_adv = losses.lambda_adv
        self.lambda_cycle = losses.lambda_cycle
        self.identity_weight = losses.lambda_identity * losses.lambda_cycle

    def build_networks(self) -> NetworkDict:
        """G / F generators, D_target / D_source discriminators and the two history pools."""
        generator_spec = dict(self.config.model.generator)
        inverse_spec = {**generator_spec, "in_channels": self.target_channels, "out_channels": self.source_channels}
        discriminator_spec = dict(self.config.model.discriminator)
        patch_size = tuple(self.config.data.patch_size)
        pool_size = self.config.model.losses.pool_size
        seed = self.config.train.seed
        return {
            "G": build_network(generator_spec),
            "F": build_network(inverse_spec),
            "D_target": build_network({**discriminator_spec, "in_channels": self.target_channels}),
            "D_source": build_network({**discriminator_spec, "in_channels": self.source_channels}),
            "pool_target": ImagePool(
                pool_size, (self.target_channels, *patch_size), seed=derive_seed(seed, _TARGET_POOL_STREAM)
            ),
            "pool_source": ImagePool(
                pool_size, (self.source_channels, *patch_size), seed=derive_seed(seed, _SOURCE_POOL_STREAM)
            ),
        }

    def phases(self) -> tuple[Phase, ...]:
        """Generators first (they leave their fakes in the batch), then both discriminators."""
        return (Phase("G", trains=("G", "F")), Phase("D", trains=("D_target", "D_source")))

    def ema_networks(self) -> tuple[str, ...]:
        """Only the source -> target generator is used at inference, so only it keeps an EMA copy."""
        return ("G",)

    def phase_loss(self, phase_name: str, networks: Mapping[str, nn.Module], batch: Batch) -> PhaseLoss:
        """Loss of the ``G`` phase (both generators) or the ``D`` phase (both discriminators)."""
        if phase_name == "G":
            return self._generator_loss(networks, batch)
        if phase_name == "D":
            return self._discriminator_loss(networks, batch)
        raise KeyError(f"cyclegan has phases G and D, not {phase_name!r}")

    def _generator_loss(self, networks: Mapping[str, nn.Module], batch: Batch) -> PhaseLoss:
        source, target = batch["source"], batch["target"]
        generator, inverse = networks["G"], networks["F"]
        fake_target = generator(source)
        fake_source = inverse(target)
        adversarial = self.adversarial_loss.generator_loss(
            networks["D_target"](fake_target)
        ) + self.adversarial_loss.generator_loss(networks["D_source"](fake_source))
        cycle = masked_l1(inverse(fake_target), source) + masked_l1(generator(fake_source), target)
        loss = self.lambda_adv * adversarial + self.lambda_cycle * cycle
        logs = {"adv": float(adversarial.detach()), "cycle": float(cycle.detach())}
        if self.identity_weight > 0:
            identity = masked_l1(generator(target), target) + masked_l1(inverse(source), source)
            loss = loss + self.identity_weight * identity
            logs["identity"] = float(identity.detach())
        logs["loss"] = float(loss.detach())
        batch["fake_target"] = fake_target.detach()
        batch["fake_source"] = fake_source.detach()
        return loss, logs

    def _discriminator_loss(self, networks: Mapping[str, nn.Module], batch: Batch) -> PhaseLoss:
        if "fake_target" not in batch:  # the G phase did not run on this batch
            with torch.no_grad():
                batch["fake_target"] = networks["G"](batch["source"])
                batch["fake_source"] = networks["F"](batch["target"])
        pooled_target = networks["pool_target"](batch["fake_target"])
        pooled_source = networks["pool_source"](batch["fake_source"])
        real_target_logits = networks["D_target"](batch["target"])
        real_source_logits = networks["D_source"](batch["source"])
        loss_target = self.adversarial_loss.discriminator_loss(real_target_logits, networks["D_target"](pooled_target))
        loss_source = self.adversarial_loss.discriminator_loss(real_source_logits, networks["D_source"](pooled_source))
        loss = loss_target + loss_source
        logs = {
            "loss": float(loss.detach()),
            "d_target": float(loss_target.detach()),
            "d_source": float(loss_source.detach()),
            "d_target_real": float(real_target_logits.detach().float().mean()),
            "d_source_real": float(real_source_logits.detach().float().mean()),
        }
        return loss, logs

    def translate(self, networks: Mapping[str, nn.Module], source_net: torch.Tensor) -> torch.Tensor:
        """Source -> target with ``G``; (B, C, D, H, W) in [-1, 1] in and out."""
        return networks["G"](source_net)

    def sample_outputs(self, networks: Mapping[str, nn.Module], batch: Batch) -> dict[str, torch.Tensor]:
        """Source, its translation, its cycle reconstruction F(G(source)), and a (different-subject) target."""
        with torch.no_grad():
            prediction = networks["G"](batch["source"])
            reconstruction = networks["F"](prediction)
        return {
            "source": batch["source"],
            "prediction": prediction,
            "reconstruction": reconstruction,
            "target": batch["target"],
        }
