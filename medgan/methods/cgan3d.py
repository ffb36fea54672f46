"""Class-conditional 3D GAN (``cgan3d``) for small data sets: noise + class label -> a volume.

Networks (:mod:`medgan.models.conditional`): a resize-convolution generator with
class-conditional batch norm, and a spectrally normalised projection
discriminator (Miyato & Koyama 2018). The generator's EMA copy samples.

Data: whole volumes at the training grid ``data.patch_size`` (each preprocessed
volume is padded to it; a grid smaller than the body-cropped volume gives random
crops instead), one or more images per subject stacked as channels (``model.images``:
``{ct: ct}``, ``{mri: mri}`` or ``{mri: mri, ct: ct}`` for a consistent pair), and
the class from the datalist entry (``model.label_key``, integers ``0 ..
num_classes - 1``).

Phases per step (StyleGAN2-ADA's design):

* ``G``: ``adversarial(D(augment(G(z, y)), y))`` with the batch's own labels ``y``;
* ``D``: ``adversarial(D(augment(real), y), D(augment(fake), y))``;
* ``D_reg``: every ``losses.r1_interval`` steps, R1 = ``gamma / 2 * |grad_x D(augment(real), y)|^2``
  times the interval (lazy regularisation, Karras et al. 2020), stepping D's own
  optimizer, whose lr and betas the engine corrects by ``interval / (interval + 1)``.

``augment`` is ADA (:class:`medgan.losses.ada.AdaptiveAugment`): every image D sees
is augmented with probability ``p``, adapted from the sign of D's outputs on reals;
``p`` lives in the method state (checkpointed) and is logged as ``health/ada_p``.
Samples are never augmented: G's output is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

import torch
import torch.distributed as dist
from pydantic import Field
from torch import nn

from medgan.config.loader import StrictModel
from medgan.data.streams import PatchGroup, PatchStreamSpec
from medgan.losses import batch_diversity, build_adversarial_loss, discriminator_health
from medgan.losses.ada import AdaptiveAugment
from medgan.methods.base import (
    Batch,
    GanMethod,
    InferenceContext,
    MethodOptions,
    NetworkDict,
    Phase,
    PhaseContext,
    PhaseLoss,
    SampleVolume,
    Stateful,
    StepContext,
    register_method,
)
from medgan.methods.image_channels import ImageChannels
from medgan.methods.options import NetworkSpec
from medgan.models import build_network, check_input_size

if TYPE_CHECKING:
    from medgan.config.schema import ExperimentConfig

FAKE_KEY = "fake_images"
LABEL_KEY = "class_label"
SAMPLE_SEED = 1234  # fixed noise of the montage samples, so montages of one run are comparable


def default_generator() -> dict[str, Any]:
    """The default generator: 3 resize-conv blocks up from a base of 1/8 of the grid."""
    return {"name": "cond_generator3d", "channels": [128, 64, 32, 16], "latent_dim": 128, "embedding_dim": 64}


def default_discriminator() -> dict[str, Any]:
    """The default critic: 4 spectrally normalised blocks, each halving the volume, and a minibatch-std epilogue."""
    return {"name": "projection3d", "channels": [16, 32, 64, 128], "minibatch_std_group": 4}


class CGan3DLosses(StrictModel):
    """The adversarial objective and the lazy R1 penalty."""

    adversarial: Literal["hinge", "nonsaturating"] = Field(
        "hinge", description="Adversarial loss: hinge (default, as BigGAN / SN-GAN) or non-saturating BCE."
    )
    r1_gamma: float = Field(
        1.0, ge=0.0, description="R1 weight gamma (penalty gamma / 2 * |grad D(real)|^2); 0 = no R1 phase."
    )
    r1_interval: int = Field(16, ge=1, description="Run the R1 phase every N steps (lazy regularisation).")


class AdaOptions(StrictModel):
    """Adaptive discriminator augmentation (Karras et al. 2020)."""

    enabled: bool = Field(True, description="Augment every image D sees with the adaptive probability p.")
    target: float = Field(
        0.6, gt=0.0, lt=1.0, description="Target r_t = E[sign(D(real))]: above it p rises, below it p falls."
    )
    speed_images: int = Field(
        2000,
        ge=1,
        description="Images over which p can move from 0 to 1 (the paper's 500k suits its large runs; CPU runs "
        "of a few thousand steps need a faster controller).",
    )
    interval: int = Field(4, ge=1, description="Adjust p every N steps from the signs seen since the last change.")
    initial_p: float = Field(0.0, ge=0.0, le=1.0, description="p at the start of training.")
    max_p: float = Field(
        0.6,
        ge=0.0,
        le=1.0,
        description="p is clipped to [0, max_p] (never above 1). Above ~0.8 the augmentations leak into the "
        "samples (measured: with p held at 0.8 a generator of always-left-sided structures drew them on the left "
        "in 53 % of samples, at 0.6 in 84 %, without ADA 94 %; docs/decisions.md).",
    )


class CGan3DOptions(MethodOptions):
    """cgan3d: which images and classes, the networks, losses and ADA."""

    images: dict[str, str] = Field(
        default_factory=lambda: {"ct": "ct"},
        description="Datalist key -> intensity preset of each image channel, e.g. {ct: ct}, {mri: mri} or "
        "{mri: mri, ct: ct} (a voxel-aligned pair generated together).",
    )
    label_key: str = Field("label", description="Datalist entry key of the integer class label.")
    num_classes: int = Field(2, ge=1, description="Number of classes (labels 0 .. num_classes - 1).")
    generator: NetworkSpec = Field(
        default_factory=default_generator,
        description="Generator spec (medgan.models); out_size, out_channels and num_classes are set by the method.",
    )
    discriminator: NetworkSpec = Field(
        default_factory=default_discriminator,
        description="Discriminator spec (medgan.models); in_channels and num_classes are set by the method.",
    )
    losses: CGan3DLosses = Field(default_factory=CGan3DLosses, description="Adversarial loss and R1.")
    ada: AdaOptions = Field(default_factory=AdaOptions, description="Adaptive discriminator augmentation.")


@register_method("cgan3d")
class CGan3D(ImageChannels, GanMethod):
    """Class-conditional 3D GAN with projection D, hinge loss, lazy R1, ADA and an EMA generator."""

    options_model = CGan3DOptions
    options: CGan3DOptions

    def __init__(self, config: ExperimentConfig) -> None:
        super().__init__(config)
        self.setup_image_channels(self.options.images, reserved=(LABEL_KEY,))
        self.adversarial_loss = build_adversarial_loss(self.options.losses.adversarial)

    # ---- data -----------------------------------------------------------------------------------

    def stream_spec(self) -> PatchStreamSpec:
        """One group: every image of a subject at the training grid, its body mask and its class label."""
        group = PatchGroup(
            self.stream_images(), body_mask="body_mask", entry_values=((LABEL_KEY, self.options.label_key),)
        )
        return PatchStreamSpec((group,))

    # ---- networks and phases --------------------------------------------------------------------

    def generator_spec(self) -> dict[str, Any]:
        return {
            **self.options.generator,
            "out_size": list(self.config.data.patch_size),
            "out_channels": len(self.options.images),
            "num_classes": self.options.num_classes,
        }

    def discriminator_spec(self) -> dict[str, Any]:
        return {
            **self.options.discriminator,
            "in_channels": len(self.options.images),
            "num_classes": self.options.num_classes,
        }

    def check_config(self) -> None:
        """The critic must take the training grid; the generator must reach it (its constructor checks)."""
        check_input_size(
            self.discriminator_spec(), self.config.data.patch_size, spec_key="model.discriminator",
            size_key="data.patch_size",
        )  # fmt: skip
        build_network(self.generator_spec())  # raises ConfigError for a grid its blocks cannot reach

    def build_networks(self) -> NetworkDict:
        return {"G": build_network(self.generator_spec()), "D": build_network(self.discriminator_spec())}

    def phases(self) -> tuple[Phase, ...]:
        """G, D every step; D_reg (R1) every ``r1_interval`` steps with D's optimizer."""
        phases = [
            Phase("G", trains=("G",), loss=self.generator_loss),
            Phase("D", trains=("D",), loss=self.discriminator_loss),
        ]
        losses = self.options.losses
        if losses.r1_gamma > 0:
            r1 = Phase("D_reg", ("D",), self.r1_loss, interval=losses.r1_interval, optimizer="D", double_backward=True)
            phases.append(r1)  # double backward: R1 differentiates D's input gradient
        return tuple(phases)

    def ema_networks(self) -> tuple[str, ...]:
        """Samples come from the generator's EMA copy."""
        return ("G",)

    # ---- state: ADA -------------------------------------------------------------------------------

    def build_state(self) -> dict[str, Stateful]:
        ada = self.options.ada
        if not ada.enabled:
            return {}
        return {
            "ada": AdaptiveAugment(
                target=ada.target,
                speed_images=ada.speed_images,
                interval=ada.interval,
                initial_p=ada.initial_p,
                max_p=ada.max_p,
                background=-1.0,
            )
        }

    def _augment(self, context: PhaseContext, images: torch.Tensor) -> torch.Tensor:
        augment = context.state.get("ada")
        return augment(images) if augment is not None else images

    def end_of_step(self, context: StepContext, stats: Mapping[str, torch.Tensor]) -> None:
        """Feed ADA the signs of D's outputs on reals from this step's D phase, summed over every rank.

        Under DDP each rank sees its own batch; summing the signs keeps one p on every rank
        (as StyleGAN2-ADA does), so the ranks augment alike and their checkpoints agree.
        """
        augment = context.state.get("ada")
        if augment is None or "D/real_sign_sum" not in stats:
            return
        signs = torch.stack([stats["D/real_sign_sum"], stats["D/real_count"]]).detach().double()
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            dist.all_reduce(signs, op=dist.ReduceOp.SUM)
        augment.accumulate(float(signs[0]), int(signs[1]))

    # ---- losses ---------------------------------------------------------------------------------

    def _noise(self, count: int, device: torch.device) -> torch.Tensor:
        return torch.randn(count, self.generator_spec().get("latent_dim", 128), device=device)

    def generator_loss(self, context: PhaseContext, networks: Mapping[str, nn.Module], batch: Batch) -> PhaseLoss:
        """Non-saturating / hinge generator loss on augmented fakes of the batch's labels."""
        labels = batch[LABEL_KEY]
        fake = networks["G"](self._noise(labels.shape[0], labels.device), labels)
        batch[FAKE_KEY] = fake.detach()
        adversarial = self.adversarial_loss.generator_loss(networks["D"](self._augment(context, fake), labels))
        stats = {
            "loss": adversarial.detach(),
            "health/g_adv": adversarial.detach(),
            "health/diversity_fake": batch_diversity(fake),
            "health/diversity_real": batch_diversity(self.images_of(batch)),
        }
        return adversarial, stats

    def discriminator_loss(self, context: PhaseContext, networks: Mapping[str, nn.Module], batch: Batch) -> PhaseLoss:
        """Adversarial loss on augmented reals vs augmented fakes; reports the signs ADA adapts from."""
        labels = batch[LABEL_KEY]
        fake = batch.get(FAKE_KEY)
        if fake is None:
            with torch.no_grad():
                fake = networks["G"](self._noise(labels.shape[0], labels.device), labels)
        discriminator = networks["D"]
        real_logits = discriminator(self._augment(context, self.images_of(batch)), labels)
        fake_logits = discriminator(self._augment(context, fake), labels)
        loss = self.adversarial_loss.discriminator_loss(real_logits, fake_logits)
        stats = {"loss": loss.detach()}
        stats |= discriminator_health(self.adversarial_loss, loss, real_logits, fake_logits)
        stats["real_sign_sum"] = torch.sign(real_logits.detach()).sum()
        stats["real_count"] = torch.tensor(float(real_logits.shape[0]))
        augment = context.state.get("ada")
        if augment is not None:
            stats["health/ada_p"] = torch.tensor(augment.probability)
        return loss, stats

    def r1_loss(self, context: PhaseContext, networks: Mapping[str, nn.Module], batch: Batch) -> PhaseLoss:
        """Lazy R1: ``gamma / 2 * E|grad_x D(x_real)|^2``, times the interval (``context.gain``)."""
        labels = batch[LABEL_KEY]
        with torch.no_grad():
            real = self._augment(context, self.images_of(batch))
        real = real.detach().requires_grad_(True)
        logits = networks["D"](real, labels)
        (gradient,) = torch.autograd.grad(logits.sum(), real, create_graph=True)
        penalty = gradient.square().sum(dim=tuple(range(1, gradient.ndim))).mean()
        loss = 0.5 * self.options.losses.r1_gamma * penalty * context.gain
        return loss, {"loss": loss.detach(), "r1": penalty.detach()}

    # ---- sampling, validation, montage ------------------------------------------------------------

    def sample(
        self, networks: Mapping[str, nn.Module], noise: torch.Tensor, class_labels: torch.Tensor
    ) -> torch.Tensor:
        """Volumes ``(B, C, D, H, W)`` in network range from noise ``(B, Z)`` and labels ``(B,)``."""
        return networks["G"](noise, class_labels)

    def infer_outputs(
        self, networks: Mapping[str, nn.Module], item: Mapping[str, torch.Tensor], context: InferenceContext
    ) -> dict[str, torch.Tensor]:
        """The item's real images and one sample per class from fixed noise (the EMA generator at inference)."""
        generator = torch.Generator(device="cpu").manual_seed(SAMPLE_SEED)
        latent = self.generator_spec().get("latent_dim", 128)
        noise = torch.randn(self.options.num_classes, latent, generator=generator).to(context.device)
        labels = torch.arange(self.options.num_classes, device=context.device)
        samples = self.sample(networks, noise, labels).float()
        outputs = {"real": self.images_of({k: v.to(context.device) for k, v in item.items()}).float()}
        for label in range(self.options.num_classes):
            outputs[f"class_{label}"] = samples[label : label + 1]
        return outputs

    def sample_names(self) -> tuple[str, ...]:
        rows = ["real", *(f"class_{label}" for label in range(self.options.num_classes))]
        return tuple(f"{row}_{key}" for row in rows for key in self.options.images)

    def sample_volumes(self, outputs: Mapping[str, torch.Tensor]) -> dict[str, SampleVolume]:
        """One row per (real / class, image channel), in network range."""
        rows: dict[str, SampleVolume] = {}
        for name in ("real", *(f"class_{label}" for label in range(self.options.num_classes))):
            for channel, key in enumerate(self.options.images):
                rows[f"{name}_{key}"] = SampleVolume(outputs[name][0, channel].detach().cpu(), (-1.0, 1.0))
        return rows
