"""Reading a DICOM series (or one DICOM file) into float32 voxels with a RAS affine.

The headers are planned by :mod:`medgan.io.dicom_series`; this module checks the
decoders and pixel data, decodes with pydicom, applies RescaleSlope/Intercept per
slice in float (CT in HU), resolves slices that share a position, and resamples
only when the options asked for it (gantry tilt, gaps).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pydicom
from pydicom.pixels import get_decoder
from pydicom.uid import UID
from scipy import ndimage

from medgan.errors import DicomSeriesError, InputError
from medgan.io.checks import check_memory_budget, check_slice_count, record_warning
from medgan.io.dicom_series import (
    SeriesPlan,
    SliceHeader,
    drop_non_slices,
    drop_repeated_instances,
    plan_series,
    read_slice_header,
    scan_dicom_folder,
    select_series,
)
from medgan.io.geometry import dicom_affine_ras
from medgan.io.loaded import LoadedVolume
from medgan.io.options import ReadOptions

logger = logging.getLogger(__name__)

# pydicom plugin name -> what to pip install for it.
_PLUGIN_PACKAGES = {
    "gdcm": "python-gdcm",
    "pylibjpeg": "pylibjpeg plus pylibjpeg-libjpeg / pylibjpeg-openjpeg / pylibjpeg-rle (per codec)",
    "pyjpegls": "pyjpegls",
    "pillow": "pillow",
}


def is_dicom_file(path: Path) -> bool:
    """True when the file carries the DICOM Part 10 preamble marker ('DICM' at byte 128)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(128)
            return handle.read(4) == b"DICM"
    except OSError:
        return False


def check_decoders(headers: list[SliceHeader]) -> None:
    """Refuse, before decoding, a transfer syntax for which no pixel decoder is installed."""
    for transfer_syntax in sorted({h.transfer_syntax for h in headers}):
        example = next(h for h in headers if h.transfer_syntax == transfer_syntax)
        uid = UID(transfer_syntax)
        try:
            decoder = get_decoder(uid)
        except NotImplementedError as err:
            raise InputError(
                f"pixel data uses transfer syntax {uid.name} ({uid}), which pydicom cannot decode",
                path=example.path,
                fix="convert the series to an uncompressed transfer syntax (e.g. gdcmconv --raw, dcmdjpeg)",
            ) from err
        if not decoder.is_available:
            unavailable = getattr(decoder, "_unavailable", None) or _PLUGIN_PACKAGES  # private in pydicom 3
            plugins = ", ".join(_PLUGIN_PACKAGES.get(name, name) for name in unavailable)
            raise InputError(
                f"pixel data is compressed as {uid.name} and no decoder for it is installed "
                f"({'; '.join(decoder.missing_dependencies)})",
                path=example.path,
                fix=f"pip install one of: {plugins}; or convert the series to an uncompressed transfer "
                "syntax (gdcmconv --raw, dcmdjpeg)",
            )


def _expected_pixel_bytes(dataset: pydicom.Dataset) -> int:
    """Bytes of native (uncompressed) pixel data the header promises."""
    bits = int(dataset.get("BitsAllocated", 16))
    count = int(dataset.Rows) * int(dataset.Columns) * int(dataset.get("SamplesPerPixel", 1) or 1)
    return (count * bits + 7) // 8


def decode_slice(header: SliceHeader, read_warnings: list[str]) -> np.ndarray:
    """Decode one slice and apply its RescaleSlope/Intercept in float; returns (columns, rows) = (i, j)."""
    try:
        dataset = pydicom.dcmread(header.path)
    except Exception as err:  # pydicom raises many types for damaged files
        raise InputError(f"file cannot be read to the end, it is truncated or corrupt ({err})",
                         path=header.path, fix="re-copy or re-export the file") from err
    if "PixelData" not in dataset:
        raise InputError("image header but no pixel data", path=header.path, fix="re-export the file")
    uid = UID(header.transfer_syntax)
    if not uid.is_compressed:
        expected = _expected_pixel_bytes(dataset)
        if len(dataset.PixelData) < expected:
            raise InputError(
                f"pixel data is truncated: {len(dataset.PixelData)} bytes where the header "
                f"({dataset.Rows} rows x {dataset.Columns} columns x {dataset.get('BitsAllocated')} bits) "
                f"needs {expected}",
                path=header.path,
                fix="re-copy or re-export the file; the transfer was probably cut short",
            )
    try:
        stored = dataset.pixel_array
    except Exception as err:  # decoder failures come as RuntimeError / ValueError / plugin errors
        raise InputError(
            f"cannot decode {uid.name} pixel data ({err})",
            path=header.path,
            fix="install a decoder that supports it (pylibjpeg with its codec plugins, or python-gdcm), "
            "or convert the series to an uncompressed transfer syntax",
        ) from err
    slope = float(dataset.get("RescaleSlope", 1.0) or 1.0)
    intercept = float(dataset.get("RescaleIntercept", 0.0) or 0.0)
    if not np.isfinite(slope) or not np.isfinite(intercept):
        raise InputError(f"RescaleSlope {slope} / RescaleIntercept {intercept} are not finite",
                         path=header.path, fix="repair the header or re-export the series")
    values = stored.astype(np.float64) * slope + intercept
    return values.T.astype(np.float32)


