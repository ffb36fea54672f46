"""Finding one consistent slice stack in a DICOM folder, from headers only.

Reads every file's header (never the pixels), keeps DICOM images, picks one
series, drops what is in the series but not a slice of the volume (localizers,
repeated instances), sorts along the slice normal (ImagePositionPatient . normal,
never SliceThickness or InstanceNumber) and measures the spacing and any gantry
tilt, so that every problem is found before a pixel is decoded.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError

from medgan.errors import DicomSeriesError, InputError
from medgan.io.checks import record_warning
from medgan.io.options import ReadOptions

logger = logging.getLogger(__name__)

# Slices whose positions along the normal differ by less than this (mm) share a position.
SAME_POSITION_MM = 0.01
# In-plane drift between slices above this fraction of a pixel counts as gantry tilt.
TILT_PIXEL_FRACTION = 0.05


def _floats(value, count: int) -> np.ndarray | None:
    """A multi-valued DS element as floats, or None when absent or malformed."""
    if value is None:
        return None
    try:
        numbers = np.asarray([float(v) for v in value], dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return numbers if numbers.shape == (count,) and np.all(np.isfinite(numbers)) else None


def _optional_float(value) -> float | None:
    """A single DS/IS element as float, or None when absent, empty or malformed."""
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


@dataclass
class SliceHeader:
    """What the planner needs from one DICOM image file's header."""

    path: Path
    series_uid: str
    series_description: str
    series_number: str
    sop_uid: str
    modality: str
    image_type: tuple[str, ...]
    orientation: np.ndarray | None  # ImageOrientationPatient (6,)
    position: np.ndarray | None  # ImagePositionPatient (3,), LPS mm
    pixel_spacing: tuple[float, float] | None  # (row spacing, column spacing)
    rows: int
    columns: int
    frames: int
    samples_per_pixel: int
    transfer_syntax: str
    slice_thickness: float | None
    spacing_between_slices: float | None
    patient_position: str
    has_rescale: bool

    @property
    def geometry_key(self) -> tuple:
        """Slices of one volume share orientation, pixel spacing and matrix size."""
        orientation = None if self.orientation is None else tuple(np.round(self.orientation, 3))
        spacing = None if self.pixel_spacing is None else tuple(np.round(self.pixel_spacing, 4))
        return (orientation, spacing, self.rows, self.columns)


def read_slice_header(path: Path) -> SliceHeader | None:
    """Read one file's DICOM header; None when the file is not DICOM or holds no image."""
    try:
        dataset = pydicom.dcmread(path, stop_before_pixels=True)
    except (InvalidDicomError, EOFError, OSError, ValueError, KeyError, TypeError) as err:
        logger.info("ignoring %s: not a readable DICOM file (%s)", path, err)
        return None
    if "Rows" not in dataset or "Columns" not in dataset:
        logger.info("ignoring %s: DICOM without an image (SOP class %s)", path, dataset.get("SOPClassUID", "?"))
        return None
    file_meta = getattr(dataset, "file_meta", None)
    transfer_syntax = str(getattr(file_meta, "TransferSyntaxUID", "") or pydicom.uid.ImplicitVRLittleEndian)
    spacing = _floats(dataset.get("PixelSpacing"), 2)
    return SliceHeader(
        path=path,
        series_uid=str(dataset.get("SeriesInstanceUID", "")),
        series_description=str(dataset.get("SeriesDescription", "")),
        series_number=str(dataset.get("SeriesNumber", "")),
        sop_uid=str(dataset.get("SOPInstanceUID", "")),
        modality=str(dataset.get("Modality", "")),
        image_type=tuple(str(v).upper() for v in (dataset.get("ImageType") or ())),
        orientation=_floats(dataset.get("ImageOrientationPatient"), 6),
        position=_floats(dataset.get("ImagePositionPatient"), 3),
        pixel_spacing=None if spacing is None else (float(spacing[0]), float(spacing[1])),
        rows=int(dataset.Rows),
        columns=int(dataset.Columns),
        frames=int(_optional_float(dataset.get("NumberOfFrames")) or 1),
        samples_per_pixel=int(dataset.get("SamplesPerPixel", 1) or 1),
        transfer_syntax=transfer_syntax,
        slice_thickness=_optional_float(dataset.get("SliceThickness")),
        spacing_between_slices=_optional_float(dataset.get("SpacingBetweenSlices")),
        patient_position=str(dataset.get("PatientPosition", "") or ""),
        has_rescale="RescaleSlope" in dataset or "RescaleIntercept" in dataset,
    )


def scan_dicom_folder(folder: Path) -> list[SliceHeader]:
    """Headers of every DICOM image directly in ``folder``; other files are skipped with a log line.

    Hidden files (names starting with '.') are skipped: they are staging or OS files. A folder
    without any DICOM image is an error naming what was found.
    """
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    headers = [header for header in (read_slice_header(p) for p in files) if header is not None]
    if not headers:
        subfolders = sorted(p.name for p in folder.iterdir() if p.is_dir())
        hint = f"; it has subfolders {subfolders[:5]}: point at the one holding the series" if subfolders else ""
        raise InputError(
            f"folder holds no DICOM image files ({len(files)} file(s) checked){hint}",
            path=folder,
            fix="give a folder with the .dcm slices of one series, or a NIfTI file",
        )
    return headers


