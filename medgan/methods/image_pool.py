"""History pool of generated images shown to a discriminator (CycleGAN's image buffer).

Zhu, Park, Isola & Efros, "Unpaired Image-to-Image Translation using
Cycle-Consistent Adversarial Networks", ICCV 2017, Sec. 4 (following Shrivastava
et al., CVPR 2017): the discriminators are updated with a history of generated
images rather than only the latest ones, which reduces model oscillation. The
pool holds up to ``pool_size`` (50 in the paper) earlier fakes; once full, each
new fake is, with probability 1/2, swapped for a random stored one (the stored
one goes to the discriminator, the new one takes its slot), else passed through.

Why an ``nn.Module`` with buffers: the stored images, the fill count and the
random generator's state are all buffers, so ``state_dict()`` / ``load_state_dict()``
capture the pool exactly. CycleGAN keeps its pools in the method's state slot
(``build_state``), which the engine saves in ``state.pt`` under ``method_state``
and restores on resume; a resumed run therefore makes the same swap decisions
with the same stored images as an uninterrupted one. The random draws come from the pool's own seeded CPU
generator, never from the global RNG, so they do not shift other random streams.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn


def derive_seed(seed: int, stream: int) -> int:
    """A well-mixed 63-bit seed for random stream ``stream`` of experiment seed ``seed``.

    Two pools of one run (one per discriminator) need independent streams; mixing
    through ``numpy.random.SeedSequence`` avoids the correlated streams that
    ``seed + 1``-style offsets give between neighbouring experiment seeds.
    """
    state = np.random.SeedSequence([seed & 0xFFFFFFFF, stream]).generate_state(2, dtype=np.uint32)
    return int((int(state[0]) << 31) ^ int(state[1]))


class ImagePool(nn.Module):
    """Buffer of up to ``pool_size`` generated samples of shape ``sample_shape`` (C, D, H, W).

    Args:
        pool_size: how many earlier fakes to keep; 0 disables the pool (``query`` returns its input).
        sample_shape: shape of one sample without the batch axis, e.g. ``(1, 32, 32, 32)``.
            The buffer is allocated up front so a checkpoint always fits the pool built
            from the same config.
        seed: seed of the pool's own random generator.
    """

    images: torch.Tensor
    num_stored: torch.Tensor
    rng_state: torch.Tensor

    def __init__(self, pool_size: int, sample_shape: Sequence[int], seed: int = 0) -> None:
        super().__init__()
        if pool_size < 0:
            raise ValueError(f"pool_size must be >= 0, got {pool_size}")
        self.pool_size = pool_size
        self.sample_shape = tuple(int(size) for size in sample_shape)
        self.register_buffer("images", torch.zeros((pool_size, *self.sample_shape)))
        self.register_buffer("num_stored", torch.zeros((), dtype=torch.int64))
        generator = torch.Generator(device="cpu").manual_seed(seed)
        self.register_buffer("rng_state", generator.get_state())

    def forward(self, fakes: torch.Tensor) -> torch.Tensor:
        """Same as :meth:`query` (so the pool can be called like any module)."""
        return self.query(fakes)

    @torch.no_grad()
    def query(self, fakes: torch.Tensor) -> torch.Tensor:
        """Store the batch ``fakes`` (B, *sample_shape) and return a batch for the discriminator.

        While the pool fills up, every fake is stored and returned unchanged. Once
        it is full, each fake is with probability 1/2 exchanged for a uniformly
        chosen stored one. The result is detached and has the input's dtype and device.
        """
        if self.pool_size == 0:
            return fakes.detach()
        if tuple(fakes.shape[1:]) != self.sample_shape:
            raise ValueError(
                f"image pool holds samples of shape {self.sample_shape}, got a batch of shape {tuple(fakes.shape)}"
            )
        # The state lives in a buffer (not in a Python object) so that whatever loaded
        # the buffers (load_state_dict, an in-place copy) also restored the random stream.
        generator = torch.Generator(device="cpu")
        generator.set_state(self.rng_state.detach().to("cpu"))
        num_stored = int(self.num_stored)
        returned = []
        for fake in fakes.detach():
            if num_stored < self.pool_size:
                self.images[num_stored].copy_(fake)
                num_stored += 1
                returned.append(fake)
            elif torch.rand((), generator=generator).item() < 0.5:
                slot = int(torch.randint(self.pool_size, (), generator=generator))
                returned.append(self.images[slot].clone().to(fake.dtype))
                self.images[slot].copy_(fake)
            else:
                returned.append(fake)
        self.num_stored.fill_(num_stored)
        self.rng_state.copy_(generator.get_state().to(self.rng_state.device))
        return torch.stack(returned).to(device=fakes.device, dtype=fakes.dtype)

    def extra_repr(self) -> str:
        """Size and sample shape, for ``print(module)``."""
        return f"pool_size={self.pool_size}, sample_shape={self.sample_shape}"
