"""The CycleGAN history pool: filling, 50 % swaps, seeded decisions, checkpoint round trip."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file, save_file

from medgan.methods.image_pool import ImagePool, derive_seed

SAMPLE_SHAPE = (1, 2, 2, 2)


def numbered(first: int, count: int) -> torch.Tensor:
    """A batch whose sample i is filled with the value first + i, so samples can be told apart."""
    values = torch.arange(first, first + count, dtype=torch.float32)
    return values.view(count, 1, 1, 1, 1).expand(count, *SAMPLE_SHAPE).clone()


def ids(batch: torch.Tensor) -> list[int]:
    return [int(sample.flatten()[0]) for sample in batch]


def test_filling_pool_returns_its_input_and_stores_it() -> None:
    pool = ImagePool(4, SAMPLE_SHAPE, seed=0)
    assert ids(pool.query(numbered(0, 3))) == [0, 1, 2]
    assert int(pool.num_stored) == 3
    # the 4th sample still fills the pool; the 5th can already be swapped
    assert ids(pool.query(numbered(3, 1))) == [3]
    assert sorted(ids(pool.images)) == [0, 1, 2, 3]


def test_full_pool_swaps_half_of_the_samples_for_stored_ones() -> None:
    pool = ImagePool(8, SAMPLE_SHAPE, seed=123)
    pool.query(numbered(0, 8))
    queries = 2000
    swapped = 0
    for index in range(queries):
        stored_before = set(ids(pool.images))
        new_id = 8 + index
        (returned,) = ids(pool.query(numbered(new_id, 1)))
        if returned != new_id:
            swapped += 1
            assert returned in stored_before  # a swap hands out an earlier fake...
            assert new_id in ids(pool.images)  # ...and keeps the new one in its slot
        else:
            assert set(ids(pool.images)) == stored_before
    # Binomial(2000, 0.5): 0.45..0.55 is > 4 standard deviations either side.
    assert 0.45 < swapped / queries < 0.55
    assert int(pool.num_stored) == 8


def test_decisions_are_fixed_by_the_seed() -> None:
    def run(seed: int) -> list[int]:
        pool = ImagePool(5, SAMPLE_SHAPE, seed=seed)
        return [i for k in range(40) for i in ids(pool.query(numbered(10 * k, 3)))]

    assert run(7) == run(7)
    assert run(7) != run(8)


def test_pool_leaves_the_global_random_stream_alone() -> None:
    pool = ImagePool(2, SAMPLE_SHAPE, seed=0)
    before = torch.get_rng_state()
    for k in range(10):
        pool.query(numbered(3 * k, 3))
    assert torch.equal(before, torch.get_rng_state())


def test_state_round_trip_through_safetensors_continues_identically(tmp_path) -> None:
    original = ImagePool(6, SAMPLE_SHAPE, seed=42)
    for k in range(5):
        original.query(numbered(4 * k, 4))
    save_file({key: value.contiguous() for key, value in original.state_dict().items()}, tmp_path / "pool.st")

    restored = ImagePool(6, SAMPLE_SHAPE, seed=999)  # a different seed: the checkpoint must override it
    restored.load_state_dict(load_file(tmp_path / "pool.st"))
    assert torch.equal(restored.images, original.images)
    for k in range(5, 30):
        assert ids(restored.query(numbered(4 * k, 4))) == ids(original.query(numbered(4 * k, 4)))


def test_empty_pool_passes_through() -> None:
    pool = ImagePool(0, SAMPLE_SHAPE)
    fakes = numbered(0, 3).requires_grad_(True)
    returned = pool.query(fakes)
    assert torch.equal(returned, fakes) and not returned.requires_grad
    assert pool.images.numel() == 0


def test_returned_batch_is_detached_and_keeps_dtype() -> None:
    pool = ImagePool(1, SAMPLE_SHAPE, seed=0)
    pool.query(numbered(0, 1))
    fakes = numbered(1, 16).to(torch.bfloat16).requires_grad_(True)
    returned = pool.query(fakes)
    assert returned.dtype == torch.bfloat16 and not returned.requires_grad


def test_wrong_sample_shape_is_refused() -> None:
    pool = ImagePool(2, SAMPLE_SHAPE)
    with pytest.raises(ValueError, match="shape"):
        pool.query(torch.zeros(1, 1, 4, 4, 4))


def test_derived_seeds_differ_per_stream_and_are_stable() -> None:
    assert derive_seed(0, 1) == derive_seed(0, 1)
    assert len({derive_seed(seed, stream) for seed in range(3) for stream in range(3)}) == 9
    assert 0 <= derive_seed(2**40, 5) < 2**63
