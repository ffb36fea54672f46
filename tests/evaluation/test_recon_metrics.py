"""Reconstruction metrics against known answers; the hallucination indicator sees an invented blob."""

from __future__ import annotations

import math

import numpy as np
import pytest

from medgan.data.kspace import line_mask
from medgan.evaluation.recon_metrics import hallucination_report, invented_mask, nmse, psnr, ssim, volume_metrics


def phantom(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    volume = np.zeros((3, 32, 32))
    volume[:, 8:24, 8:24] = 1.0
    return volume + 0.01 * rng.standard_normal(volume.shape)


def test_known_values() -> None:
    gt = phantom()
    assert nmse(gt, gt) == 0.0 and psnr(gt, gt) == math.inf and ssim(gt, gt) == pytest.approx(1.0)
    assert nmse(gt, np.zeros_like(gt)) == pytest.approx(1.0)
    shifted = gt + 0.1
    assert psnr(gt, shifted) == pytest.approx(10 * math.log10(gt.max() ** 2 / 0.01), rel=1e-6)
    assert set(volume_metrics(gt, shifted)) == {"nmse", "psnr", "ssim"} and ssim(gt, shifted) < 1.0
    with pytest.raises(ValueError, match="must be equal"):
        nmse(gt, gt[:2])


def test_hallucination_report_finds_an_invented_blob_and_zero_for_a_perfect_recon() -> None:
    gt = phantom(1).astype(np.float32)
    mask = line_mask(32, 4, 0.08, seed=0).numpy()[None, None, :]
    perfect = hallucination_report(gt, gt, mask)
    assert perfect["unsampled_error_energy"] == 0.0 and perfect["invented_regions"] == 0
    invented = gt.copy()
    invented[1, 12:16, 12:16] += 0.5  # a structure the reference does not have
    report = hallucination_report(gt, invented, mask)
    blob = invented_mask(gt, invented)
    assert blob.sum() == 16 and blob[1, 12:16, 12:16].all()  # the map the error montage outlines
    speck = gt.copy()
    speck[0, 2, 2] += 0.5  # one voxel: below min_voxels, not a structure
    assert not invented_mask(gt, speck).any()
    assert report["invented_regions"] == 1 and report["invented_volume_fraction"] == pytest.approx(16 / gt.size)
    assert report["unsampled_error_energy"] > 0 and report["noise_sigma"] == pytest.approx(0.01, rel=0.3)
    zeros = hallucination_report(gt, np.zeros_like(gt), mask)
    assert zeros["unsampled_error_energy"] == pytest.approx(1.0)
