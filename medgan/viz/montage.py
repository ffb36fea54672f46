"""Slice montages: one PNG row per named 3D volume, axial / coronal / sagittal columns.

Used for run samples, the sample-data preview and reports, so that a person can
see at a glance whether a pseudo-CT looks like the CT it should match.

Orientation. Volumes are assumed to be in **RAS voxel order**, as MONAI
``Orientationd(axcodes="RAS")`` yields and as ``nibabel.orientations.aff2axcodes``
names it: the index ``i`` grows toward the patient's Right, ``j`` toward Anterior,
``k`` toward Superior (each code names the positive end of the axis). Panels are
drawn in radiological convention:

- axial (slice ``k``): anterior at the top, the patient's right on the image left
  (viewed from the feet);
- coronal (slice ``j``): superior at the top, the patient's right on the image left
  (viewed from the front);
- sagittal (slice ``i``): superior at the top, anterior on the image left.

In all three planes this is the same operation on the 2D slice: flip both axes,
then transpose (see :func:`display_slice`). Small letters at the panel edges
(R, A, S) mark the directions. A volume in another orientation is drawn, but its
letters are then wrong: reorient it first.

Rendering uses matplotlib's object-oriented API with the Agg canvas, so no
display and no pyplot global state are involved. The PNG is written atomically
(temporary name, fsync, rename), here rather than through :mod:`medgan.io.atomic`
because ``medgan.viz`` is a leaf: it imports nothing of medgan but its errors, so
any layer may draw without pulling in the readers and MONAI.
"""

from __future__ import annotations

import io
import os
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from medgan.errors import InputError
from medgan.viz.volumes import VolumeLike, as_volume

PLANES = ("axial", "coronal", "sagittal")
# Which voxel axis each plane slices through (RAS order: 0 = i, 1 = j, 2 = k).
PLANE_AXIS = {"axial": 2, "coronal": 1, "sagittal": 0}
# Letters at the (left edge, top edge) of each plane in radiological display.
PLANE_EDGE_LETTERS = {"axial": ("R", "A"), "coronal": ("R", "S"), "sagittal": ("A", "S")}

# Layout in inches; the PNG size follows from these and ``dpi`` (see montage_layout).
LABEL_WIDTH_IN = 0.5
PANEL_IN = 2.0
GAP_IN = 0.1
COLORBAR_GAP_IN = 0.1
COLORBAR_WIDTH_IN = 0.15
COLORBAR_LABELS_IN = 0.65
HEADER_IN = 0.3
TITLE_IN = 0.4
BOTTOM_IN = 0.1

OVERLAY_COLOR = "red"
EDGE_LETTER_COLOR = "#ffd000"
DEFAULT_PERCENTILES = (0.5, 99.5)


@dataclass(frozen=True)
class MontageLayout:
    """Pixel geometry of a montage: image size and each panel's box.

    ``panel_boxes_px[row][col]`` is ``(top, left, bottom, right)`` in PNG pixel
    coordinates (row 0 at the top), end-exclusive; columns are axial, coronal,
    sagittal. Each image is letterboxed (aspect kept) inside its square box.
    """

    height_px: int
    width_px: int
    dpi: float
    panel_boxes_px: tuple[tuple[tuple[int, int, int, int], ...], ...]
    colorbar_boxes_px: tuple[tuple[int, int, int, int], ...]


def montage_layout(n_rows: int, *, has_title: bool, dpi: float = 100) -> MontageLayout:
    """Compute the montage geometry for ``n_rows`` volumes.

    Width is ``LABEL_WIDTH_IN + 3 * PANEL_IN + 2 * GAP_IN + COLORBAR_GAP_IN + COLORBAR_WIDTH_IN
    + COLORBAR_LABELS_IN`` = 7.6 in; height is ``HEADER_IN + n_rows * PANEL_IN + (n_rows - 1) * GAP_IN
    + BOTTOM_IN`` (+ ``TITLE_IN`` with a title). At 100 dpi four rows with a title are 760 x 910 px.
    """
    if n_rows < 1:
        raise InputError("a montage needs at least one row", fix="pass rows={'name': volume, ...}")
    width_in = LABEL_WIDTH_IN + 3 * PANEL_IN + 2 * GAP_IN + COLORBAR_GAP_IN + COLORBAR_WIDTH_IN
    width_in += COLORBAR_LABELS_IN
    top_in = (TITLE_IN if has_title else 0.0) + HEADER_IN
    height_in = top_in + n_rows * PANEL_IN + (n_rows - 1) * GAP_IN + BOTTOM_IN

    def px(inches: float) -> int:
        return int(round(inches * dpi))

    panels = []
    colorbars = []
    for row in range(n_rows):
        top = top_in + row * (PANEL_IN + GAP_IN)
        boxes = []
        for col in range(3):
            left = LABEL_WIDTH_IN + col * (PANEL_IN + GAP_IN)
            boxes.append((px(top), px(left), px(top + PANEL_IN), px(left + PANEL_IN)))
        panels.append(tuple(boxes))
        cbar_left = LABEL_WIDTH_IN + 3 * PANEL_IN + 2 * GAP_IN + COLORBAR_GAP_IN
        colorbars.append((px(top), px(cbar_left), px(top + PANEL_IN), px(cbar_left + COLORBAR_WIDTH_IN)))
    return MontageLayout(
        height_px=px(height_in),
        width_px=px(width_in),
        dpi=dpi,
        panel_boxes_px=tuple(panels),
        colorbar_boxes_px=tuple(colorbars),
    )


