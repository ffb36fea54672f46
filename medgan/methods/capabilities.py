"""What a trained method can do for a job: small protocols that jobs look for.

Why separate protocols rather than one big base class: a job asks one question
("can this run translate?") with ``isinstance(method, Translator)`` and uses only
that one call, so a method offers exactly the capabilities it has, and a new
kind of method (a sampler, a reconstructor) needs no change to the jobs that do
not use it. All tensors are in network range ([-1, 1] for images), channel
first, with a batch axis; calls run under ``torch.no_grad()`` from the job.

* :class:`Translator`: source volume -> target volume (pix2pix, cyclegan, bulk density).
* :class:`Sampler`: noise + class label -> volume (the class-conditional GAN).
* :class:`Inpainter`: volume + mask (+ codes) -> volume with the mask region filled (lesions).
* :class:`Reconstructor`: undersampled k-space + sampling mask -> image (MRI reconstruction).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable

import torch
from torch import nn

from medgan.errors import ConfigError


@runtime_checkable
class Translator(Protocol):
    """Maps a source batch ``(B, C_source, D, H, W)`` to the target domain ``(B, C_target, D, H, W)``."""

    def translate(self, networks: Mapping[str, nn.Module], source_net: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class Sampler(Protocol):
    """Draws volumes from noise ``(B, Z)`` and integer class labels ``(B,)``."""

    def sample(
        self, networks: Mapping[str, nn.Module], noise: torch.Tensor, class_labels: torch.Tensor
    ) -> torch.Tensor: ...


@runtime_checkable
class Inpainter(Protocol):
    """Fills the voxels where ``mask`` ``(B, 1, D, H, W)`` is 1 (blending a thin band around it, as the
    method declares) and leaves the rest of ``volume`` exactly as it is."""

    def inpaint(
        self, networks: Mapping[str, nn.Module], volume: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor: ...


@runtime_checkable
class Reconstructor(Protocol):
    """Reconstructs an image from complex k-space ``(B, C, *spatial)`` measured where ``sampling_mask`` is 1."""

    def reconstruct(
        self, networks: Mapping[str, nn.Module], kspace: torch.Tensor, sampling_mask: torch.Tensor
    ) -> torch.Tensor: ...


CAPABILITIES: dict[str, type] = {
    "translate": Translator,
    "sample": Sampler,
    "inpaint": Inpainter,
    "reconstruct": Reconstructor,
}


def capabilities_of(method: object) -> list[str]:
    """The capability names (``translate``, ``sample``, ...) that ``method`` offers."""
    return [name for name, protocol in CAPABILITIES.items() if isinstance(method, protocol)]


def require_capability(method: object, capability: str, *, job: str) -> None:
    """Raise ConfigError when ``method`` lacks ``capability`` (a job given a run of the wrong kind)."""
    if capability not in CAPABILITIES:
        raise ValueError(f"unknown capability {capability!r}; known: {sorted(CAPABILITIES)}")
    if not isinstance(method, CAPABILITIES[capability]):
        offered = capabilities_of(method) or ["none"]
        raise ConfigError(
            f"the {job} job needs a method that can {capability}, but method {getattr(method, 'name', method)!r} "
            f"offers: {', '.join(offered)}",
            fix=f"pass a run trained with a method that can {capability}",
        )
