"""3D pix2pix (Isola et al. 2017): paired image-to-image translation, e.g. MRI -> pseudo-CT.

Generator: a 3D U-Net (``model.generator``, output in [-1, 1]). Discriminator: a
3D PatchGAN conditioned on the input, scoring ``concat(source, target-or-fake)``
(``model.discriminator``; its ``in_channels`` is set here). Generator loss:
``lambda_adv * adversarial + lambda_l1 * L1`` with the L1 weighted by the body mask
(1 inside, ``background_l1_weight`` outside): air around the head is easy and would
otherwise dominate, but must still be learned or the pseudo-CT has no clean air. With
``lambda_adv = 0`` there is no discriminator and no D phase: an L1-only U-Net.

Phases per step: ``G`` first (it leaves the detached fake in the batch), then
``D`` on that fake, so the generator runs once per step.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from medgan.config.schema import ExperimentConfig
from medgan.losses import build_adversarial_loss, masked_l1
from medgan.methods.base import Batch, GanMethod, NetworkDict, Phase, PhaseLoss, register_method

FAKE_KEY = "fake_target"


@register_method("pix2pix")
class Pix2Pix(GanMethod):
    """Conditional GAN with a U-Net generator, a conditional PatchGAN and a body-masked L1."""

    pairing = "paired"

    def __init__(self, config: ExperimentConfig) -> None:
        super().__init__(config)
        losses = config.model.losses
        self.lambda_adv = losses.lambda_adv
        self.lambda_l1 = losses.lambda_l1
        self.body_only_l1 = losses.body_only_l1
        self.background_l1_weight = losses.background_l1_weight
        self.adversarial_loss = build_adversarial_loss(losses.adversarial)

    @property
    def uses_discriminator(self) -> bool:
        """False for the L1-only variant (``model.losses.lambda_adv = 0``)."""
        return self.lambda_adv > 0

    def build_networks(self) -> NetworkDict:
        """G: the generator spec as given; D: the discriminator spec with ``in_channels`` = source + target."""
        from medgan.models import build_network

        generator_spec = dict(self.config.model.generator)
        networks: NetworkDict = {"G": build_network(generator_spec)}
        if self.uses_discriminator:
            in_channels = generator_spec.get("in_channels", 1) + generator_spec.get("out_channels", 1)
            discriminator_spec = {**self.config.model.discriminator, "in_channels": in_channels}
            networks["D"] = build_network(discriminator_spec)
        return networks

    def phases(self) -> tuple[Phase, ...]:
        """G every step, then D every step (no D phase without a discriminator)."""
        generator_phase = Phase("G", trains=("G",))
        if not self.uses_discriminator:
            return (generator_phase,)
        return (generator_phase, Phase("D", trains=("D",)))

    def ema_networks(self) -> tuple[str, ...]:
        """The generator keeps an EMA copy; inference uses it."""
        return ("G",)

    def phase_loss(self, phase_name: str, networks: Mapping[str, nn.Module], batch: Batch) -> PhaseLoss:
        """G: adversarial + body-masked L1; D: adversarial on (source, real) vs (source, fake)."""
        if phase_name == "G":
            return self._generator_loss(networks, batch)
        if phase_name == "D":
            return self._discriminator_loss(networks, batch)
        raise KeyError(f"pix2pix has no phase {phase_name!r}")

    def translate(self, networks: Mapping[str, nn.Module], source_net: torch.Tensor) -> torch.Tensor:
        """The generator's output for ``source_net``."""
        return networks["G"](source_net)

    def _l1_weights(self, batch: Batch) -> torch.Tensor | None:
        """Voxel weights of the L1: 1 in the body, ``background_l1_weight`` outside (None = uniform)."""
        body_mask = batch.get("body_mask")
        if not self.body_only_l1 or body_mask is None:
            return None
        return body_mask + self.background_l1_weight * (1.0 - body_mask)

    def _generator_loss(self, networks: Mapping[str, nn.Module], batch: Batch) -> PhaseLoss:
        source, target = batch["source"], batch["target"]
        fake = networks["G"](source)
        batch[FAKE_KEY] = fake.detach()
        l1 = masked_l1(fake, target, self._l1_weights(batch))
        loss = self.lambda_l1 * l1
        logs = {"l1": float(l1.detach())}
        if self.uses_discriminator:
            adversarial = self.adversarial_loss.generator_loss(networks["D"](torch.cat([source, fake], dim=1)))
            loss = loss + self.lambda_adv * adversarial
            logs["adv"] = float(adversarial.detach())
        logs["loss"] = float(loss.detach())
        return loss, logs

    def _discriminator_loss(self, networks: Mapping[str, nn.Module], batch: Batch) -> PhaseLoss:
        source, target = batch["source"], batch["target"]
        fake = batch.get(FAKE_KEY)
        if fake is None:  # G phase did not run this step
            with torch.no_grad():
                fake = networks["G"](source)
        discriminator = networks["D"]
        real_output = discriminator(torch.cat([source, target], dim=1))
        fake_output = discriminator(torch.cat([source, fake], dim=1))
        loss = self.adversarial_loss.discriminator_loss(real_output, fake_output)
        return loss, {"loss": float(loss.detach())}
