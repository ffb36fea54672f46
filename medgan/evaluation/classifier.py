"""Train and apply a small volume classifier on in-memory tensors.

Why here: several questions medgan answers are "can a classifier tell?": does a
generated volume carry its class (generation quality), are synthetic lesions
distinguishable from real ones (two-sample test), does synthetic data help a
detector (downstream study). They share this one loop: a registered network
(``densenet3d`` by default), Adam, cross-entropy, a fixed number of steps over
seeded mini-batches with optional random flips, then softmax probabilities.

Volumes are ``(N, C, D, H, W)`` float tensors in the networks' [-1, 1] scale, as
the data streams and samplers produce them; labels are ``(N,)`` integers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from medgan.evaluation.fit import fit
from medgan.models import build_network


def default_classifier_network() -> dict[str, Any]:
    """A DenseNet small enough to train in about a minute on 2 CPU cores at 32^3."""
    return {"name": "densenet3d", "init_features": 16, "growth_rate": 8, "block_config": [2, 4, 4]}


@dataclass(frozen=True)
class ClassifierSettings:
    """How the classifier is built and trained.

    ``flip_axes``: spatial axes (0 = D, 1 = H, 2 = W) each flipped with probability
    0.5 per training volume; () for none. The phantom's lesions sit in either
    hemisphere, so a left-right flip keeps the label.
    """

    network: dict[str, Any] = field(default_factory=default_classifier_network)
    steps: int = 300
    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 1e-4
    flip_axes: tuple[int, ...] = (0,)
    seed: int = 0


def _check_inputs(images: torch.Tensor, labels: torch.Tensor, num_classes: int) -> None:
    if images.ndim != 5:
        raise ValueError(f"images must be (N, C, D, H, W); got shape {tuple(images.shape)}")
    if labels.shape != (images.shape[0],):
        raise ValueError(f"labels must be (N,) = ({images.shape[0]},); got shape {tuple(labels.shape)}")
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise ValueError(f"labels must lie in 0 .. {num_classes - 1}; got {sorted(set(labels.tolist()))}")


def _flip(batch: torch.Tensor, axes: Sequence[int], generator: torch.Generator) -> torch.Tensor:
    for axis in axes:
        chosen = torch.rand(batch.shape[0], generator=generator) < 0.5
        if chosen.any():
            batch = batch.clone()
            batch[chosen] = batch[chosen].flip(2 + axis)
    return batch


def train_classifier(
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    num_classes: int,
    settings: ClassifierSettings | None = None,
    device: torch.device | str = "cpu",
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> nn.Module:
    """A classifier trained on ``images`` / ``labels`` (eval mode on return); the same seed gives the same weights.

    ``augment(batch)`` (e.g. :class:`~medgan.data.classical_augmentation.ClassicalAugmentation`)
    changes each mini-batch after the flips.
    """
    settings = settings or ClassifierSettings()
    labels = labels.to(torch.int64)
    _check_inputs(images, labels, num_classes)
    if images.shape[0] == 0:
        raise ValueError("no training volumes")
    torch.manual_seed(settings.seed)
    network = build_network({**settings.network, "in_channels": images.shape[1], "num_classes": num_classes})

    def transform(batch: torch.Tensor, batch_labels: torch.Tensor, generator: torch.Generator):
        batch = _flip(batch, settings.flip_axes, generator)
        return (augment(batch) if augment is not None else batch), batch_labels

    return fit(
        network,
        images,
        labels,
        nn.CrossEntropyLoss(),
        settings,
        transform=transform,
        device=device,
    )


@torch.inference_mode()
def predict_probabilities(network: nn.Module, images: torch.Tensor, *, batch_size: int = 16) -> torch.Tensor:
    """Softmax class probabilities ``(N, num_classes)`` of ``images`` (on the CPU, float32)."""
    device = next(network.parameters()).device
    network.eval()
    outputs = [
        torch.softmax(network(images[start : start + batch_size].to(device)).float(), dim=1).cpu()
        for start in range(0, images.shape[0], batch_size)
    ]
    return torch.cat(outputs) if outputs else torch.zeros(0, 0)


def accuracy(probabilities: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of rows whose most probable class is the label."""
    if labels.numel() == 0:
        raise ValueError("accuracy of no volumes")
    return float((probabilities.argmax(dim=1) == labels.to(torch.int64)).float().mean())
