"""Train and apply a small lesion segmenter on in-memory tensors (the downstream detection task).

Why here: the downstream study asks whether synthetic lesions make a *detector* better; the
detector is a registered segmentation network (``segresnet3d`` by default) trained with Dice +
cross-entropy (MONAI ``DiceCELoss``, sigmoid) on whole volumes and their lesion masks; its
sigmoid map is the lesion probability that :mod:`medgan.evaluation.froc` scores.

Volumes are ``(N, C, D, H, W)`` float tensors in the networks' [-1, 1] scale; masks
``(N, 1, D, H, W)`` booleans (all False for a healthy case).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from monai.losses import DiceCELoss
from torch import nn

from medgan.evaluation.fit import fit
from medgan.models import build_network

MaskedAugment = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def default_segmenter_network() -> dict[str, Any]:
    """A SegResNet small enough for a few minutes of CPU training at 48^3."""
    return {"name": "segresnet3d", "init_filters": 8, "blocks_down": [1, 2, 2], "blocks_up": [1, 1]}


@dataclass(frozen=True)
class SegmenterSettings:
    """How the segmenter is built and trained."""

    network: dict[str, Any] = field(default_factory=default_segmenter_network)
    steps: int = 300
    batch_size: int = 4
    lr: float = 1e-3
    weight_decay: float = 1e-4
    seed: int = 0


def train_segmenter(
    images: torch.Tensor,
    masks: torch.Tensor,
    *,
    settings: SegmenterSettings | None = None,
    device: torch.device | str = "cpu",
    augment: MaskedAugment | None = None,
) -> nn.Module:
    """A segmenter trained on ``images`` / ``masks`` (eval mode on return); the same seed, the same weights.

    ``augment(images, masks)`` changes each mini-batch (image and mask together).
    """
    settings = settings or SegmenterSettings()
    if images.ndim != 5 or masks.shape != (images.shape[0], 1, *images.shape[2:]):
        raise ValueError(f"need images (N, C, D, H, W) and masks (N, 1, D, H, W); got {images.shape}, {masks.shape}")
    torch.manual_seed(settings.seed)
    network = build_network({**settings.network, "in_channels": images.shape[1], "out_channels": 1})
    # batch-wise Dice: a healthy scan (empty mask) alone in a batch would make per-sample Dice undefined
    loss = DiceCELoss(sigmoid=True, batch=True)

    def transform(batch: torch.Tensor, batch_masks: torch.Tensor, _generator: torch.Generator):
        if augment is not None:
            batch, batch_masks = augment(batch, batch_masks)
        return batch, batch_masks.float()

    return fit(
        network,
        images,
        masks,
        loss,
        settings,
        transform=transform,
        device=device,
    )


@torch.inference_mode()
def predict_lesion_probability(network: nn.Module, images: torch.Tensor, *, batch_size: int = 4) -> torch.Tensor:
    """Sigmoid lesion probability maps ``(N, D, H, W)`` of ``images`` (on the CPU, float32)."""
    device = next(network.parameters()).device
    network.eval()
    maps = [
        torch.sigmoid(network(images[start : start + batch_size].to(device)).float())[:, 0].cpu()
        for start in range(0, images.shape[0], batch_size)
    ]
    return torch.cat(maps) if maps else torch.zeros(0, *images.shape[2:])