def select_series(headers: list[SliceHeader], series_uid: str | None, folder: Path) -> list[SliceHeader]:
    """Keep the files of one SeriesInstanceUID; several series without ``series_uid`` is an error."""
    by_series: dict[str, list[SliceHeader]] = defaultdict(list)
    for header in headers:
        by_series[header.series_uid].append(header)

    def listing() -> str:
        return "; ".join(
            f"{uid or '<no SeriesInstanceUID>'} ({members[0].series_description or 'no description'}, "
            f"series number {members[0].series_number or '?'}, {len(members)} file(s))"
            for uid, members in sorted(by_series.items())
        )

    if series_uid is not None:
        if series_uid not in by_series:
            raise DicomSeriesError(
                f"series {series_uid} is not in this folder; it holds: {listing()}",
                path=folder,
                fix="pass one of the SeriesInstanceUIDs listed",
            )
        return by_series[series_uid]
    if len(by_series) > 1:
        raise DicomSeriesError(
            f"folder holds {len(by_series)} series: {listing()}",
            path=folder,
            fix="choose one with read_volume(..., series_uid=...) (CLI: --series-uid), or move each series "
            "into its own folder",
        )
    return headers


def drop_non_slices(headers: list[SliceHeader], folder: Path, read_warnings: list[str]) -> list[SliceHeader]:
    """Drop images that are not slices of the volume: localizers and off-geometry images (logged)."""
    groups: dict[tuple, list[SliceHeader]] = defaultdict(list)
    for header in headers:
        groups[header.geometry_key].append(header)

    def rank(members: list[SliceHeader]) -> tuple[int, int]:
        typed_localizer = all("LOCALIZER" in h.image_type for h in members)
        return (0 if typed_localizer else 1, len(members))

    ordered = sorted(groups.values(), key=rank, reverse=True)
    if len(ordered) > 1 and rank(ordered[0]) == rank(ordered[1]):
        raise DicomSeriesError(
            f"series holds {len(ordered[0])} images in each of several geometries (orientation / pixel "
            f"spacing / matrix), e.g. {ordered[0][0].path.name} and {ordered[1][0].path.name}; no single "
            "stack is the volume",
            path=folder,
            fix="separate the stacks into their own folders",
        )
    kept = [h for h in ordered[0] if "LOCALIZER" not in h.image_type] or ordered[0]
    dropped = [h for h in headers if h not in kept]
    if dropped:
        names = ", ".join(h.path.name for h in dropped[:5]) + (" ..." if len(dropped) > 5 else "")
        record_warning(
            read_warnings,
            f"dropped {len(dropped)} image(s) that are not slices of the volume (a localizer or a different "
            f"orientation / pixel spacing / matrix size): {names}",
        )
    return kept


def drop_repeated_instances(headers: list[SliceHeader], read_warnings: list[str]) -> list[SliceHeader]:
    """Keep one file per SOPInstanceUID (the same image copied twice); log the others."""
    seen: dict[str, SliceHeader] = {}
    kept: list[SliceHeader] = []
    for header in sorted(headers, key=lambda h: h.path.name):
        if header.sop_uid and header.sop_uid in seen:
            record_warning(
                read_warnings,
                f"dropped {header.path.name}: same SOPInstanceUID as {seen[header.sop_uid].path.name} "
                "(a duplicate copy of one image)",
            )
            continue
        seen[header.sop_uid] = header
        kept.append(header)
    return kept


@dataclass
class SeriesPlan:
    """A sorted slice stack and its measured geometry, decided before any pixel is decoded."""

    position_groups: list[list[SliceHeader]]  # one group per distinct position, sorted along the normal
    row_cosine: np.ndarray
    column_cosine: np.ndarray
    normal: np.ndarray
    pixel_spacing: tuple[float, float]
    locations: np.ndarray  # position of each group along the normal (mm)
    inplane_offsets: np.ndarray  # (n, 3) LPS in-plane drift of each slice from the first (gantry tilt)
    slice_spacing: float  # the usual step between slices (mm)
    tilt_degrees: float
    tilted: bool  # in-plane drift large enough to need resampling
    gaps: list[str] = field(default_factory=list)  # human-readable irregular steps

    @property
    def first(self) -> SliceHeader:
        """Header of the first slice along the normal (its position is the volume origin)."""
        return self.position_groups[0][0]