def _resolve_shared_positions(plan: SeriesPlan, slices: list[list[np.ndarray]], folder: Path,
                              read_warnings: list[str]) -> list[np.ndarray]:
    """One slice per position: identical copies are dropped (logged), different pixels are an error."""
    resolved = []
    for group, decoded in zip(plan.position_groups, slices, strict=True):
        for other_header, other in zip(group[1:], decoded[1:], strict=True):
            if not np.array_equal(decoded[0], other):
                raise DicomSeriesError(
                    f"{group[0].path.name} and {other_header.path.name} are at the same position "
                    f"({float(group[0].position @ plan.normal):.2f} mm along the normal) with different "
                    "pixels; the series mixes acquisitions (echoes, phases, time points or b-values)",
                    path=folder,
                    fix="split the acquisitions into separate folders (e.g. by EchoTime / TemporalPosition"
                    "Identifier) and read one",
                )
            record_warning(read_warnings, f"dropped {other_header.path.name}: same position and pixels as "
                                          f"{group[0].path.name} (a duplicate slice)")
        resolved.append(decoded[0])
    return resolved


def _undo_gantry_tilt(voxels: np.ndarray, plan: SeriesPlan) -> np.ndarray:
    """Shift each slice in-plane by its tilt drift so all slices sit on the first slice's grid."""
    fill = float(voxels.min())
    corrected = np.empty_like(voxels)
    for k in range(voxels.shape[2]):
        offset = plan.inplane_offsets[k]
        # Grid point (i, j) of slice k lies at (i, j) + drift in that slice's own pixel grid.
        di = -float(offset @ plan.row_cosine) / plan.pixel_spacing[1]
        dj = -float(offset @ plan.column_cosine) / plan.pixel_spacing[0]
        corrected[:, :, k] = ndimage.shift(voxels[:, :, k], shift=(-di, -dj), order=1, mode="constant",
                                           cval=fill)
    return corrected


def _uniform_locations(plan: SeriesPlan) -> np.ndarray:
    """Slice locations on a uniform grid at the usual spacing, from the first to the last slice."""
    count = int(round((plan.locations[-1] - plan.locations[0]) / plan.slice_spacing)) + 1
    return plan.locations[0] + np.arange(count) * plan.slice_spacing


def _interpolate_onto(voxels: np.ndarray, locations: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Linear interpolation along the slice axis from irregular ``locations`` onto ``targets``."""
    upper = np.clip(np.searchsorted(locations, targets, side="right"), 1, len(locations) - 1)
    lower = upper - 1
    weight = np.clip((targets - locations[lower]) / (locations[upper] - locations[lower]), 0.0, 1.0)
    return (voxels[:, :, lower] * (1 - weight) + voxels[:, :, upper] * weight).astype(np.float32)


def _collect_headers(path: Path, series_uid: str | None, read_warnings: list[str]) -> list[SliceHeader]:
    """The candidate slice headers of a folder's chosen series, or of one DICOM file."""
    if path.is_dir():
        headers = select_series(scan_dicom_folder(path), series_uid, path)
        headers = drop_repeated_instances(headers, read_warnings)
        return drop_non_slices(headers, path, read_warnings)
    header = read_slice_header(path)
    if header is None:
        raise InputError("not a DICOM image file", path=path,
                         fix="give a DICOM series folder, a DICOM image file or a NIfTI (.nii / .nii.gz) file")
    return [header]


def read_dicom(path: Path, series_uid: str | None, options: ReadOptions) -> LoadedVolume:
    """Read a DICOM series folder (or one DICOM file) as float32 voxels (columns, rows, slices) + RAS affine.

    Slices are grouped by SeriesInstanceUID and geometry, sorted by ImagePositionPatient along the
    slice normal, and rescaled per slice (CT in HU). Everything dropped or repaired is logged and
    returned in ``read_warnings``; anything ambiguous is a :class:`DicomSeriesError`.
    """
    read_warnings: list[str] = []
    headers = _collect_headers(path, series_uid, read_warnings)
    plan = plan_series(headers, path, options, read_warnings)
    first = plan.first
    n_slices = len(plan.position_groups)
    resample_gaps = bool(plan.gaps)
    output_slices = len(_uniform_locations(plan)) if resample_gaps else n_slices
    check_slice_count((first.columns, first.rows, n_slices), path, options)
    check_memory_budget((first.columns, first.rows, max(output_slices, n_slices)), path, options)
    check_decoders([h for group in plan.position_groups for h in group])

    decoded = [[decode_slice(h, read_warnings) for h in group] for group in plan.position_groups]
    voxels = np.stack(_resolve_shared_positions(plan, decoded, path, read_warnings), axis=2)
    modality = first.modality
    if modality == "CT" and not first.has_rescale:
        record_warning(read_warnings, "CT slices carry no RescaleSlope/Intercept; stored values taken as HU")
    if plan.tilted:
        voxels = _undo_gantry_tilt(voxels, plan)
    if resample_gaps:
        voxels = _interpolate_onto(voxels, plan.locations, _uniform_locations(plan))
        slice_step = plan.normal * plan.slice_spacing
    elif n_slices > 1:
        slice_step = plan.normal * (plan.locations[-1] - plan.locations[0]) / (n_slices - 1)
    else:
        slice_step = plan.normal * plan.slice_spacing
    affine = dicom_affine_ras(plan.row_cosine, plan.column_cosine, plan.pixel_spacing, slice_step,
                              first.position)
    geometry = {
        "image_orientation_patient": [float(v) for v in np.concatenate([plan.row_cosine, plan.column_cosine])],
        "pixel_spacing": [float(v) for v in plan.pixel_spacing],
        "slice_spacing": float(np.linalg.norm(slice_step)),
        "slice_thickness": float(first.slice_thickness or np.linalg.norm(slice_step)),
        "patient_position": first.patient_position,
        "gantry_tilt_degrees": float(plan.tilt_degrees),
    }
    extra = {"dicom_geometry": geometry, "series_instance_uid": first.series_uid,
             "series_description": first.series_description}
    return LoadedVolume(voxels=np.ascontiguousarray(voxels), affine_ras=affine, source_format="dicom",
                        modality=modality, read_warnings=read_warnings, extra_meta=extra)
