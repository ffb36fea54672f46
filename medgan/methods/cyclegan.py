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
samples through history pools (:mod:`medgan.methods.image_pool`), kept in the
method's state slot (``pool_target`` / ``pool_source``): the engine checkpoints
and restores them exactly but does not treat them as networks. ``translate``
uses ``G`` (its EMA copy at inference); the sample montage adds the cycle
reconstruction ``F(G(source))``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import torch
from pydantic import Field
from torch import nn

from medgan.errors import ConfigError
from medgan.losses import batch_diversity, build_adversarial_loss, discriminator_health, masked_l1, with_instance_noise
from medgan.methods.base import (
    Batch,
    InferenceContext,
    MethodOptions,
    NetworkDict,
    Phase,
    PhaseContext,
    PhaseLoss,
    SampleVolume,
    Stateful,
    register_method,
)
from medgan.methods.image_pool import ImagePool, derive_seed
from medgan.methods.options import AdversarialOptions, NetworkSpec, discriminator_field, generator_field
from medgan.methods.translation import NETWORK_WINDOW, TranslationMethod
from medgan.models import build_network

if TYPE_CHECKING:
    from medgan.config.schema import ExperimentConfig

# Random-stream ids of the two pools (see derive_seed).
_TARGET_POOL_STREAM = 1
_SOURCE_POOL_STREAM = 2


class CycleGANLosses(AdversarialOptions):
    """CycleGAN's loss kinds and weights."""

    lambda_cycle: float = Field(10.0, ge=0.0, description="Weight of the cycle-consistency L1.")
    lambda_identity: float = Field(0.5, ge=0.0, description="Identity loss weight, as a fraction of lambda_cycle.")
    pool_size: int = Field(50, ge=0, description="History pool of generated images shown to each D (0 = off).")


class CycleGANOptions(MethodOptions):
    """CycleGAN: one generator spec (F is G's spec with channels swapped), one discriminator spec, losses."""

    generator: NetworkSpec = generator_field()
    discriminator: NetworkSpec = discriminator_field()
    losses: CycleGANLosses = Field(default_factory=CycleGANLosses, description="Loss kinds and weights.")