def _check_slice_headers(headers: list[SliceHeader]) -> None:
    """Refuse images that cannot be slices of a grayscale 3D volume."""
    for header in headers:
        missing = [name for name, value in (("ImageOrientationPatient", header.orientation),
                                            ("ImagePositionPatient", header.position),
                                            ("PixelSpacing", header.pixel_spacing)) if value is None]
        if missing:
            raise InputError(
                f"image has no valid {' / '.join(missing)}, so it cannot be placed in 3D",
                path=header.path,
                fix="this is not a cross-sectional CT/MR slice (or its header is damaged); remove it or "
                "re-export the series",
            )
        if header.frames > 1:
            raise InputError(
                f"multi-frame (enhanced) DICOM with {header.frames} frames is not supported",
                path=header.path,
                fix="convert it to NIfTI (e.g. dcm2niix) or to a classic single-frame series",
            )
        if header.samples_per_pixel != 1:
            raise InputError(
                f"colour image ({header.samples_per_pixel} samples per pixel); CT/MR volumes are grayscale",
                path=header.path,
                fix="give the grayscale CT/MR series, not a screenshot or secondary capture",
            )


def _measure_spacing(locations: np.ndarray, groups: list[list[SliceHeader]], options: ReadOptions,
                     fallback: float) -> tuple[float, list[str]]:
    """The usual step between slices and a description of every irregular step (gaps)."""
    if len(locations) < 2:
        return fallback, []
    steps = np.diff(locations)
    usual = float(np.median(steps))
    tolerance = options.spacing_tolerance * usual + 1e-3
    gaps = []
    for k in np.flatnonzero(np.abs(steps - usual) > tolerance):
        missing = round(steps[k] / usual) - 1
        gaps.append(
            f"{locations[k]:.2f} mm ({groups[k][0].path.name}) -> {locations[k + 1]:.2f} mm "
            f"({groups[k + 1][0].path.name}): step {steps[k]:.2f} mm where {usual:.2f} mm is expected"
            + (f" (about {missing} missing slice(s))" if missing >= 1 else "")
        )
    return usual, gaps


def plan_series(headers: list[SliceHeader], folder: Path, options: ReadOptions,
                read_warnings: list[str]) -> SeriesPlan:
    """Sort the slices along the normal, group equal positions, measure spacing and tilt; refuse gaps/tilt.

    Gaps (non-uniform steps) and gantry tilt are errors unless ``options`` allows resampling.
    """
    _check_slice_headers(headers)
    first = headers[0]
    row_cosine = first.orientation[:3] / np.linalg.norm(first.orientation[:3])
    column_cosine = first.orientation[3:] / np.linalg.norm(first.orientation[3:])
    normal = np.cross(row_cosine, column_cosine)
    normal /= np.linalg.norm(normal)
    ordered = sorted(headers, key=lambda h: (float(h.position @ normal), h.path.name))
    groups: list[list[SliceHeader]] = []
    for header in ordered:
        if groups and abs(float((header.position - groups[-1][0].position) @ normal)) < SAME_POSITION_MM:
            groups[-1].append(header)
        else:
            groups.append([header])
    locations = np.asarray([float(g[0].position @ normal) for g in groups])
    displacements = np.asarray([g[0].position for g in groups]) - groups[0][0].position
    inplane_offsets = displacements - np.outer(displacements @ normal, normal)
    fallback_spacing = first.spacing_between_slices or first.slice_thickness or 1.0
    slice_spacing, gaps = _measure_spacing(locations, groups, options, fallback_spacing)
    drift = float(np.max(np.linalg.norm(inplane_offsets, axis=1)))
    through = float(locations[-1] - locations[0])
    tilt_degrees = float(np.degrees(np.arctan2(drift, through))) if through > 0 else 0.0
    tilted = drift > TILT_PIXEL_FRACTION * min(first.pixel_spacing)
    plan = SeriesPlan(groups, row_cosine, column_cosine, normal, first.pixel_spacing, locations,
                      inplane_offsets, slice_spacing, tilt_degrees, tilted, gaps)
    if tilted:
        if not options.allow_gantry_tilt:
            raise DicomSeriesError(
                f"slices are sheared by a gantry tilt of about {tilt_degrees:.2f} degrees (in-plane drift "
                f"{drift:.2f} mm from first to last slice); the volume is not on an orthogonal grid",
                path=folder,
                fix="pass ReadOptions(allow_gantry_tilt=True) to resample onto an orthogonal grid (linear "
                "interpolation), or correct the tilt when exporting (e.g. dcm2niix)",
            )
        record_warning(read_warnings, f"gantry tilt of {tilt_degrees:.2f} degrees: slices resampled onto an "
                                      "orthogonal grid (linear interpolation)")
    if gaps:
        shown = "; ".join(gaps[:5]) + (f"; and {len(gaps) - 5} more" if len(gaps) > 5 else "")
        if not options.allow_nonuniform_spacing:
            raise DicomSeriesError(
                f"slice spacing is not uniform (missing or extra slices): {shown}",
                path=folder,
                fix="re-export or re-copy the complete series, or pass ReadOptions(allow_nonuniform_spacing="
                "True) to interpolate onto a uniform grid",
            )
        record_warning(read_warnings, f"non-uniform slice spacing interpolated onto {slice_spacing:.3f} mm: {shown}")
    return plan
