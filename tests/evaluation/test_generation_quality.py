"""Tissue statistics and pairwise MS-SSIM of generated vs real volumes, against known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from medgan.evaluation.generation_quality import (
    ct_tissue_statistics,
    mean_pairwise_ms_ssim,
    ms_ssim_scales,
    spread_ratios,
    standardised_differences,
    summarise_statistics,
)


def test_ct_tissue_statistics_count_each_tissue_in_ml() -> None:
    hu = np.full((10, 10, 10), -1000.0, dtype=np.float32)
    hu[:5] = 40.0  # 500 soft-tissue voxels
    hu[:1, :2] = 1200.0  # 20 of them bone
    stats = ct_tissue_statistics(hu, voxel_ml=0.5)
    assert stats["body_ml"] == 250.0 and stats["bone_ml"] == 10.0 and stats["soft_tissue_ml"] == 240.0
    assert stats["mean_hu_body"] == pytest.approx((480 * 40 + 20 * 1200) / 500)
    assert math.isnan(ct_tissue_statistics(np.full((4, 4, 4), -1000.0), 1.0)["mean_hu_body"])


def test_summaries_and_standardised_differences() -> None:
    real = summarise_statistics([{"bone_ml": 10.0}, {"bone_ml": 14.0}])
    assert real == {"bone_ml": {"mean": 12.0, "sd": 2.0}}
    generated = summarise_statistics([{"bone_ml": 16.0}, {"bone_ml": 16.0}])
    assert standardised_differences(generated, real) == {"bone_ml": 2.0}
    assert spread_ratios(generated, real) == {"bone_ml": 0.0}  # copies: no spread at all
    assert spread_ratios(summarise_statistics([{"bone_ml": 0.0}, {"bone_ml": 8.0}]), real) == {"bone_ml": 2.0}
    assert summarise_statistics([]) == {}


def test_ms_ssim_scales_follow_monai_size_rule() -> None:
    assert ms_ssim_scales((200, 200, 200), 11) == 5
    assert ms_ssim_scales((32, 32, 32), 5) == 3  # 32 // 4 = 8 > 4, 32 // 9 = 3 is not
    assert ms_ssim_scales((16, 16, 16), 5) == 2
    with pytest.raises(ValueError, match="too small"):
        ms_ssim_scales((4, 4, 4), 5)


def test_pairwise_ms_ssim_is_one_for_copies_and_lower_for_different_volumes() -> None:
    generator = torch.Generator().manual_seed(0)
    base = torch.rand(1, 1, 32, 32, 32, generator=generator) * 2 - 1
    copies = base.repeat(4, 1, 1, 1, 1)
    assert mean_pairwise_ms_ssim(copies) == pytest.approx(1.0, abs=1e-4)
    different = torch.rand(4, 1, 32, 32, 32, generator=generator) * 2 - 1
    assert mean_pairwise_ms_ssim(different) < 0.5
    with pytest.raises(ValueError, match="N >= 2"):
        mean_pairwise_ms_ssim(base)
