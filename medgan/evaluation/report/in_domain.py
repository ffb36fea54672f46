"""An in-domain feature distance: Fréchet distance and MMD on features of a network trained on real scans.

Why: radiomics features are hand-chosen; a learned feature space sees what they miss. With no
downloadable weights (and ImageNet features meaningless on CT) the network is trained here, on
real scans only: a small 3-D convolutional autoencoder (MONAI's ``AutoEncoder``, channels 8/16/32,
stride 2 each) that reconstructs volumes downsampled to at most ``edge`` voxels per side, trained
with L1 for ``steps`` Adam steps from a fixed seed. A volume's features are its encoder output
averaged over space (32 numbers), projected onto their first principal components over the
training scans (at most 8, fewer than the training scans): a Fréchet distance in more
dimensions than a medical set has scans is estimation noise. The network's SHA-256 (of its
weights) goes into the report, so the same inputs and settings give the same scores, and a
score can be traced to its network.

The network is trained on the generator's training scans when given, otherwise on the real
reference scans (then the reference is in-sample for the network, which the report states).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from monai.networks.nets import AutoEncoder
from torch import nn

from medgan.evaluation.report.volumes import downsampled

CHANNELS = (8, 16, 32)


def _padded(volumes: torch.Tensor) -> torch.Tensor:
    """Pad every edge to a multiple of 8 (three stride-2 levels) with the background value -1."""
    pads = []
    for side in reversed(volumes.shape[2:]):
        extra = (-side) % 8
        pads += [extra // 2, extra - extra // 2]
    return F.pad(volumes, pads, value=-1.0)


def network_sha256(network: nn.Module) -> str:
    """SHA-256 over the network's parameter and buffer names and bytes, in a fixed order."""
    digest = hashlib.sha256()
    for name, tensor in sorted(network.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def train_feature_network(
    volumes: torch.Tensor, *, steps: int = 200, edge: int = 32, batch_size: int = 4, seed: int = 0
) -> nn.Module:
    """The autoencoder trained on ``volumes`` ``(N, 1, X, Y, Z)`` in [-1, 1] (eval mode; same seed, same weights)."""
    torch.manual_seed(seed)
    images = _padded(downsampled(volumes, edge))
    network = AutoEncoder(
        spatial_dims=3, in_channels=1, out_channels=1, channels=CHANNELS, strides=(2, 2, 2), num_res_units=0
    )
    optimiser = torch.optim.Adam(network.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(seed)
    network.train()
    for _ in range(steps):
        batch = images[torch.randint(images.shape[0], (min(batch_size, images.shape[0]),), generator=generator)]
        loss = F.l1_loss(network(batch), batch)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
    return network.eval()


@torch.inference_mode()
def encode(network: nn.Module, volumes: torch.Tensor, *, edge: int = 32) -> np.ndarray:
    """``(N, 32)`` features: the encoder output of each volume averaged over space."""
    images = _padded(downsampled(volumes, edge))
    return torch.cat(
        [network.encode(images[i : i + 8]).mean(dim=(2, 3, 4)) for i in range(0, images.shape[0], 8)]
    ).numpy()


@dataclass
class FeatureSpace:
    """The trained network and the principal axes of its training features."""

    network: nn.Module
    mean: np.ndarray
    components: np.ndarray  # (k, 32)

    @property
    def sha256(self) -> str:
        return network_sha256(self.network)

    def features(self, volumes: torch.Tensor, *, edge: int = 32) -> list[dict[str, float]]:
        """The projected features of ``volumes`` as rows for :mod:`.realism`'s distances."""
        return feature_rows((encode(self.network, volumes, edge=edge) - self.mean) @ self.components.T)


def fit_feature_space(
    training: torch.Tensor, *, steps: int = 200, edge: int = 32, seed: int = 0, max_components: int = 8
) -> FeatureSpace:
    """Train the network on ``training`` and fit the principal axes of its features there."""
    if training.shape[0] < 3:
        raise ValueError(f"the in-domain network needs at least 3 training scans; got {training.shape[0]}")
    network = train_feature_network(training, steps=steps, edge=edge, seed=seed)
    features = encode(network, training, edge=edge)
    mean = features.mean(axis=0)
    _, _, axes = np.linalg.svd(features - mean, full_matrices=False)
    k = min(max_components, training.shape[0] - 1, axes.shape[0])
    return FeatureSpace(network, mean, axes[:k])


def feature_rows(features: np.ndarray) -> list[dict[str, float]]:
    """Feature matrix rows as the dicts the distance functions of :mod:`.realism` take."""
    return [{f"f{j:02d}": float(value) for j, value in enumerate(row)} for row in features]