@register_method("cyclegan")
class CycleGAN(TranslationMethod):
    """Unpaired translation with cycle consistency, identity loss and discriminator history pools."""

    pairing = "unpaired"
    options_model = CycleGANOptions
    options: CycleGANOptions

    def __init__(self, config: ExperimentConfig) -> None:
        super().__init__(config)
        losses = self.options.losses
        if losses.lambda_adv <= 0:
            raise ConfigError(
                "cyclegan needs an adversarial loss (model.losses.lambda_adv > 0): unpaired training has no "
                "other signal tying the generated images to the target domain",
                fix="set model.losses.lambda_adv to 1.0, or use method: pix2pix for an L1-only paired model",
            )
        generator_spec = self.options.generator
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
        self.instance_noise = losses.instance_noise
        self.lambda_adv = losses.lambda_adv
        self.lambda_cycle = losses.lambda_cycle
        self.identity_weight = losses.lambda_identity * losses.lambda_cycle

    def _specs(self) -> dict[str, dict]:
        generator_spec = dict(self.options.generator)
        discriminator_spec = dict(self.options.discriminator)
        return {
            "G": generator_spec,
            "F": {**generator_spec, "in_channels": self.target_channels, "out_channels": self.source_channels},
            "D_target": {**discriminator_spec, "in_channels": self.target_channels},
            "D_source": {**discriminator_spec, "in_channels": self.source_channels},
        }

    def check_config(self) -> None:
        """The generators must take the patch and the window; the critics the patch."""
        specs = self._specs()
        self.check_generator_input(specs["G"])
        self.check_discriminator_input(specs["D_target"])

    def build_networks(self) -> NetworkDict:
        """G / F generators and D_target / D_source discriminators."""
        return {name: build_network(spec) for name, spec in self._specs().items()}

    def build_state(self) -> dict[str, Stateful]:
        """The two history pools (their images, fill counts and random streams)."""
        patch_size = tuple(self.config.data.patch_size)
        pool_size = self.options.losses.pool_size
        seed = self.config.train.seed
        return {
            "pool_target": ImagePool(
                pool_size, (self.target_channels, *patch_size), seed=derive_seed(seed, _TARGET_POOL_STREAM)
            ),
            "pool_source": ImagePool(
                pool_size, (self.source_channels, *patch_size), seed=derive_seed(seed, _SOURCE_POOL_STREAM)
            ),
        }

    def phases(self) -> tuple[Phase, ...]:
        """Generators first (they leave their fakes in the batch), then both discriminators."""
        return (
            Phase("G", trains=("G", "F"), loss=self.generator_loss),
            Phase("D", trains=("D_target", "D_source"), loss=self.discriminator_loss),
        )

    def ema_networks(self) -> tuple[str, ...]:
        """Only the source -> target generator is used at inference, so only it keeps an EMA copy."""
        return ("G",)

    def _critic(self, networks: Mapping[str, nn.Module], name: str, images: torch.Tensor) -> torch.Tensor:
        """Discriminator ``name``'s output for ``images`` seen through instance noise."""
        return networks[name](with_instance_noise(images, self.instance_noise))

    def generator_loss(self, context: PhaseContext, networks: Mapping[str, nn.Module], batch: Batch) -> PhaseLoss:
        """Adversarial terms of both generators + cycle + identity L1; leaves both fakes for the D phase."""
        source, target = batch["source"], batch["target"]
        generator, inverse = networks["G"], networks["F"]
        fake_target = generator(source)
        fake_source = inverse(target)
        # The critics judge bodies: each fake gets air outside the body of the image it was made from.
        data = self.config.data
        judged_target = self.body_only(fake_target, batch.get("body_mask"), data.target_modality)
        judged_source = self.body_only(fake_source, batch.get("target_body_mask"), data.source_modality)
        adversarial = self.adversarial_loss.generator_loss(
            self._critic(networks, "D_target", judged_target)
        ) + self.adversarial_loss.generator_loss(self._critic(networks, "D_source", judged_source))
        cycle = masked_l1(inverse(fake_target), source) + masked_l1(generator(fake_source), target)
        loss = self.lambda_adv * adversarial + self.lambda_cycle * cycle
        stats = {"adv": adversarial.detach(), "cycle": cycle.detach(), "health/g_adv": adversarial.detach()}
        if self.identity_weight > 0:
            identity = masked_l1(generator(target), target) + masked_l1(inverse(source), source)
            loss = loss + self.identity_weight * identity
            stats["identity"] = identity.detach()
        stats["loss"] = loss.detach()
        stats["health/diversity_fake"] = batch_diversity(fake_target)
        stats["health/diversity_real"] = batch_diversity(target)
        batch["fake_target"] = judged_target.detach()
        batch["fake_source"] = judged_source.detach()
        return loss, stats

    def discriminator_loss(
        self, context: PhaseContext, networks: Mapping[str, nn.Module], batch: Batch
    ) -> PhaseLoss:
        """Both discriminators on real images vs pooled fakes; health is the mean of the two."""
        if "fake_target" not in batch:  # the G phase did not run on this batch
            with torch.no_grad():
                data = self.config.data
                fake_target, fake_source = networks["G"](batch["source"]), networks["F"](batch["target"])
                batch["fake_target"] = self.body_only(fake_target, batch.get("body_mask"), data.target_modality)
                batch["fake_source"] = self.body_only(fake_source, batch.get("target_body_mask"), data.source_modality)
        pooled_target = context.state["pool_target"](batch["fake_target"])
        pooled_source = context.state["pool_source"](batch["fake_source"])
        data = self.config.data
        real_target = self.body_only(batch["target"], batch.get("target_body_mask"), data.target_modality)
        real_source = self.body_only(batch["source"], batch.get("body_mask"), data.source_modality)
        real_target_logits = self._critic(networks, "D_target", real_target)
        real_source_logits = self._critic(networks, "D_source", real_source)
        fake_target_logits = self._critic(networks, "D_target", pooled_target)
        fake_source_logits = self._critic(networks, "D_source", pooled_source)
        loss_target = self.adversarial_loss.discriminator_loss(real_target_logits, fake_target_logits)
        loss_source = self.adversarial_loss.discriminator_loss(real_source_logits, fake_source_logits)
        loss = loss_target + loss_source
        loss_kind = self.adversarial_loss
        health_target = discriminator_health(loss_kind, loss_target, real_target_logits, fake_target_logits)
        health_source = discriminator_health(loss_kind, loss_source, real_source_logits, fake_source_logits)
        stats = {"loss": loss.detach(), "d_target": loss_target.detach(), "d_source": loss_source.detach()}
        stats["d_target_accuracy"] = health_target["health/d_accuracy"]
        stats["d_source_accuracy"] = health_source["health/d_accuracy"]
        stats |= {key: 0.5 * (health_target[key] + health_source[key]) for key in health_target}
        return loss, stats

    def translate(self, networks: Mapping[str, nn.Module], source_net: torch.Tensor) -> torch.Tensor:
        """Source -> target with ``G``; (B, C, D, H, W) in [-1, 1] in and out."""
        return networks["G"](source_net)

    def infer_outputs(
        self, networks: Mapping[str, nn.Module], item: Mapping[str, torch.Tensor], context: InferenceContext
    ) -> dict[str, torch.Tensor]:
        """The translation outputs plus the cycle reconstruction F(G(source)), window by window."""
        outputs = super().infer_outputs(networks, item, context)
        with torch.no_grad():
            outputs["reconstruction"] = self.translate_whole(
                networks, outputs["prediction"], context.precision, network="F"
            )
        return outputs

    def sample_names(self) -> tuple[str, ...]:
        """The translation rows and the cycle reconstruction of the source."""
        return (*super().sample_names(), self._cycle_row_name())

    def sample_volumes(self, outputs: Mapping[str, torch.Tensor]) -> dict[str, SampleVolume]:
        """Source, prediction, target, |error| and the cycle reconstruction F(G(source))."""
        rows = super().sample_volumes(outputs)
        rows[self._cycle_row_name()] = SampleVolume(outputs["reconstruction"][0, 0].float().cpu(), NETWORK_WINDOW)
        return rows

    def _cycle_row_name(self) -> str:
        return f"{self.config.data.source_key} cycle"
