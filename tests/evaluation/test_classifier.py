"""The shared volume classifier: learns a visible class, is seeded, refuses bad inputs."""

from __future__ import annotations

import pytest
import torch

from medgan.evaluation.classifier import ClassifierSettings, accuracy, predict_probabilities, train_classifier

TINY = ClassifierSettings(
    network={"name": "densenet3d", "init_features": 4, "growth_rate": 4, "block_config": [1]},
    steps=60,
    batch_size=8,
    lr=3e-3,
)


def cubes(count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Noise volumes; class 1 holds a bright 4^3 cube at a random place."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(count, 1, 16, 16, 16, generator=generator) * 0.1 - 0.5
    labels = torch.arange(count) % 2
    for index in range(count):
        if labels[index]:
            x, y, z = torch.randint(0, 12, (3,), generator=generator).tolist()
            images[index, 0, x : x + 4, y : y + 4, z : z + 4] += 1.0
    return images, labels


def test_learns_a_visible_class_and_generalises() -> None:
    images, labels = cubes(32, seed=0)
    held_images, held_labels = cubes(16, seed=1)
    network = train_classifier(images, labels, num_classes=2, settings=TINY)
    probabilities = predict_probabilities(network, held_images)
    assert probabilities.shape == (16, 2) and torch.allclose(probabilities.sum(1), torch.ones(16))
    assert accuracy(probabilities, held_labels) >= 0.9
    assert not network.training


def test_same_seed_same_weights_other_seed_other_weights() -> None:
    images, labels = cubes(8, seed=0)
    settings = ClassifierSettings(**{**TINY.__dict__, "steps": 3})
    first = train_classifier(images, labels, num_classes=2, settings=settings)
    again = train_classifier(images, labels, num_classes=2, settings=settings)
    other = train_classifier(
        images, labels, num_classes=2, settings=ClassifierSettings(**{**settings.__dict__, "seed": 1})
    )
    weights = [dict(model.state_dict()) for model in (first, again, other)]
    assert all(torch.equal(weights[0][key], weights[1][key]) for key in weights[0])
    assert any(not torch.equal(weights[0][key], weights[2][key]) for key in weights[0])


def test_bad_inputs_name_what_is_wrong() -> None:
    images, labels = cubes(4, seed=0)
    with pytest.raises(ValueError, match=r"\(N, C, D, H, W\)"):
        train_classifier(images[:, 0], labels, num_classes=2)
    with pytest.raises(ValueError, match=r"labels must be \(N,\)"):
        train_classifier(images, labels[:2], num_classes=2)
    with pytest.raises(ValueError, match="0 .. 1"):
        train_classifier(images, labels + 1, num_classes=2)
    with pytest.raises(ValueError, match="no volumes"):
        accuracy(torch.zeros(0, 2), torch.zeros(0))
