from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from medgan.evaluation.report.volumes import ReportGrid, choose_grid, prepare_volume
from tests.evaluation.report.heads import head_ct, write_ct


def test_the_grid_follows_the_real_scans_headers(tmp_path: Path) -> None:
    paths = [write_ct(tmp_path / f"r{i}.nii.gz", head_ct(i), spacing=s) for i, s in enumerate((2.0, 4.0, 4.0))]
    grid = choose_grid(paths)
    assert grid.spacing == 4.0  # median of the coarsest edges: no resolution invented
    assert grid.shape == (24, 24, 24)  # median extent 96 mm at 4 mm
    capped = choose_grid(paths, max_edge=16)
    assert capped.shape == (16, 16, 16) and capped.spacing == 6.0  # coarser instead of cut off
    assert choose_grid(paths, spacing=8.0).shape == (16, 16, 16)  # 96 mm / 8 mm = 12, up to a multiple of 8


def test_a_scan_stored_in_another_orientation_prepares_to_the_same_voxels(tmp_path: Path) -> None:
    head = head_ct(0)
    ras = write_ct(tmp_path / "ras.nii.gz", head)
    flipped = tmp_path / "las.nii.gz"
    nib.save(nib.Nifti1Image(head[::-1].copy(), np.diag([-4.0, 4.0, 4.0, 1.0])), str(flipped))
    grid = ReportGrid(spacing=4.0, shape=(24, 24, 24))
    a, b = prepare_volume(ras, "ct", grid, name="a"), prepare_volume(flipped, "ct", grid, name="b")
    np.testing.assert_allclose(a.values, b.values, atol=1e-3)
    assert a.body.sum() > 0.15 * a.body.size and a.values.shape == (24, 24, 24)


def test_broken_values_are_counted_not_fatal(tmp_path: Path) -> None:
    head = head_ct(0)
    head[0, 0, :5] = np.nan
    head[12, 12, 12] = 5000.0  # no CT scanner stores this
    head[1, 1, 1] = -3000.0
    volume = prepare_volume(write_ct(tmp_path / "broken.nii.gz", head), "ct", ReportGrid(4.0, (24, 24, 24)), name="x")
    assert volume.nonfinite == 5 and np.isfinite(volume.values).all()
    assert volume.outside_range_share == pytest.approx(2 / head.size)


def test_a_mask_comes_onto_the_same_grid(tmp_path: Path) -> None:
    head = head_ct(0)
    mask = np.zeros(head.shape, dtype=np.uint8)
    mask[10:14, 10:14, 10:14] = 1
    image = write_ct(tmp_path / "ct.nii.gz", head)
    mask_path = tmp_path / "lesion_mask.nii.gz"
    nib.save(nib.Nifti1Image(mask, np.diag([4.0, 4.0, 4.0, 1.0])), str(mask_path))
    volume = prepare_volume(image, "ct", ReportGrid(2.0, (48, 48, 48)), name="x", mask_path=mask_path)
    assert volume.mask is not None and volume.mask.shape == (48, 48, 48)
    assert 0.5 * 8 * 64 < volume.mask.sum() < 2 * 8 * 64  # 64 voxels of 4 mm = ~512 voxels of 2 mm
