"""Class-conditional 3D generator and projection discriminator (the ``cgan3d`` method's networks).

Generator (:class:`ConditionalGenerator3D`): noise ``z`` and a class label go in;
a learned label embedding is concatenated to ``z`` and projected to a small
``base``^3 feature volume, which is grown by resize-convolution blocks (nearest
upsampling x2, then 3x3x3 convolutions): transposed convolutions with stride 2
paint checkerboards (Odena et al. 2016, "Deconvolution and Checkerboard
Artifacts"), which a CT reader would see as a grid. Every block normalises with
class-conditional batch norm (BigGAN-style: batch statistics, per-class scale
and shift from the label embedding), so the label acts at every scale.

Discriminator (:class:`ProjectionDiscriminator3D`): spectrally normalised
convolutions (``torch.nn.utils.parametrizations.spectral_norm``) halve the
volume block by block; the features are summed over space into ``h``, and the
score is ``linear(h) + <embed(y), h>``: projection conditioning (Miyato &
Koyama 2018), which scores class membership by an inner product instead of
feeding the label as an input channel.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from medgan.errors import ConfigError
from medgan.models.registry import InputRequirement, register_network
from medgan.models.upsample_conv import upsample_conv3d


class ConditionalBatchNorm3d(nn.Module):
    """Batch norm without its own affine; scale and shift come from the class embedding."""

    def __init__(self, channels: int, embedding_dim: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm3d(channels, affine=False)
        self.scale = nn.Linear(embedding_dim, channels)
        self.shift = nn.Linear(embedding_dim, channels)
        nn.init.zeros_(self.scale.weight)
        nn.init.ones_(self.scale.bias)
        nn.init.zeros_(self.shift.weight)
        nn.init.zeros_(self.shift.bias)

    def forward(self, features: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        shape = (-1, features.shape[1], 1, 1, 1)
        return self.norm(features) * self.scale(embedding).view(shape) + self.shift(embedding).view(shape)


class _UpBlock(nn.Module):
    """Nearest x2, conv, conditional BN, ReLU, conv, conditional BN, ReLU (with a 1x1x1 skip).

    The first convolution runs on the coarse grid
    (:func:`~medgan.models.upsample_conv.upsample_conv3d`, a 4x4x4 transposed convolution) and
    the 1x1x1 skip before the upsampling (the two commute): the same volume and gradients
    to float rounding, ~1.9x fewer multiply-adds for the generator; the generator's forward
    and backward pass at 32^3, batch 4, took 0.66 s instead of 1.25 s on 2 AVX2 cores. A
    block whose ``coarse_grid`` is False (:func:`use_coarse_grid_upsampling`; the
    benchmark's baseline) runs the direct form.
    """

    coarse_grid = True

    def __init__(self, in_channels: int, out_channels: int, embedding_dim: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv3d(in_channels, out_channels, 3, padding=1)
        self.norm1 = ConditionalBatchNorm3d(out_channels, embedding_dim)
        self.conv2 = nn.Conv3d(out_channels, out_channels, 3, padding=1)
        self.norm2 = ConditionalBatchNorm3d(out_channels, embedding_dim)
        self.skip = nn.Conv3d(in_channels, out_channels, 1)

    def forward(self, features: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        if not self.coarse_grid:
            upsampled = F.interpolate(features, scale_factor=2, mode="nearest")
            hidden, skip = self.conv1(upsampled), self.skip(upsampled)
        else:
            hidden = upsample_conv3d(features, self.conv1)
            skip = F.interpolate(self.skip(features), scale_factor=2, mode="nearest")
        hidden = F.relu(self.norm1(hidden, embedding))
        hidden = F.relu(self.norm2(self.conv2(hidden), embedding))
        return hidden + skip


def use_coarse_grid_upsampling(generator: nn.Module, enabled: bool) -> nn.Module:
    """Switch the coarse-grid form of every upsampling block of ``generator`` on or off (in place)."""
    for module in generator.modules():
        if isinstance(module, _UpBlock):
            module.coarse_grid = enabled
    return generator


@register_network("cond_generator3d")
class ConditionalGenerator3D(nn.Module):
    """Noise + class label -> a volume of ``out_channels`` in [-1, 1] (see the module docstring).

    Args:
        out_size: output edge per axis (D, H, W); each must be ``base * 2**len(channels[1:])``
            for an integer ``base >= 2``.
        out_channels: image channels (1 for CT or MRI, 2 for an MRI + CT pair).
        num_classes: number of class labels (0 .. num_classes - 1).
        latent_dim: length of the noise vector ``z``.
        embedding_dim: length of the learned label embedding.
        channels: features at the base grid, then after each upsampling block.
    """

    def __init__(
        self,
        out_size: Sequence[int] = (64, 64, 64),
        out_channels: int = 1,
        num_classes: int = 2,
        latent_dim: int = 128,
        embedding_dim: int = 64,
        channels: Sequence[int] = (128, 64, 32, 16),
    ) -> None:
        super().__init__()
        if len(channels) < 2:
            raise ConfigError(f"cond_generator3d needs at least two channel entries, got {list(channels)}")
        factor = 2 ** (len(channels) - 1)
        if any(int(edge) % factor or int(edge) // factor < 2 for edge in out_size):
            raise ConfigError(
                f"cond_generator3d output size {list(out_size)} is not a multiple of {factor} with a base of >= 2 "
                f"voxels ({len(channels) - 1} upsampling blocks)",
                fix="use a training grid (data.patch_size) that is a multiple of 2**(len(channels) - 1), "
                "or fewer channel entries",
            )
        self.out_size = tuple(int(edge) for edge in out_size)
        self.base = tuple(edge // factor for edge in self.out_size)
        self.latent_dim, self.num_classes = latent_dim, num_classes
        self.embedding = nn.Embedding(num_classes, embedding_dim)
        self.project = nn.Linear(latent_dim + embedding_dim, channels[0] * math.prod(self.base))
        self.blocks = nn.ModuleList(
            _UpBlock(channels[index], channels[index + 1], embedding_dim) for index in range(len(channels) - 1)
        )
        self.output_norm = nn.BatchNorm3d(channels[-1])
        self.to_image = nn.Conv3d(channels[-1], out_channels, 3, padding=1)
        self.channels0 = channels[0]

    def forward(self, noise: torch.Tensor, class_labels: torch.Tensor) -> torch.Tensor:
        embedding = self.embedding(class_labels.long())
        features = self.project(torch.cat([noise, embedding], dim=1)).view(-1, self.channels0, *self.base)
        for block in self.blocks:
            features = block(features, embedding)
        return torch.tanh(self.to_image(F.relu(self.output_norm(features))))


@register_network("projection3d")
class ProjectionDiscriminator3D(nn.Module):
    """Spectrally normalised 3D critic with projection conditioning; returns one logit per volume ``(B, 1)``.

    Args:
        in_channels: image channels.
        num_classes: number of class labels.
        channels: features of each block; every block halves the volume (average pooling), the first one
            too, so no convolution beyond the first runs at full resolution (the costly part on 64^3).
        minibatch_std_group: 0 = off (the default, so runs saved before it existed load); N > 0 appends,
            after the last block, the feature standard deviation across groups of N volumes of the batch
            as one more channel, then a spectrally normalised 3x3x3 convolution (ProGAN / StyleGAN's
            minibatch standard deviation, Karras et al. 2018). Without it the critic judges each
            volume alone and cannot see that a generator draws the same head every time: a 2,000-step
            cgan3d run collapsed to per-class copies (tissue volumes 1/10 of the real spread) while
            the critic sat at chance (docs/decisions.md).
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 2,
        channels: Sequence[int] = (16, 32, 64, 128),
        minibatch_std_group: int = 0,
    ):
        super().__init__()
        layers = []
        previous = in_channels
        for index, width in enumerate(channels):
            layers.append(_DownBlock(previous, width, first=index == 0))
            previous = width
        self.blocks = nn.Sequential(*layers)
        self.minibatch_std_group = int(minibatch_std_group)
        self.epilogue = (
            spectral_norm(nn.Conv3d(previous + 1, previous, 3, padding=1)) if self.minibatch_std_group > 0 else None
        )
        self.linear = spectral_norm(nn.Linear(previous, 1))
        self.class_embedding = spectral_norm(nn.Embedding(num_classes, previous))

    @classmethod
    def input_requirement(cls, channels: Sequence[int] = (16, 32, 64, 128), **_: object) -> InputRequirement:
        """Every block halves the edge (average pooling): inputs must be multiples of 2**blocks."""
        factor = 2 ** len(channels)
        return InputRequirement(min_size=factor, multiple=factor)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """``h``: the last block's features (with the minibatch-std epilogue when on) summed over space ``(B, C)``."""
        hidden = self.blocks(images)
        if self.epilogue is not None:
            with_std = torch.cat([hidden, minibatch_std(hidden, self.minibatch_std_group)], dim=1)
            hidden = self.epilogue(F.leaky_relu(with_std, 0.2))
        return F.leaky_relu(hidden, 0.2).sum(dim=(2, 3, 4))

    def forward(self, images: torch.Tensor, class_labels: torch.Tensor) -> torch.Tensor:
        pooled = self.features(images)
        projection = (self.class_embedding(class_labels.long()) * pooled).sum(dim=1, keepdim=True)
        return self.linear(pooled) + projection


