"""What methods that stack several datalist images as channels share (``model.images``: {key: preset}).

cgan3d (noise -> images) and lesion (images -> inpainted images) both read one or more
co-registered images per subject as the channels of one tensor. This mixin holds the
parts they have in common: checking the keys and presets, the batch names of the
channels, stacking them, the stream images, and which images the data profile describes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from medgan.data.presets import get_preset
from medgan.data.streams import PatchStream, StreamImage
from medgan.errors import ConfigError


class ImageChannels:
    """Mixin for a :class:`~medgan.methods.base.GanMethod` whose options have ``images: {key: preset}``."""

    image_names: tuple[str, ...]

    def setup_image_channels(self, images: Mapping[str, str], reserved: Sequence[str]) -> None:
        """Check ``images`` (non-empty, known presets, no reserved batch names) and name the channels."""
        if not images:
            raise ConfigError("model.images names no image", fix="e.g. model.images: {ct: ct}")
        for key, modality in images.items():
            get_preset(modality)  # an unknown preset is a ConfigError naming it
            if key in (*reserved, "body_mask"):
                raise ConfigError(f"model.images key {key!r} is reserved", fix="rename the datalist key")
        self.image_names = tuple(f"image_{key}" for key in images)

    def stream_images(self) -> tuple[StreamImage, ...]:
        """One stream image per channel: batch name, datalist key, preset."""
        images = self.options.images  # type: ignore[attr-defined]
        return tuple(
            StreamImage(name, key, modality)
            for name, (key, modality) in zip(self.image_names, images.items(), strict=True)
        )

    def training_stream(self, cache_dir: Path | None) -> PatchStream:
        """The method's ``stream_spec()`` drawn from ``data.train_split``."""
        config = self.config  # type: ignore[attr-defined]
        return PatchStream(self.stream_spec(), config.data, config.train.seed, cache_dir)  # type: ignore[attr-defined]

    def profiled_images(self) -> tuple[tuple[str, str], tuple[str, str] | None]:
        """The first image (its spacing is the run's), and the second one when there is a pair."""
        images = list(self.options.images.items())  # type: ignore[attr-defined]
        return images[0], images[1] if len(images) > 1 else None

    def images_of(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The batch's image channels stacked ``(B, C, D, H, W)``."""
        return torch.cat([batch[name] for name in self.image_names], dim=1)
