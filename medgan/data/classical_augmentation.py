"""Strong classical augmentation for the downstream study's baseline: an nnU-Net-like MONAI chain.

Why strong: a GAN that only beats flips has not shown much (Frid-Adar 2018 compared against
classical augmentation; Isensee et al. 2021, nnU-Net, showed how far a well-tuned classical
pipeline goes). Per training volume, each with its own probability (nnU-Net's defaults where it
has one): an affine (rotation up to 15 degrees per axis, scaling 0.85-1.15; p 0.3), an elastic
deformation (p 0.1), left-right flip (p 0.5), Gaussian noise (p 0.15),
multiplicative intensity scale 0.75-1.25 (p 0.15), intensity shift (p 0.15), bias field (p 0.15)
and gamma 0.7-1.5 (p 0.15). The lesion mask, where given, follows the spatial transforms with
nearest-neighbour interpolation. Volumes are in the networks' [-1, 1] scale; intensity changes
are clipped back to it.
"""

from __future__ import annotations

import numpy as np
import torch
from monai.transforms import (
    Compose,
    Rand3DElasticd,
    RandAdjustContrastd,
    RandAffined,
    RandBiasFieldd,
    RandFlipd,
    RandGaussianNoised,
    RandScaleIntensityd,
    RandShiftIntensityd,
)

IMAGE, MASK = "image", "mask"


def _intensity_chain() -> list:
    return [
        RandGaussianNoised(IMAGE, prob=0.15, mean=0.0, std=0.05),
        RandScaleIntensityd(IMAGE, factors=0.25, prob=0.15),
        RandShiftIntensityd(IMAGE, offsets=0.1, prob=0.15),
        RandBiasFieldd(IMAGE, degree=3, coeff_range=(0.0, 0.2), prob=0.15),
        # gamma on [-1, 1] data: MONAI rescales to the volume's own range, applies the gamma, scales back
        RandAdjustContrastd(IMAGE, gamma=(0.7, 1.5), prob=0.15),
    ]


class ClassicalAugmentation:
    """Augment a batch ``(B, C, D, H, W)`` (and its masks ``(B, 1, D, H, W)``), seeded and reproducible."""

    def __init__(self, *, seed: int, with_masks: bool) -> None:
        keys = [IMAGE, MASK] if with_masks else [IMAGE]
        modes = ["bilinear", "nearest"] if with_masks else ["bilinear"]
        padding = ["border", "zeros"] if with_masks else "border"
        spatial = [
            RandAffined(
                keys,
                prob=0.3,
                rotate_range=(np.pi / 12,) * 3,
                scale_range=(0.15, 0.15, 0.15),
                mode=modes,
                padding_mode=padding,
            ),
            # elastic on its own, rarer: it costs ~7x an affine resample (34 vs 5 ms at 48^3 on 2 cores)
            Rand3DElasticd(
                keys, sigma_range=(5.0, 7.0), magnitude_range=(20.0, 60.0), prob=0.1, mode=modes, padding_mode=padding
            ),
            RandFlipd(keys, prob=0.5, spatial_axis=0),
        ]
        self.with_masks = with_masks
        self.chain = Compose([*spatial, *_intensity_chain()])
        self.chain.set_random_state(seed=seed)

    def __call__(
        self, images: torch.Tensor, masks: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The augmented copies (the inputs are not changed)."""
        if self.with_masks and masks is None:
            raise ValueError("this augmentation was built with masks; pass them")
        out_images, out_masks = [], []
        for index in range(images.shape[0]):
            item = {IMAGE: images[index]}
            if self.with_masks:
                item[MASK] = masks[index].float()
            augmented = self.chain(item)
            out_images.append(torch.as_tensor(augmented[IMAGE]).clamp(-1.0, 1.0))
            if self.with_masks:
                out_masks.append(torch.as_tensor(augmented[MASK]) > 0.5)
        return torch.stack(out_images).float(), torch.stack(out_masks) if self.with_masks else None
