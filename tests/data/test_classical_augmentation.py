"""Classical augmentation: seeded, the mask follows the image, values stay in the network range."""

from __future__ import annotations

import torch

from medgan.data.classical_augmentation import ClassicalAugmentation


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    grid = torch.stack(torch.meshgrid(*[torch.arange(24.0)] * 3, indexing="ij"))
    masks = torch.stack([((grid - c).pow(2).sum(0) <= 16).unsqueeze(0) for c in (8.0, 12.0, 15.0, 10.0)])
    images = torch.where(masks, 0.8, -0.5)
    return images, masks


def test_the_same_seed_gives_the_same_batch_and_another_seed_another() -> None:
    images, masks = _batch()
    first = ClassicalAugmentation(seed=3, with_masks=True)(images, masks)
    second = ClassicalAugmentation(seed=3, with_masks=True)(images, masks)
    third = ClassicalAugmentation(seed=4, with_masks=True)(images.repeat(4, 1, 1, 1, 1), masks.repeat(4, 1, 1, 1, 1))
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])
    assert not torch.equal(third[0][:4], first[0])
    assert torch.equal(images, _batch()[0])  # inputs untouched


def test_the_mask_moves_with_the_image_and_values_stay_in_range() -> None:
    images, masks = _batch()
    augmentation = ClassicalAugmentation(seed=0, with_masks=True)
    changed = 0
    for _ in range(6):
        out_images, out_masks = augmentation(images, masks)
        assert out_images.shape == images.shape and out_masks.dtype == torch.bool
        assert out_images.min() >= -1.0 and out_images.max() <= 1.0
        changed += int(not torch.equal(out_masks, masks))
        for image, mask in zip(out_images, out_masks, strict=True):
            # intensity changes keep the lesion brighter than its surroundings; spatial ones move both
            inside, outside = image[mask].mean(), image[~mask].mean()
            assert inside > outside + 0.3
    assert changed > 0  # some batch was moved spatially
