"""Adaptive discriminator augmentation (ADA) for 3D volumes.

Karras et al. 2020 ("Training Generative Adversarial Networks with Limited
Data", StyleGAN2-ADA) showed that on small data sets the discriminator
memorises the training images unless every image it sees, real and generated,
is augmented, with a probability ``p`` that is raised while D is overconfident
on reals and lowered otherwise. Augmentations that D sees on both sides with
p < ~0.8 do not leak into the generator's samples; the generator itself never
sees them at sampling time.

This module holds the 3D pipeline (differentiable: the generator's gradient
flows through the augmented fakes) and the controller of ``p``. What it does
per sample, each with probability ``p`` independently:

- geometric (one trilinear resampling, background outside): left-right flip,
  integer translation (up to 1/8 of each axis), isotropic scaling (log2-normal,
  std 0.2), rotation about the superior-inferior axis (normal, std 10 degrees);
- intensity (network range [-1, 1]): gain (log2-normal, std 0.2) and offset
  (normal, std 0.1) around the background, additive Gaussian noise (std up to
  0.05 of the range);
- cutout: a cube of half the volume's edge set to 0 (mid-range), as in the paper.

``p`` adapts from ``r_t = E[sign(D(real))]``: every ``interval`` updates,
``p += sign(r_t - target) * images / speed_images``, clipped to [0, 1]. ``p``
and the running sums are buffers, so checkpoints save and restore them exactly.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

_TRANSLATE_FRACTION = 0.125
_SCALE_STD_LOG2 = 0.2
_ROTATE_STD_DEG = 10.0
_GAIN_STD_LOG2 = 0.2
_OFFSET_STD = 0.1
_NOISE_STD_MAX = 0.05


class AdaptiveAugment(nn.Module):
    """Augment what the discriminator sees with an adaptive probability ``p`` (see the module docstring).

    ``background`` is the network-range value outside the body (-1): resampling
    fills with it and gain / offset pivot around it, so air stays air.
    """

    def __init__(
        self,
        *,
        target: float = 0.6,
        speed_images: int = 10_000,
        interval: int = 4,
        initial_p: float = 0.0,
        max_p: float = 1.0,
        background: float = -1.0,
    ) -> None:
        super().__init__()
        if not 0.0 < target < 1.0:
            raise ValueError(f"ADA target must be in (0, 1), got {target}")
        if speed_images < 1 or interval < 1:
            raise ValueError(f"ADA speed_images and interval must be >= 1, got {speed_images}, {interval}")
        if not 0.0 <= initial_p <= max_p <= 1.0:
            raise ValueError(f"ADA needs 0 <= initial_p <= max_p <= 1, got {initial_p}, {max_p}")
        self.target, self.speed_images, self.interval = target, speed_images, interval
        self.max_p, self.background = max_p, background
        self.register_buffer("p", torch.tensor(float(initial_p), dtype=torch.float64))
        self.register_buffer("sign_sum", torch.tensor(0.0, dtype=torch.float64))
        self.register_buffer("sign_count", torch.tensor(0, dtype=torch.int64))
        self.register_buffer("updates", torch.tensor(0, dtype=torch.int64))
        self.register_buffer("last_rt", torch.tensor(float("nan"), dtype=torch.float64))

    @property
    def probability(self) -> float:
        """The current augmentation probability."""
        return float(self.p)

    @torch.no_grad()
    def update(self, real_logits: torch.Tensor) -> None:
        """Accumulate ``sign(D(real))`` of a batch of per-sample logits; see :meth:`accumulate`."""
        signs = torch.sign(real_logits.detach().float().reshape(real_logits.shape[0], -1).mean(dim=1))
        self.accumulate(float(signs.sum()), signs.numel())

    @torch.no_grad()
    def accumulate(self, sign_sum: float, count: int) -> None:
        """Add ``count`` signs summing to ``sign_sum``; every ``interval`` calls, step ``p`` towards ``r_t``."""
        self.sign_sum += float(sign_sum)
        self.sign_count += int(count)
        self.updates += 1
        if int(self.updates) % self.interval:
            return
        rt = self.sign_sum / self.sign_count.clamp(min=1)
        step = math.copysign(float(self.sign_count) / self.speed_images, float(rt) - self.target)
        self.p.copy_((self.p + step).clamp(0.0, self.max_p))
        self.last_rt.copy_(rt)
        self.sign_sum.zero_()
        self.sign_count.zero_()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``images`` ``(B, C, D, H, W)`` augmented per sample with probability ``p`` (identity at p = 0)."""
        p = self.probability
        if p <= 0.0:
            return images
        if images.ndim != 5:
            raise ValueError(f"ADA expects (B, C, D, H, W) volumes, got shape {tuple(images.shape)}")
        images = self._geometric(images, p)
        images = self._intensity(images, p)
        return self._cutout(images, p)

    def _chosen(self, batch: int, p: float, device: torch.device) -> torch.Tensor:
        return (torch.rand(batch, device=device) < p).float()

    def _geometric(self, images: torch.Tensor, p: float) -> torch.Tensor:
        batch, device = images.shape[0], images.device
        eye = torch.eye(4, device=device).repeat(batch, 1, 1)
        # affine_grid coordinates are (x, y, z) = (W, H, D); the volume's first axis (D) is left-right (RAS)
        flip = 1.0 - 2.0 * self._chosen(batch, p, device) * (torch.rand(batch, device=device) < 0.5).float()
        flip_matrix = eye.clone()
        flip_matrix[:, 2, 2] = flip
        sizes = torch.tensor(images.shape[2:][::-1], dtype=torch.float32, device=device)  # (W, H, D)
        shift_voxels = torch.round((torch.rand(batch, 3, device=device) * 2 - 1) * _TRANSLATE_FRACTION * sizes)
        translate = eye.clone()
        translate[:, :3, 3] = shift_voxels * 2.0 / sizes * self._chosen(batch, p, device)[:, None]
        scale = torch.exp2(torch.randn(batch, device=device) * _SCALE_STD_LOG2 * self._chosen(batch, p, device))
        scale_matrix = eye.clone()
        scale_matrix[:, 0, 0] = scale_matrix[:, 1, 1] = scale_matrix[:, 2, 2] = 1.0 / scale
        angle = torch.deg2rad(torch.randn(batch, device=device) * _ROTATE_STD_DEG) * self._chosen(batch, p, device)
        rotate = eye.clone()  # about the superior-inferior axis (z in RAS = the last volume axis = x here)
        rotate[:, 1, 1], rotate[:, 1, 2] = torch.cos(angle), -torch.sin(angle)
        rotate[:, 2, 1], rotate[:, 2, 2] = torch.sin(angle), torch.cos(angle)
        matrix = flip_matrix @ translate @ scale_matrix @ rotate
        moved = (matrix - eye).abs().flatten(1).amax(dim=1) > 0
        if not bool(moved.any()):
            return images
        grid = F.affine_grid(matrix[:, :3, :].to(images.dtype), list(images.shape), align_corners=False)
        resampled = F.grid_sample(images - self.background, grid, mode="bilinear", padding_mode="zeros",
                                  align_corners=False) + self.background  # fmt: skip
        keep = (~moved).to(images.dtype).view(-1, 1, 1, 1, 1)
        return images * keep + resampled * (1 - keep)

    def _intensity(self, images: torch.Tensor, p: float) -> torch.Tensor:
        batch, device, shape = images.shape[0], images.device, (-1, 1, 1, 1, 1)
        gain = torch.exp2(torch.randn(batch, device=device) * _GAIN_STD_LOG2 * self._chosen(batch, p, device))
        offset = torch.randn(batch, device=device) * _OFFSET_STD * self._chosen(batch, p, device)
        noise_std = torch.rand(batch, device=device) * _NOISE_STD_MAX * self._chosen(batch, p, device)
        images = (images - self.background) * gain.view(shape).to(images.dtype) + self.background
        images = images + offset.view(shape).to(images.dtype)
        return images + torch.randn_like(images) * noise_std.view(shape).to(images.dtype)

    def _cutout(self, images: torch.Tensor, p: float) -> torch.Tensor:
        batch, device = images.shape[0], images.device
        chosen = self._chosen(batch, p, device)
        if not bool(chosen.any()):
            return images
        mask = torch.ones_like(images[:, :1])
        for index in torch.nonzero(chosen).flatten().tolist():
            box = []
            for size in images.shape[2:]:
                half = max(1, size // 4)
                centre = int(torch.randint(0, size, (1,), device=device))
                box.append(slice(max(0, centre - half), min(size, centre + half)))
            mask[(index, slice(None), *box)] = 0.0
        return images * mask