def display_slice(volume_ras: np.ndarray, plane: str, index: int) -> np.ndarray:
    """Return one 2D slice of an RAS-ordered volume, oriented for radiological display.

    The result's row 0 is the top of the image and column 0 its left: for the axial
    plane that is anterior / patient's right, for coronal superior / patient's right,
    for sagittal superior / anterior. Every plane's slice has its two remaining axes
    both pointing toward R, A or S, so flipping both and transposing puts their
    positive ends at the top-left.
    """
    if plane not in PLANE_AXIS:
        raise InputError(f"unknown plane {plane!r}", fix=f"use one of {', '.join(PLANES)}")
    slice_2d = np.take(volume_ras, index, axis=PLANE_AXIS[plane])
    return np.flip(slice_2d, axis=(0, 1)).T


def _pixel_aspect(plane: str, spacing: Sequence[float] | None) -> float:
    """Height/width of one displayed pixel, so anisotropic voxels are not distorted."""
    if spacing is None:
        return 1.0
    sx, sy, sz = (float(s) for s in spacing)
    # displayed (row axis, column axis) spacing per plane
    rows_cols = {"axial": (sy, sx), "coronal": (sz, sx), "sagittal": (sz, sy)}[plane]
    return rows_cols[0] / rows_cols[1]


def _default_window(volume: np.ndarray) -> tuple[float, float]:
    """Robust display window: the 0.5th-99.5th percentile of the finite voxels."""
    finite = volume[np.isfinite(volume)]
    if finite.size == 0:
        return (0.0, 1.0)
    low, high = (float(v) for v in np.percentile(finite, DEFAULT_PERCENTILES))
    if high <= low:  # constant volume: any window containing the value will do
        low, high = low - 0.5, low + 0.5
    return (low, high)


