"""3D pix2pix (Isola et al. 2017): paired image-to-image translation, e.g. MRI -> pseudo-CT.

Generator: a 3D U-Net (``model.generator``, output in [-1, 1]). Discriminator: a
3D PatchGAN conditioned on the input, scoring ``concat(source, target-or-fake)``
(``model.discriminator``; its ``in_channels`` is set here). Generator loss:
``lambda_adv * adversarial + lambda_l1 * L1`` with the L1 weighted by the body mask
(1 inside, ``background_l1_weight`` outside): air around the head is easy and would
otherwise dominate, but must still be learned or the pseudo-CT has no clean air. With
``lambda_adv = 0`` there is no discriminator and no D phase: an L1-only U-Net. With
``adversarial_start`` > 0 the first part of the run is that L1-only U-Net (no D phase, no
adversarial term), and the critic joins for the rest: the MSE pre-training of SRGAN
(Ledig et al., CVPR 2017), which starts the adversarial game from a generator that already
maps the anatomy, at half the per-step cost while it lasts.

Phases per step: ``G`` first (it leaves the detached fake in the batch), then
``D`` on that fake, so the generator runs once per step.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import torch
from pydantic import Field
from torch import nn

from medgan.losses import (
    batch_diversity,
    build_adversarial_loss,
    discriminator_health,
    masked_l1,
    with_instance_noise,
)
from medgan.methods.base import Batch, MethodOptions, NetworkDict, Phase, PhaseContext, PhaseLoss, register_method
from medgan.methods.options import AdversarialOptions, NetworkSpec, discriminator_field, generator_field
from medgan.methods.translation import TranslationMethod
from medgan.models import build_network

if TYPE_CHECKING:
    from medgan.config.schema import ExperimentConfig

FAKE_KEY = "fake_target"


class Pix2PixLosses(AdversarialOptions):
    """pix2pix's loss kinds and weights."""

    lambda_l1: float = Field(100.0, ge=0.0, description="Weight of the paired L1 loss (paper: 100).")
    body_only_l1: bool = Field(
        True, description="Weight the paired L1 by the body mask (voxels outside get background_l1_weight)."
    )
    background_l1_weight: float = Field(
        0.1,
        ge=0.0,
        le=1.0,
        description="With body_only_l1: relative L1 weight of voxels outside the body (0 = body only; a small "
        "weight still teaches the generator to output air around the head).",
    )
    adversarial_start: float = Field(
        0.0,
        ge=0.0,
        lt=1.0,
        description="Fraction of train.steps trained on the L1 alone before the critic and the adversarial term "
        "join (L1 pre-training, as SRGAN's MSE pre-training; those steps cost about half a GAN step). 0 = "
        "adversarial from the first step.",
    )


class Pix2PixOptions(MethodOptions):
    """pix2pix: a generator, a conditional patch discriminator, and their losses."""

    generator: NetworkSpec = generator_field()
    discriminator: NetworkSpec = discriminator_field()
    losses: Pix2PixLosses = Field(default_factory=Pix2PixLosses, description="Loss kinds and weights.")


