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

import math
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
    """Base of the adversarial objectives: a discriminator loss and a generator loss on raw logits.

    For training health each loss also states its *chance level* (the discriminator
    loss when D cannot tell real from fake and outputs the same for both), the
    output value that separates "real" from "fake" decisions, and the scale in
    which D's mean outputs are reported.
    """

    chance_loss: float = 1.0
    decision_threshold: float = 0.0
    output_scale: str = "raw logit"

    def reported_output(self, logits: torch.Tensor) -> torch.Tensor:
        """D's output in the reported scale (identity except where a probability is more telling)."""
        return logits

    @abstractmethod
    def discriminator_loss(self, real_output: DiscriminatorOutput, fake_output: DiscriminatorOutput) -> torch.Tensor:
        """Loss the discriminator minimises: score real patches real and fake patches fake (averaged, / 2)."""

    @abstractmethod
    def generator_loss(self, fake_output: DiscriminatorOutput) -> torch.Tensor:
        """Loss the generator minimises: make the discriminator score its output as real."""


class LeastSquaresAdversarialLoss(AdversarialLoss):
    """LSGAN (Mao et al. 2017): mean squared distance of the logits to 1 (real) / 0 (fake)."""

    chance_loss = 0.25  # D outputs 0.5 for everything: 0.5 * (0.25 + 0.25)
    decision_threshold = 0.5
    output_scale = "least-squares output (1 = real, 0 = fake)"

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

    chance_loss = 1.0  # D outputs 0 for everything: 0.5 * (1 + 1)
    decision_threshold = 0.0
    output_scale = "raw logit (> 0 = real)"

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

    chance_loss = math.log(2.0)  # D outputs 0 (p = 0.5) for everything
    decision_threshold = 0.0
    output_scale = "probability of real (sigmoid of the logit)"

    def reported_output(self, logits: torch.Tensor) -> torch.Tensor:
        """sigmoid(logit): D's probability that the input is real."""
        return torch.sigmoid(logits)

    def discriminator_loss(self, real_output: DiscriminatorOutput, fake_output: DiscriminatorOutput) -> torch.Tensor:
        """0.5 * (E[softplus(-D(real))] + E[softplus(D(fake))]) = BCE-with-logits on real=1, fake=0."""
        real_term = F.softplus(-discriminator_logits(real_output)).mean()
        fake_term = F.softplus(discriminator_logits(fake_output)).mean()
        return 0.5 * (real_term + fake_term)

    def generator_loss(self, fake_output: DiscriminatorOutput) -> torch.Tensor:
        """E[softplus(-D(fake))] = -E[log sigmoid(D(fake))]."""
        return F.softplus(-discriminator_logits(fake_output)).mean()


def discriminator_health(
    loss: AdversarialLoss,
    d_loss: torch.Tensor,
    real_output: DiscriminatorOutput,
    fake_output: DiscriminatorOutput,
) -> dict[str, torch.Tensor]:
    """Health statistics of one discriminator update, as detached tensors (``health/...`` keys).

    ``d_real`` / ``d_fake``: D's mean output on real / generated inputs in the loss's
    reported scale; ``d_accuracy``: the share of patch decisions D gets right (real
    above the decision threshold, fake below); ``d_loss_ratio``: D's loss over its
    chance level (1 = guessing, near 0 = D wins outright).
    """
    real_logits = discriminator_logits(real_output).detach()
    fake_logits = discriminator_logits(fake_output).detach()
    correct_real = (real_logits > loss.decision_threshold).float().mean()
    correct_fake = (fake_logits <= loss.decision_threshold).float().mean()
    return {
        "health/d_real": loss.reported_output(real_logits).mean(),
        "health/d_fake": loss.reported_output(fake_logits).mean(),
        "health/d_accuracy": 0.5 * (correct_real + correct_fake),
        "health/d_loss_ratio": d_loss.detach().float() / loss.chance_loss,
    }


def batch_diversity(volumes: torch.Tensor) -> torch.Tensor:
    """Mean over voxels of the standard deviation across the batch (0 when every sample is the same).

    Compared between generated and real batches it shows mode collapse: a
    generator whose outputs no longer vary with its inputs.
    """
    volumes = volumes.detach().float()
    if volumes.shape[0] < 2:
        return volumes.new_tensor(float("nan"))
    return volumes.std(dim=0).mean()


ADVERSARIAL_LOSSES: dict[str, Callable[[], AdversarialLoss]] = {
    "lsgan": LeastSquaresAdversarialLoss,
    "hinge": HingeAdversarialLoss,
    "nonsaturating": NonSaturatingAdversarialLoss,
}


def with_instance_noise(images: torch.Tensor, std: float) -> torch.Tensor:
    """``images`` plus Gaussian noise of ``std`` (network units): what the discriminator sees.

    Instance noise (Sonderby et al., ICLR 2017; Arjovsky & Bottou, ICLR 2017) added
    alike to real and generated images hides differences below the noise level, such
    as the scanner noise real CTs carry and a smooth generator output lacks, which a
    discriminator otherwise learns first and then wins on alone. 0 returns ``images``.
    """
    if std <= 0:
        return images
    return images + std * torch.randn_like(images)


def build_adversarial_loss(kind: str) -> AdversarialLoss:
    """The adversarial loss registered as ``kind`` (``model.losses.adversarial`` in the config)."""
    if kind not in ADVERSARIAL_LOSSES:
        raise ConfigError(
            f"unknown adversarial loss {kind!r}; known: {', '.join(sorted(ADVERSARIAL_LOSSES))}",
            fix="set model.losses.adversarial to one of the known losses",
        )
    return ADVERSARIAL_LOSSES[kind]()
