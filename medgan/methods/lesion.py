"""Mask-conditioned lesion inpainting GAN (``lesion``): fills a blanked region with a lesion of the mask's shape.

Training data: lesion-centred patches of the real lesion cases (entries without
``model.mask_key`` are left out), every image of ``model.images`` a channel, with the
lesion mask. Per patch the lesion, dilated by ``fill_dilation`` voxels, is the *fill
region*: blanked (set to 0) in the generator's input, which also gets the fill region
as an extra channel, and (``contrast_code``) the lesion's contrast to its shell per image as
constant planes on the fill region, so a caller can ask for a contrast. The generator's
output is blended into the input with a weight that is 1 on the fill region and ramps
down to 0 over the next voxels, reaching 0 at ``band_voxels`` from the lesion mask:

    composite = w * G(blanked, fill) + (1 - w) * input

so voxels farther than ``band_voxels`` (26-connected) from the lesion are the input,
exactly, and the seam is blended inside that band. Paired MRI + CT images are channels
of one generator: one lesion, consistent in both.

Losses (generator): ``lambda_l1`` x L1 over the fill region + ``lambda_boundary`` x L1
of the spatial gradients over the band (a seam the real data does not have costs) +
``lambda_adv`` x adversarial. Discriminator: a local PatchGAN on (composite or real,
fill region); the patch is a lesion-centred crop, so it is the local critic. No global
critic: outside the band the output is the input, so global consistency holds by
construction. ``lambda_adv = 0`` gives the L1-only inpainting baseline in the same code.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import nn

from medgan.data.streams import PatchGroup, PatchStreamSpec
from medgan.losses import batch_diversity, build_adversarial_loss, discriminator_health, with_instance_noise
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
    register_method,
)
from medgan.methods.image_channels import ImageChannels
from medgan.methods.options import AdversarialOptions, NetworkSpec, discriminator_field, generator_field
from medgan.models import build_network, check_input_size

if TYPE_CHECKING:
    from medgan.config.schema import ExperimentConfig

MASK_KEY = "lesion_mask"
FAKE_KEY = "composite"


class LesionLosses(AdversarialOptions):
    """The inpainting GAN's loss weights."""

    lambda_l1: float = Field(100.0, ge=0.0, description="Weight of the L1 loss over the fill region.")
    lambda_boundary: float = Field(
        10.0, ge=0.0, description="Weight of the L1 loss of spatial gradients over the blend band (the seam)."
    )


class LesionOptions(MethodOptions):
    """What is inpainted (images, mask), how wide the fill and the band are, the networks and losses."""

    images: dict[str, str] = Field(
        default_factory=lambda: {"ct": "ct"},
        description="Datalist key -> intensity preset of every image channel (e.g. {mri: mri, ct: ct}: one "
        "consistent lesion in both).",
    )
    mask_key: str = Field("lesion_mask", description="Datalist key of the lesion masks (entries without are unused).")
    fill_dilation: int = Field(1, ge=0, description="The lesion dilated by this many voxels is blanked and filled.")
    band_voxels: int = Field(
        3,
        ge=1,
        description="Beyond this many voxels from the lesion the output is the input, exactly; the "
        "seam is blended between the fill region and this distance.",
    )
    contrast_code: bool = Field(
        True,
        description="Give the generator the lesion's contrast per image (mean inside minus mean of the 2-voxel "
        "shell, network units) as extra input planes: measured on the real lesion in training, chosen by the "
        "caller when inpainting (enrich draws it from the measured appearances).",
    )
    generator: NetworkSpec = generator_field()
    discriminator: NetworkSpec = discriminator_field()
    losses: LesionLosses = Field(default_factory=LesionLosses, description="Loss kinds and weights.")

    @model_validator(mode="after")
    def _band_beyond_fill(self) -> LesionOptions:
        if self.band_voxels <= self.fill_dilation:
            raise ValueError("band_voxels must exceed fill_dilation (the blend happens between them)")
        if not self.images:
            raise ValueError("name at least one image, e.g. {ct: ct}")
        return self


def dilate(mask: torch.Tensor, voxels: int) -> torch.Tensor:
    """26-connected binary dilation of a ``(B, 1, D, H, W)`` {0, 1} mask by ``voxels``."""
    if voxels == 0:
        return mask
    return F.max_pool3d(mask, kernel_size=2 * voxels + 1, stride=1, padding=voxels)


