"""Tests for medgan.viz.montage: PNG size, panel count, radiological orientation."""

from __future__ import annotations

import matplotlib.image as mpimg
import nibabel as nib
import numpy as np
import pytest
import torch

from medgan.errors import InputError
from medgan.viz import display_slice, montage_layout, save_montage


def _runs(flags: np.ndarray, min_length: int = 10) -> int:
    """Number of contiguous True runs of at least ``min_length`` pixels in a 1D boolean array."""
    padded = np.concatenate([[False], flags, [False]]).astype(np.int8)
    starts = np.flatnonzero(np.diff(padded) == 1)
    ends = np.flatnonzero(np.diff(padded) == -1)
    return int(np.sum(ends - starts >= min_length))


def test_layout_size_by_hand() -> None:
    # width 0.5 + 3*2.0 + 2*0.1 + 0.1 + 0.15 + 0.65 = 7.6 in; height 0.4 + 0.3 + 4*2.0 + 3*0.1 + 0.1 = 9.1 in
    layout = montage_layout(4, has_title=True, dpi=100)
    assert (layout.height_px, layout.width_px) == (910, 760)
    assert montage_layout(1, has_title=False, dpi=50).height_px == 120  # (0.3 + 2.0 + 0.1) * 50
    assert layout.panel_boxes_px[0][0] == (70, 50, 270, 250)
    assert layout.panel_boxes_px[3][2] == (700, 470, 900, 670)


