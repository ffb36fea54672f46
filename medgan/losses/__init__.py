"""Losses, kept apart from the networks: adversarial objectives and masked reconstruction losses."""

from medgan.losses.adversarial import (
    ADVERSARIAL_LOSSES,
    AdversarialLoss,
    HingeAdversarialLoss,
    LeastSquaresAdversarialLoss,
    NonSaturatingAdversarialLoss,
    batch_diversity,
    build_adversarial_loss,
    discriminator_health,
    discriminator_logits,
    with_instance_noise,
)
from medgan.losses.reconstruction import masked_l1

__all__ = [
    "ADVERSARIAL_LOSSES",
    "AdversarialLoss",
    "HingeAdversarialLoss",
    "LeastSquaresAdversarialLoss",
    "NonSaturatingAdversarialLoss",
    "batch_diversity",
    "build_adversarial_loss",
    "discriminator_health",
    "discriminator_logits",
    "masked_l1",
    "with_instance_noise",
]