def blend_weights(lesion: torch.Tensor, fill_dilation: int, band_voxels: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(fill region, weight): weight 1 on the fill region, ramping to 0 at ``band_voxels`` from the lesion."""
    fill = dilate(lesion, fill_dilation)
    weight = fill.clone()
    ramp = band_voxels - fill_dilation
    previous = fill
    for step in range(1, ramp):
        ring = dilate(lesion, fill_dilation + step)
        weight = weight + (ring - previous) * (1.0 - step / ramp)
        previous = ring
    return fill, weight


def lesion_contrast(images: torch.Tensor, lesion: torch.Tensor) -> torch.Tensor:
    """``(B, C)``: mean inside the lesion minus mean of its 2-voxel (26-connected) shell, per image."""
    shell = dilate(lesion, 2) - lesion
    inside = (images * lesion).sum(dim=(2, 3, 4)) / lesion.sum(dim=(2, 3, 4)).clamp_min(1.0)
    around = (images * shell).sum(dim=(2, 3, 4)) / shell.sum(dim=(2, 3, 4)).clamp_min(1.0)
    return inside - around


def _gradients(volume: torch.Tensor) -> list[torch.Tensor]:
    """Forward differences along the three spatial axes, each cropped to the common interior."""
    return [
        volume[:, :, 1:, :-1, :-1] - volume[:, :, :-1, :-1, :-1],
        volume[:, :, :-1, 1:, :-1] - volume[:, :, :-1, :-1, :-1],
        volume[:, :, :-1, :-1, 1:] - volume[:, :, :-1, :-1, :-1],
    ]


@register_method("lesion")
class LesionInpainting(ImageChannels, GanMethod):
    """U-Net generator on (blanked images, fill region), local PatchGAN critic, L1 + seam + adversarial."""

    options_model = LesionOptions
    options: LesionOptions

    def __init__(self, config: ExperimentConfig) -> None:
        super().__init__(config)
        self.setup_image_channels(self.options.images, reserved=(MASK_KEY,))
        self.adversarial_loss = build_adversarial_loss(self.options.losses.adversarial)

    @property
    def uses_discriminator(self) -> bool:
        return self.options.losses.lambda_adv > 0

    # ---- data -----------------------------------------------------------------------------------

    def stream_spec(self) -> PatchStreamSpec:
        """Lesion-centred patches of the lesion cases: every image, the body mask, the lesion mask."""
        group = PatchGroup(
            self.stream_images(), body_mask="body_mask", masks=((MASK_KEY, self.options.mask_key),), centre_on=MASK_KEY
        )
        return PatchStreamSpec((group,))

    # ---- networks and phases --------------------------------------------------------------------

    def generator_spec(self) -> dict[str, Any]:
        channels = len(self.options.images)
        codes = channels if self.options.contrast_code else 0
        return {**self.options.generator, "in_channels": channels + 1 + codes, "out_channels": channels}

    def discriminator_spec(self) -> dict[str, Any]:
        return {**self.options.discriminator, "in_channels": len(self.options.images) + 1}

    def check_config(self) -> None:
        patch = self.config.data.patch_size
        check_input_size(self.generator_spec(), patch, spec_key="model.generator", size_key="data.patch_size")
        if self.uses_discriminator:
            check_input_size(
                self.discriminator_spec(), patch, spec_key="model.discriminator", size_key="data.patch_size"
            )

    def build_networks(self) -> NetworkDict:
        networks: NetworkDict = {"G": build_network(self.generator_spec())}
        if self.uses_discriminator:
            networks["D"] = build_network(self.discriminator_spec())
        return networks

    def phases(self) -> tuple[Phase, ...]:
        return self.generator_then_critic(with_critic=self.uses_discriminator)

    def ema_networks(self) -> tuple[str, ...]:
        return ("G",)

    # ---- inpainting -----------------------------------------------------------------------------

    def inpaint(
        self,
        networks: Mapping[str, nn.Module],
        volume: torch.Tensor,
        mask: torch.Tensor,
        contrast: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``volume`` ``(B, C, D, H, W)`` in [-1, 1] with a lesion painted where ``mask`` ``(B, 1, ...)`` is 1.

        ``contrast`` ``(B, C)`` (network units, see :func:`lesion_contrast`) is the lesion's
        contrast to ask for (with ``contrast_code``); None measures it on ``volume`` under the
        mask (training: the real lesion's). Voxels farther than ``band_voxels`` from the mask
        are returned unchanged (exactly).
        """
        mask = mask.float()
        fill, weight = blend_weights(mask, self.options.fill_dilation, self.options.band_voxels)
        inputs = [volume * (1.0 - fill), fill]
        if self.options.contrast_code:
            code = lesion_contrast(volume, mask) if contrast is None else contrast.to(volume)
            inputs.append(code[:, :, None, None, None] * fill)
        generated = networks["G"](torch.cat(inputs, dim=1)).to(volume.dtype)
        return torch.where(weight > 0, weight * generated + (1.0 - weight) * volume, volume)

    def _critic_input(self, images: torch.Tensor, fill: torch.Tensor) -> torch.Tensor:
        return with_instance_noise(torch.cat([images, fill], dim=1), self.options.losses.instance_noise)

    def generator_loss(self, context: PhaseContext, networks: Mapping[str, nn.Module], batch: Batch) -> PhaseLoss:
        """L1 over the fill region + seam gradients over the band (+ adversarial); leaves the composite for D."""
        real, lesion = self.images_of(batch), batch[MASK_KEY]
        fill, weight = blend_weights(lesion, self.options.fill_dilation, self.options.band_voxels)
        composite = self.inpaint(networks, real, lesion)
        batch[FAKE_KEY] = composite.detach()
        losses = self.options.losses
        fill_voxels = fill.sum().clamp_min(1.0) * real.shape[1]
        l1 = ((composite - real).abs() * fill).sum() / fill_voxels
        band = (weight > 0).float()[:, :, :-1, :-1, :-1]
        seam = sum(
            ((fake_grad - real_grad).abs() * band).sum()
            for fake_grad, real_grad in zip(_gradients(composite), _gradients(real), strict=True)
        ) / (band.sum().clamp_min(1.0) * real.shape[1] * 3)
        loss = losses.lambda_l1 * l1 + losses.lambda_boundary * seam
        stats = {"l1": l1.detach(), "seam": seam.detach()}
        if self.uses_discriminator:
            adversarial = self.adversarial_loss.generator_loss(networks["D"](self._critic_input(composite, fill)))
            loss = loss + losses.lambda_adv * adversarial
            stats |= {
                "adv": adversarial.detach(),
                "health/g_adv": adversarial.detach(),
                "health/diversity_fake": batch_diversity(composite),
                "health/diversity_real": batch_diversity(real),
            }
        stats["loss"] = loss.detach()
        return loss, stats

    def discriminator_loss(self, context: PhaseContext, networks: Mapping[str, nn.Module], batch: Batch) -> PhaseLoss:
        """Adversarial loss on (real, fill) vs (composite, fill)."""
        real, lesion = self.images_of(batch), batch[MASK_KEY]
        fill, _ = blend_weights(lesion, self.options.fill_dilation, self.options.band_voxels)
        composite = batch.get(FAKE_KEY)
        if composite is None:
            with torch.no_grad():
                composite = self.inpaint(networks, real, lesion)
        real_output = networks["D"](self._critic_input(real, fill))
        fake_output = networks["D"](self._critic_input(composite, fill))
        loss = self.adversarial_loss.discriminator_loss(real_output, fake_output)
        stats = {"loss": loss.detach()}
        stats |= discriminator_health(self.adversarial_loss, loss, real_output, fake_output)
        return loss, stats

    # ---- montage --------------------------------------------------------------------------------

    def infer_outputs(
        self, networks: Mapping[str, nn.Module], item: Mapping[str, torch.Tensor], context: InferenceContext
    ) -> dict[str, torch.Tensor]:
        """The real patch, its blanked input and the inpainted composite (EMA generator at inference)."""
        moved = {key: value.to(context.device) for key, value in item.items()}
        real, lesion = self.images_of(moved).float(), moved[MASK_KEY].float()
        fill, _ = blend_weights(lesion, self.options.fill_dilation, self.options.band_voxels)
        return {"real": real, "blanked": real * (1.0 - fill), "inpainted": self.inpaint(networks, real, lesion).float()}

    def sample_names(self) -> tuple[str, ...]:
        return tuple(f"{row}_{key}" for row in ("real", "blanked", "inpainted") for key in self.options.images)

    def sample_volumes(self, outputs: Mapping[str, torch.Tensor]) -> dict[str, SampleVolume]:
        return {
            f"{row}_{key}": SampleVolume(outputs[row][0, channel].detach().cpu(), (-1.0, 1.0))
            for row in ("real", "blanked", "inpainted")
            for channel, key in enumerate(self.options.images)
        }