def test_png_has_right_size_and_one_panel_per_row_and_plane(tmp_path) -> None:
    # each row is a constant volume at a quarter / three quarters of its window,
    # so its three panels are uniform gray patches we can count in the PNG
    shape = (12, 14, 10)
    rows = {
        "MRI": np.full(shape, 25.0),
        "CT (HU)": torch.full((1, *shape), 875.0),  # channel-first tensor is accepted
        "pseudo-CT": np.full(shape, 875.0),
        "|error|": np.full(shape, 25.0),
    }
    windows = {"MRI": (0, 100), "CT (HU)": (-1000, 1500), "pseudo-CT": (-1000, 1500), "|error|": (0, 100)}
    out = save_montage(rows, tmp_path / "m.png", windows=windows, title="subject 1")
    assert out == tmp_path / "m.png"
    png = mpimg.imread(out)
    assert png.shape[:2] == (910, 760)
    assert not list(tmp_path.glob(".*tmp*")), "no temporary file left behind"

    layout = montage_layout(4, has_title=True)
    expected_gray = {0: 0.25, 1: 0.75, 2: 0.75, 3: 0.25}
    for row, gray in expected_gray.items():
        top, _, bottom, _ = layout.panel_boxes_px[row][0]
        line = png[(top + bottom) // 2, :, :3]
        is_row_gray = np.all(np.abs(line - gray) < 3 / 255, axis=1)
        assert _runs(is_row_gray) == 3, f"row {row} should show 3 panels"
    # down the axial column: quarter-gray panels in rows 0 and 3 only
    _, left, _, right = layout.panel_boxes_px[0][0]
    column = png[:, (left + right) // 2, :3]
    assert _runs(np.all(np.abs(column - 0.25) < 3 / 255, axis=1)) == 2
    assert _runs(np.all(np.abs(column - 0.75) < 3 / 255, axis=1)) == 2


def _bright_centroid(png: np.ndarray, box: tuple[int, int, int, int]) -> tuple[float, float]:
    """Centroid of white pixels in a panel, as fractions (0 = top/left, 1 = bottom/right)."""
    top, left, bottom, right = box
    panel = png[top:bottom, left:right, :3]
    rows, cols = np.nonzero(np.all(panel > 0.9, axis=2))
    assert rows.size > 0, "marker not visible"
    return rows.mean() / (bottom - top), cols.mean() / (right - left)


@pytest.mark.parametrize("corner_name", ["RAS", "LPI"])
def test_marker_appears_where_radiologists_expect(tmp_path, corner_name: str) -> None:
    # Which index end is Right / Anterior / Superior is read from nibabel, not assumed:
    # for an identity affine aff2axcodes names the positive end of each voxel axis.
    shape = (8, 10, 12)
    axcodes = nib.orientations.aff2axcodes(np.eye(4))
    assert axcodes == ("R", "A", "S")
    corner = tuple((n - 1) if code in corner_name else 0 for n, code in zip(shape, axcodes, strict=True))
    volume = np.zeros(shape)
    volume[corner] = 1.0
    out = save_montage({"marker": volume}, tmp_path / "marker.png", windows={"marker": (0, 1)}, slices=corner)
    png = mpimg.imread(out)
    layout = montage_layout(1, has_title=False)
    for col, plane in enumerate(("axial", "coronal", "sagittal")):
        row_frac, col_frac = _bright_centroid(png, layout.panel_boxes_px[0][col])
        if corner_name == "RAS":
            # axial: anterior up, patient's right on the left; coronal: superior up, right on the left;
            # sagittal: superior up, anterior on the left
            assert row_frac < 0.5 and col_frac < 0.5, f"{plane}: marker at {row_frac:.2f}, {col_frac:.2f}"
        else:
            assert row_frac > 0.5 and col_frac > 0.5, f"{plane}: marker at {row_frac:.2f}, {col_frac:.2f}"


def test_display_slice_by_hand() -> None:
    volume = np.arange(2 * 3 * 4).reshape(2, 3, 4)
    axial = display_slice(volume, "axial", 1)
    # image (row, col) = voxel (i = I-1-col, j = J-1-row, k): rows are j from anterior, cols i from right
    assert axial.shape == (3, 2)
    assert axial[0, 0] == volume[1, 2, 1]
    assert axial[2, 1] == volume[0, 0, 1]
    sagittal = display_slice(volume, "sagittal", 0)
    assert sagittal.shape == (4, 3)
    assert sagittal[0, 0] == volume[0, 2, 3]


def test_overlay_contour_is_drawn_in_red(tmp_path) -> None:
    volume = np.zeros((16, 16, 16))
    lesion_mask = np.zeros_like(volume)
    lesion_mask[5:11, 5:11, 5:11] = 1
    out = save_montage({"CT": volume}, tmp_path / "o.png", windows={"CT": (-1, 1)}, overlays={"CT": lesion_mask})
    png = mpimg.imread(out)
    top, left, bottom, right = montage_layout(1, has_title=False).panel_boxes_px[0][0]
    panel = png[top:bottom, left:right, :3]
    red = (panel[..., 0] > 0.8) & (panel[..., 1] < 0.3) & (panel[..., 2] < 0.3)
    assert red.sum() > 50
    without = mpimg.imread(save_montage({"CT": volume}, tmp_path / "n.png", windows={"CT": (-1, 1)}))
    panel = without[top:bottom, left:right, :3]
    assert not ((panel[..., 0] > 0.8) & (panel[..., 1] < 0.3)).any()


def test_user_errors(tmp_path) -> None:
    volume = np.zeros((4, 4, 4))
    with pytest.raises(InputError, match="3D"):
        save_montage({"flat": np.zeros((4, 4))}, tmp_path / "a.png")
    with pytest.raises(InputError, match="overlay"):
        save_montage({"CT": volume}, tmp_path / "a.png", overlays={"CT": np.zeros((4, 4, 5))})
    with pytest.raises(InputError, match="do not exist"):
        save_montage({"CT": volume}, tmp_path / "a.png", windows={"MRI": (0, 1)})
    with pytest.raises(InputError, match="outside"):
        save_montage({"CT": volume}, tmp_path / "a.png", slices=(0, 0, 4))
    with pytest.raises(InputError, match="low < high"):
        save_montage({"CT": volume}, tmp_path / "a.png", windows={"CT": (1, 1)})
    assert not (tmp_path / "a.png").exists()
