"""Adversarial losses for patch discriminators: least squares, hinge, non-saturating.

Each loss is an object with two methods, ``discriminator_loss(real, fake)`` and
``generator_loss(fake)``, taking the raw (pre-activation) discriminator outputs,
so a method can swap the GAN objective from config without touching its
networks. Least squares wraps MONAI's ``PatchAdversarialLoss``. Hinge and
non-saturating are written here because MONAI's versions do not fit: its hinge
squashes the logits through tanh first (a bounded, saturating variant), and its
BCE applies a sigmoid before ``BCELoss``, which is numerically fragile and refused
under autocast; ``softplus`` on the logits is the stable form of the same loss.
Losses are computed in float32 even under bf16 autocast.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from monai.losses import PatchAdversarialLoss
from torch import nn

from medgan.errors import ConfigError

DiscriminatorOutput = torch.Tensor | Sequence[torch.Tensor]


def discriminator_logits(output: DiscriminatorOutput) -> torch.Tensor:
    """The final logit map of a discriminator's output, as float32.

    MONAI's ``PatchDiscriminator`` returns the list of every layer's output with
    the logits last; plain discriminators return the logit tensor itself.
    """
    logits = output[-1] if isinstance(output, list | tuple) else output
    return logits.float()


class AdversarialLoss(nn.Module, ABC):
    """Base of the adversarial objectives: a discriminator loss and a generator loss on raw logits."""

    @abstractmethod
    def discriminator_loss(self, real_output: DiscriminatorOutput, fake_output: DiscriminatorOutput) -> torch.Tensor:
        """Loss the discriminator minimises: score real patches real and fake patches fake (averaged, / 2)."""

    @abstractmethod
    def generator_loss(self, fake_output: DiscriminatorOutput) -> torch.Tensor:
        """Loss the generator minimises: make the discriminator score its output as real."""


class LeastSquaresAdversarialLoss(AdversarialLoss):
    """LSGAN (Mao et al. 2017): mean squared distance of the logits to 1 (real) / 0 (fake)."""

    def __init__(self) -> None:
        super().__init__()
        # no_activation_leastsq: MONAI otherwise puts a LeakyReLU(0.05) on the logits first.
        self.monai_loss = PatchAdversarialLoss(criterion="least_squares", no_activation_leastsq=True)

    def discriminator_loss(self, real_output: DiscriminatorOutput, fake_output: DiscriminatorOutput) -> torch.Tensor:
        """0.5 * (E[(D(real) - 1)^2] + E[D(fake)^2])."""
        real_term = self.monai_loss(discriminator_logits(real_output), target_is_real=True, for_discriminator=True)
        fake_term = self.monai_loss(discriminator_logits(fake_output), target_is_real=False, for_discriminator=True)
        return 0.5 * (real_term + fake_term)

    def generator_loss(self, fake_output: DiscriminatorOutput) -> torch.Tensor:
        """E[(D(fake) - 1)^2]."""
        return self.monai_loss(discriminator_logits(fake_output), target_is_real=True, for_discriminator=False)


class HingeAdversarialLoss(AdversarialLoss):
    """Hinge loss (Lim & Ye 2017; SAGAN / BigGAN): margins on the raw logits."""

    def discriminator_loss(self, real_output: DiscriminatorOutput, fake_output: DiscriminatorOutput) -> torch.Tensor:
        """0.5 * (E[relu(1 - D(real))] + E[relu(1 + D(fake))])."""
        real_term = F.relu(1.0 - discriminator_logits(real_output)).mean()
        fake_term = F.relu(1.0 + discriminator_logits(fake_output)).mean()
        return 0.5 * (real_term + fake_term)

    def generator_loss(self, fake_output: DiscriminatorOutput) -> torch.Tensor:
        """-E[D(fake)]."""
        return -discriminator_logits(fake_output).mean()


class NonSaturatingAdversarialLoss(AdversarialLoss):
    """The original GAN loss with the non-saturating generator objective, in softplus form."""

    def discriminator_loss(self, real_output: DiscriminatorOutput, fake_output: DiscriminatorOutput) -> torch.Tensor:
        """0.5 * (E[softplus(-D(real))] + E[softplus(D(fake))]) = BCE-with-logits on real=1, fake=0."""
        real_term = F.softplus(-discriminator_logits(real_output)).mean()
        fake_term = F.softplus(discriminator_logits(fake_output)).mean()
        return 0.5 * (real_term + fake_term)

    def generator_loss(self, fake_output: DiscriminatorOutput) -> torch.Tensor:
        """E[softplus(-D(fake))] = -E[log sigmoid(D(fake))]."""
        return F.softplus(-discriminator_logits(fake_output)).mean()


ADVERSARIAL_LOSSES: dict[str, Callable[[], AdversarialLoss]] = {
    "lsgan": LeastSquaresAdversarialLoss,
    "hinge": HingeAdversarialLoss,
    "nonsaturating": NonSaturatingAdversarialLoss,
}


def build_adversarial_loss(kind: str) -> AdversarialLoss:
    """The adversarial loss registered as ``kind`` (``model.losses.adversarial`` in the config)."""
    if kind not in ADVERSARIAL_LOSSES:
        raise ConfigError(
            f"unknown adversarial loss {kind!r}; known: {', '.join(sorted(ADVERSARIAL_LOSSES))}",
            fix="set model.losses.adversarial to one of the known losses",
        )
    return ADVERSARIAL_LOSSES[kind]()
