"""Data-consistent reconstruction GAN (``recon``) for undersampled MRI.

Training data: magnitude patches of ``model.image_key`` (network range, mapped to [0, 1] as
the fully sampled target). Each step simulates single-coil k-space from every patch (3D
centred FFT, optional smooth random phase), undersamples it with a fastMRI line mask drawn
for that sample (random per step; along the last axis; ``acceleration``, ``center_fraction``),
and the generator (:mod:`medgan.models.unrolled`: cascades of a residual U-Net and hard or soft
data consistency) reconstructs it. With ``unrolled3d`` the k-space is the patch's 3D k-space (a 3D
acquisition); with ``unrolled2d`` it is 2D per axial slice of the patch (the first axis is the
slice axis; fastMRI's single-coil layout), one line mask per sample shared by its slices. Losses: ``lambda_l1`` x L1 +
``lambda_ssim`` x (1 - SSIM) on magnitudes + ``lambda_adv`` x adversarial from a PatchGAN on
magnitudes; ``lambda_adv = 0`` is the non-GAN baseline in the same code (no critic).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

import torch
from monai.losses import SSIMLoss
from pydantic import Field
from torch import nn

from medgan.data.kspace import check_sampling, ifft_centered, line_mask, simulate_kspace
from medgan.data.streams import PatchGroup, PatchStreamSpec
from medgan.errors import ConfigError
from medgan.losses import build_adversarial_loss, discriminator_health, with_instance_noise
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
from medgan.methods.options import AdversarialOptions, NetworkSpec, discriminator_field
from medgan.models import build_network, check_input_size
from medgan.models.registry import get_network_class

if TYPE_CHECKING:
    from medgan.config.schema import ExperimentConfig

RECON_KEY = "reconstruction"


def default_unrolled() -> dict[str, Any]:
    return {
        "name": "unrolled3d",
        "cascades": 3,
        "share_weights": False,
        "block": {"channels": [16, 32], "strides": [2]},
    }


class ReconLosses(AdversarialOptions):
    """Weights of the reconstruction losses (the adversarial one small by default)."""

    lambda_adv: float = Field(0.01, ge=0.0, description="Weight of the adversarial term; 0 = the L1 + SSIM baseline.")
    lambda_l1: float = Field(1.0, ge=0.0, description="Weight of the magnitude L1.")
    lambda_ssim: float = Field(1.0, ge=0.0, description="Weight of 1 - SSIM (MONAI SSIMLoss, 3D).")


class ReconOptions(MethodOptions):
    """What is reconstructed, how it is undersampled, the networks and losses."""

    images: dict[str, str] = Field(
        default_factory=lambda: {"mri": "mri"}, description="Datalist key -> preset of the (one) magnitude image."
    )
    acceleration: float = Field(4.0, ge=1.0, description="Undersampling factor (fastMRI: 4 or 8).")
    center_fraction: float = Field(0.08, gt=0.0, lt=1.0, description="Fully sampled centre fraction of the lines.")
    mask: Literal["random", "equispaced"] = Field("random", description="Line mask kind (MONAI's fastMRI masks).")
    phase_amplitude: float = Field(
        0.0, ge=0.0, description="Max smooth random phase (radians) of the simulated k-space; 0 = real images."
    )
    generator: NetworkSpec = Field(default_factory=default_unrolled, description="The unrolled network spec.")
    discriminator: NetworkSpec = discriminator_field()
    losses: ReconLosses = Field(default_factory=ReconLosses, description="Loss weights.")


@register_method("recon")
class DataConsistentRecon(ImageChannels, GanMethod):
    """Unrolled CNN with hard data consistency, a magnitude PatchGAN, L1 + SSIM (+ adversarial)."""

    options_model = ReconOptions
    options: ReconOptions

    def __init__(self, config: ExperimentConfig) -> None:
        super().__init__(config)
        self.setup_image_channels(self.options.images, reserved=(RECON_KEY,))
        if len(self.options.images) != 1:
            raise ConfigError("recon reconstructs one image", fix="e.g. model.images: {mri: mri}")
        check_sampling(self.options.acceleration, self.options.center_fraction)
        self.adversarial_loss = build_adversarial_loss(self.options.losses.adversarial)
        self.ssim_loss = SSIMLoss(spatial_dims=3, data_range=1.0, win_size=5)

    @property
    def uses_discriminator(self) -> bool:
        return self.options.losses.lambda_adv > 0

    @property
    def kspace_dims(self) -> int:
        """2 for slice-wise k-space (``unrolled2d``), 3 for volume k-space (``unrolled3d``)."""
        return int(getattr(get_network_class(self.options.generator["name"]), "SPATIAL_DIMS", 3))

    def stream_spec(self) -> PatchStreamSpec:
        return PatchStreamSpec((PatchGroup(self.stream_images(), body_mask="body_mask"),))

    def check_config(self) -> None:
        patch = self.config.data.patch_size
        check_input_size(self.options.generator, patch, spec_key="model.generator", size_key="data.patch_size")
        if self.uses_discriminator:
            spec = {**self.options.discriminator, "in_channels": 1}
            check_input_size(spec, patch, spec_key="model.discriminator", size_key="data.patch_size")

    def build_networks(self) -> NetworkDict:
        networks: NetworkDict = {"G": build_network(self.options.generator)}
        if self.uses_discriminator:
            networks["D"] = build_network({**self.options.discriminator, "in_channels": 1})
        return networks

    def phases(self) -> tuple[Phase, ...]:
        return self.generator_then_critic(with_critic=self.uses_discriminator)

    def ema_networks(self) -> tuple[str, ...]:
        return ("G",)

    # ---- undersampling and reconstruction --------------------------------------------------------

    def undersample(self, target: torch.Tensor, seeds: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """(measured k-space, mask) of magnitude targets ``(B, 1, D, H, W)``; one mask per sample from ``seeds``."""
        options = self.options
        kspace = torch.stack(
            [
                simulate_kspace(t, spatial_dims=self.kspace_dims, phase_amplitude=options.phase_amplitude, seed=s)
                for t, s in zip(target, seeds, strict=True)
            ]
        )
        lines = target.shape[-1]
        masks = torch.stack(
            [line_mask(lines, options.acceleration, options.center_fraction, kind=options.mask, seed=s) for s in seeds]
        ).to(target.device)
        mask = masks[:, None, None, None, :]
        return kspace * mask, mask

    def reconstruct(
        self, networks: Mapping[str, nn.Module], kspace: torch.Tensor, sampling_mask: torch.Tensor
    ) -> torch.Tensor:
        """Magnitude ``(B, 1, D, H, W)`` reconstructed from complex k-space measured where ``sampling_mask`` is 1."""
        return networks["G"](kspace, sampling_mask.to(kspace.real.dtype)).abs()

    def _targets_and_measurements(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        target = ((self.images_of(batch).float() + 1.0) / 2.0).clamp(0.0, 1.0)
        seeds = [int(s) for s in torch.randint(0, 2**31 - 1, (target.shape[0],))]  # the engine seeds each step
        kspace, mask = self.undersample(target, seeds)
        return target, kspace, mask

    def _critic_input(self, magnitude: torch.Tensor) -> torch.Tensor:
        return with_instance_noise(magnitude * 2.0 - 1.0, self.options.losses.instance_noise)

    def generator_loss(self, context: PhaseContext, networks: Mapping[str, nn.Module], batch: Batch) -> PhaseLoss:
        target, kspace, mask = self._targets_and_measurements(batch)
        recon = self.reconstruct(networks, kspace, mask)
        batch[RECON_KEY] = recon.detach()
        batch["recon_target"] = target
        losses = self.options.losses
        l1 = (recon - target).abs().mean()
        ssim = self.ssim_loss(recon, target)
        loss = losses.lambda_l1 * l1 + losses.lambda_ssim * ssim
        stats = {"l1": l1.detach(), "ssim_loss": ssim.detach()}
        if self.uses_discriminator:
            adversarial = self.adversarial_loss.generator_loss(networks["D"](self._critic_input(recon)))
            loss = loss + losses.lambda_adv * adversarial
            stats |= {"adv": adversarial.detach(), "health/g_adv": adversarial.detach()}
        stats["loss"] = loss.detach()
        return loss, stats

    def discriminator_loss(self, context: PhaseContext, networks: Mapping[str, nn.Module], batch: Batch) -> PhaseLoss:
        recon, target = batch.get(RECON_KEY), batch.get("recon_target")
        if recon is None or target is None:
            with torch.no_grad():
                target, kspace, mask = self._targets_and_measurements(batch)
                recon = self.reconstruct(networks, kspace, mask)
        real_output = networks["D"](self._critic_input(target))
        fake_output = networks["D"](self._critic_input(recon))
        loss = self.adversarial_loss.discriminator_loss(real_output, fake_output)
        return loss, {
            "loss": loss.detach(),
            **discriminator_health(self.adversarial_loss, loss, real_output, fake_output),
        }

    # ---- montage --------------------------------------------------------------------------------

    def infer_outputs(
        self, networks: Mapping[str, nn.Module], item: Mapping[str, torch.Tensor], context: InferenceContext
    ) -> dict[str, torch.Tensor]:
        """Target, zero-filled and reconstructed magnitudes of one patch (a fixed mask seed), and the error."""
        moved = {key: value.to(context.device) for key, value in item.items()}
        target = ((self.images_of(moved).float() + 1.0) / 2.0).clamp(0.0, 1.0)
        kspace, mask = self.undersample(target, [0] * target.shape[0])
        zero_filled = ifft_centered(kspace, spatial_dims=self.kspace_dims).abs()
        recon = self.reconstruct(networks, kspace, mask).float()
        return {"target": target, "zero_filled": zero_filled, "reconstruction": recon, "error": (recon - target).abs()}

    def sample_names(self) -> tuple[str, ...]:
        return ("target", "zero_filled", "reconstruction", "error")

    def sample_volumes(self, outputs: Mapping[str, torch.Tensor]) -> dict[str, SampleVolume]:
        return {name: SampleVolume(outputs[name][0, 0].detach().cpu(), (0.0, 1.0)) for name in self.sample_names()}