def minibatch_std(features: torch.Tensor, group_size: int) -> torch.Tensor:
    """One channel ``(B, 1, *spatial)``: per group of volumes, the std across the group of every feature,
    averaged over features and space (Karras et al. 2018). The group is the largest divisor of the batch
    that is at most ``group_size``, so any batch size works (a batch of one gives zeros)."""
    batch = features.shape[0]
    group = max(size for size in range(1, min(group_size, batch) + 1) if batch % size == 0)
    grouped = features.float().reshape(group, batch // group, *features.shape[1:])
    std = (grouped.var(dim=0, unbiased=False) + 1e-8).sqrt().mean(dim=tuple(range(1, features.ndim)))
    channel = std.to(features.dtype).repeat(group)  # (B,): member j of every group gets its group's value
    return channel.view(batch, 1, *(1,) * (features.ndim - 2)).expand(batch, 1, *features.shape[2:])


class _DownBlock(nn.Module):
    """LeakyReLU, SN conv, LeakyReLU, SN conv, then average pooling x2 (with a pooled 1x1x1 SN skip)."""

    def __init__(self, in_channels: int, out_channels: int, *, first: bool) -> None:
        super().__init__()
        self.conv1 = spectral_norm(nn.Conv3d(in_channels, out_channels, 3, padding=1))
        self.conv2 = spectral_norm(nn.Conv3d(out_channels, out_channels, 3, padding=1))
        self.skip = spectral_norm(nn.Conv3d(in_channels, out_channels, 1))
        self.first = first  # the first block sees images, not activations

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        hidden = images if self.first else F.leaky_relu(images, 0.2)
        hidden = self.conv2(F.leaky_relu(self.conv1(hidden), 0.2))
        return F.avg_pool3d(hidden, 2) + F.avg_pool3d(self.skip(images), 2)