@register_method("pix2pix")
class Pix2Pix(TranslationMethod):
    """Conditional GAN with a U-Net generator, a conditional PatchGAN and a body-masked L1."""

    pairing = "paired"
    options_model = Pix2PixOptions
    options: Pix2PixOptions

    def __init__(self, config: ExperimentConfig) -> None:
        super().__init__(config)
        losses = self.options.losses
        self.lambda_adv = losses.lambda_adv
        self.lambda_l1 = losses.lambda_l1
        self.body_only_l1 = losses.body_only_l1
        self.background_l1_weight = losses.background_l1_weight
        self.adversarial_loss = build_adversarial_loss(losses.adversarial)
        self.instance_noise = losses.instance_noise
        self.adversarial_start_step = int(losses.adversarial_start * config.train.steps)

    @property
    def uses_discriminator(self) -> bool:
        """False for the L1-only variant (``model.losses.lambda_adv = 0``)."""
        return self.lambda_adv > 0

    def _discriminator_spec(self) -> dict:
        generator_spec = self.options.generator
        in_channels = generator_spec.get("in_channels", 1) + generator_spec.get("out_channels", 1)
        return {**self.options.discriminator, "in_channels": in_channels}

    def check_config(self) -> None:
        """The generator must take the patch and the window; the critic (if any) the patch."""
        self.check_generator_input(self.options.generator)
        if self.uses_discriminator:
            self.check_discriminator_input(self._discriminator_spec())

    def build_networks(self) -> NetworkDict:
        """G: the generator spec as given; D: the discriminator spec with ``in_channels`` = source + target."""
        networks: NetworkDict = {"G": build_network(self.options.generator)}
        if self.uses_discriminator:
            networks["D"] = build_network(self._discriminator_spec())
        return networks

    def phases(self) -> tuple[Phase, ...]:
        """G every step, then D every step from ``adversarial_start`` on (no D phase without a discriminator)."""
        return self.generator_then_critic(with_critic=self.uses_discriminator, critic_start=self.adversarial_start_step)

    def ema_networks(self) -> tuple[str, ...]:
        """The generator keeps an EMA copy; inference uses it."""
        return ("G",)

    def translate(self, networks: Mapping[str, nn.Module], source_net: torch.Tensor) -> torch.Tensor:
        """The generator's output for ``source_net``."""
        return networks["G"](source_net)

    def _l1_weights(self, batch: Batch) -> torch.Tensor | None:
        """Voxel weights of the L1: 1 in the body, ``background_l1_weight`` outside (None = uniform)."""
        body_mask = batch.get("body_mask")
        if not self.body_only_l1 or body_mask is None:
            return None
        return body_mask + self.background_l1_weight * (1.0 - body_mask)

    def _critic_input(self, batch: Batch, target: torch.Tensor) -> torch.Tensor:
        """The (source, target) pair D scores: the target's air outside the body, then instance noise."""
        target = self.body_only(target, batch.get("body_mask"), self.config.data.target_modality)
        return with_instance_noise(torch.cat([batch["source"], target], dim=1), self.instance_noise)

    def generator_loss(self, context: PhaseContext, networks: Mapping[str, nn.Module], batch: Batch) -> PhaseLoss:
        """``lambda_l1 * body-weighted L1 (+ lambda_adv * adversarial)``; leaves the detached fake for D."""
        source, target = batch["source"], batch["target"]
        fake = networks["G"](source)
        batch[FAKE_KEY] = fake.detach()
        l1 = masked_l1(fake, target, self._l1_weights(batch))
        loss = self.lambda_l1 * l1
        stats = {"l1": l1.detach()}
        if self.uses_discriminator and context.step >= self.adversarial_start_step:
            adversarial = self.adversarial_loss.generator_loss(networks["D"](self._critic_input(batch, fake)))
            loss = loss + self.lambda_adv * adversarial
            stats["adv"] = adversarial.detach()
            stats["health/g_adv"] = adversarial.detach()
            stats["health/diversity_fake"] = batch_diversity(fake)
            stats["health/diversity_real"] = batch_diversity(target)
        stats["loss"] = loss.detach()
        return loss, stats

    def discriminator_loss(self, context: PhaseContext, networks: Mapping[str, nn.Module], batch: Batch) -> PhaseLoss:
        """Adversarial loss on (source, real) vs (source, fake)."""
        source, target = batch["source"], batch["target"]
        fake = batch.get(FAKE_KEY)
        if fake is None:  # G phase did not run this step
            with torch.no_grad():
                fake = networks["G"](source)
        discriminator = networks["D"]
        real_output = discriminator(self._critic_input(batch, target))
        fake_output = discriminator(self._critic_input(batch, fake))
        loss = self.adversarial_loss.discriminator_loss(real_output, fake_output)
        stats = {"loss": loss.detach()}
        stats |= discriminator_health(self.adversarial_loss, loss, real_output, fake_output)
        return loss, stats