def _slice_indices(shape: tuple[int, ...], slices: Sequence[int] | None, row: str) -> dict[str, int]:
    """Per-plane slice index for one row: the given (i, j, k) or the mid-slices."""
    if slices is None:
        point = tuple(n // 2 for n in shape)
    else:
        point = tuple(int(s) for s in slices)
        if len(point) != 3:
            raise InputError(f"slices must be three voxel indices (i, j, k), got {slices!r}")
        for axis, (value, size) in enumerate(zip(point, shape, strict=True)):
            if not 0 <= value < size:
                raise InputError(
                    f"slice index {value} on axis {axis} is outside row {row!r} of shape {shape}",
                    fix="pass indices within the volume, or slices=None for the mid-slices",
                )
    return {plane: point[PLANE_AXIS[plane]] for plane in PLANES}


def _write_atomically(path: Path, content: bytes) -> None:
    """Write ``content`` to a temporary name beside ``path``, fsync it, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        with open(tmp_path, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def _check_keys(kind: str, given: Mapping[str, object] | None, rows: Mapping[str, object]) -> None:
    unknown = sorted(set(given or {}) - set(rows))
    if unknown:
        raise InputError(
            f"{kind} names rows that do not exist: {unknown}; rows are {list(rows)}",
            fix=f"key {kind} by the row names passed in rows",
        )


def save_montage(
    rows: Mapping[str, VolumeLike],
    path: str | Path,
    *,
    windows: Mapping[str, tuple[float, float]] | None = None,
    overlays: Mapping[str, VolumeLike] | None = None,
    title: str | None = None,
    slices: Sequence[int] | None = None,
    cmaps: Mapping[str, str] | None = None,
    spacing: Sequence[float] | None = None,
    dpi: float = 100,
) -> Path:
    """Write a PNG grid: one row per named 3D volume, columns axial / coronal / sagittal.

    ``rows`` maps a row label (e.g. ``"MRI"``, ``"CT (HU)"``, ``"pseudo-CT"``, ``"|error|"``)
    to an RAS-ordered volume (array, tensor or MetaTensor; leading size-1 axes are
    dropped). ``windows`` gives a row's display range (e.g. ``{"CT (HU)": (-1000, 1500)}``);
    rows without one use the 0.5th-99.5th percentile. ``overlays`` maps a row label to
    a mask of that row's shape whose outline is drawn in red (e.g. a lesion mask).
    ``slices`` is the voxel ``(i, j, k)`` where the three planes cross (default: the
    centre of each volume). ``cmaps`` picks a colormap per row (default gray);
    ``spacing`` (mm per voxel along i, j, k) keeps anisotropic voxels in proportion.
    Each row has its own colorbar. The file is written atomically; returns its path.
    """
    if not rows:
        raise InputError("save_montage needs at least one row", fix="pass rows={'name': volume, ...}")
    _check_keys("windows", windows, rows)
    _check_keys("overlays", overlays, rows)
    _check_keys("cmaps", cmaps, rows)
    volumes = {name: as_volume(vol, f"row {name!r}") for name, vol in rows.items()}
    masks: dict[str, np.ndarray] = {}
    for name, mask in (overlays or {}).items():
        masks[name] = as_volume(mask, f"overlay {name!r}") > 0
        if masks[name].shape != volumes[name].shape:
            raise InputError(
                f"overlay {name!r} has shape {masks[name].shape}, its row has {volumes[name].shape}",
                fix="pass a mask on the same voxel grid as the volume it outlines",
            )

    layout = montage_layout(len(volumes), has_title=title is not None, dpi=dpi)
    fig = Figure(figsize=(layout.width_px / dpi, layout.height_px / dpi), dpi=dpi, facecolor="white")
    FigureCanvasAgg(fig)
    if title is not None:
        fig.suptitle(title, y=1 - (TITLE_IN / 2) * dpi / layout.height_px, va="center", fontsize=12)

    def fig_rect(box: tuple[int, int, int, int]) -> list[float]:
        top, left, bottom, right = box
        return [
            left / layout.width_px,
            1 - bottom / layout.height_px,
            (right - left) / layout.width_px,
            (bottom - top) / layout.height_px,
        ]

    for row_index, (name, volume) in enumerate(volumes.items()):
        low, high = (windows or {}).get(name) or _default_window(volume)
        if not high > low:
            raise InputError(f"window for row {name!r} must have low < high, got ({low}, {high})")
        cmap = (cmaps or {}).get(name, "gray")
        indices = _slice_indices(volume.shape, slices, name)
        image = None
        for col, plane in enumerate(PLANES):
            ax = fig.add_axes(fig_rect(layout.panel_boxes_px[row_index][col]))
            ax.set_facecolor("black")
            ax.set_xticks([])
            ax.set_yticks([])
            image = ax.imshow(
                display_slice(volume, plane, indices[plane]),
                cmap=cmap,
                vmin=low,
                vmax=high,
                aspect=_pixel_aspect(plane, spacing),
                interpolation="nearest",
            )
            # keep the axes box square and pad the image with black, so panels line up
            ax.set_adjustable("datalim")
            if name in masks:
                mask_2d = display_slice(masks[name], plane, indices[plane])
                if mask_2d.any():
                    ax.contour(mask_2d.astype(np.float32), levels=[0.5], colors=OVERLAY_COLOR, linewidths=1.0)
            left_letter, top_letter = PLANE_EDGE_LETTERS[plane]
            text_style = {"color": EDGE_LETTER_COLOR, "fontsize": 7, "transform": ax.transAxes}
            ax.text(0.02, 0.5, left_letter, ha="left", va="center", **text_style)
            ax.text(0.5, 0.98, top_letter, ha="center", va="top", **text_style)
            if row_index == 0:
                ax.set_title(f"{plane} ({'ijk'[PLANE_AXIS[plane]]}={indices[plane]})", fontsize=9)
            if col == 0:
                ax.set_ylabel(name, fontsize=9)
        cbar_ax = fig.add_axes(fig_rect(layout.colorbar_boxes_px[row_index]))
        colorbar = fig.colorbar(image, cax=cbar_ax)
        colorbar.ax.tick_params(labelsize=7)

    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=dpi)
    path = Path(path)
    _write_atomically(path, png.getvalue())
    return path
