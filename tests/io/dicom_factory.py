"""Builds tiny DICOM series in code for the io tests (each bad-input case is made on purpose here)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, MRImageStorage, generate_uid

IDENTITY_ORIENTATION = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


def write_slice(
    path: Path,
    stored: np.ndarray,
    *,
    position: Sequence[float],
    series_uid: str,
    sop_uid: str | None = None,
    orientation: Sequence[float] = IDENTITY_ORIENTATION,
    pixel_spacing: tuple[float, float] = (1.0, 1.0),
    slope: float = 1.0,
    intercept: float = 0.0,
    modality: str = "CT",
    image_type: Sequence[str] = ("ORIGINAL", "PRIMARY", "AXIAL"),
    series_description: str = "test series",
    instance_number: int = 1,
    drop_pixel_bytes: int = 0,
) -> Path:
    """Write one single-frame slice; ``stored`` is (rows, columns) int16; header values as given."""
    ds = pydicom.Dataset()
    ds.SOPClassUID = CTImageStorage if modality == "CT" else MRImageStorage
    ds.SOPInstanceUID = sop_uid or generate_uid()
    ds.Modality = modality
    ds.ImageType = list(image_type)
    ds.PatientName = "Doe^Jane"
    ds.PatientID = "REAL-PATIENT-123"
    ds.StudyInstanceUID = "1.2.3.4"
    ds.SeriesInstanceUID = series_uid
    ds.SeriesDescription = series_description
    ds.SeriesNumber = 7
    ds.InstanceNumber = instance_number
    ds.PatientPosition = "HFS"
    ds.ImageOrientationPatient = [f"{v:.10f}" for v in orientation]
    ds.ImagePositionPatient = [f"{v:.6f}" for v in position]
    ds.PixelSpacing = [f"{v:.6f}" for v in pixel_spacing]
    ds.SliceThickness = "1.0"
    ds.Rows, ds.Columns = stored.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.RescaleSlope = f"{slope}"
    ds.RescaleIntercept = f"{intercept}"
    pixel_bytes = stored.astype("<i2").tobytes()
    ds.PixelData = pixel_bytes[: len(pixel_bytes) - drop_pixel_bytes] if drop_pixel_bytes else pixel_bytes
    ds["PixelData"].VR = "OW"
    ds.add_new(0x00091010, "LO", "private vendor data")  # a private tag, never to be copied by writers
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.preamble = b"\0" * 128
    ds.save_as(path, enforce_file_format=True)
    return path


def make_series(
    folder: Path,
    *,
    n_slices: int = 4,
    rows: int = 6,
    columns: int = 5,
    slice_spacing: float = 2.0,
    pixel_spacing: tuple[float, float] = (0.8, 0.6),
    origin: Sequence[float] = (-10.0, 20.0, 5.0),
    orientation: Sequence[float] = IDENTITY_ORIENTATION,
    locations: Sequence[float] | None = None,
    tilt_shift_per_slice: Sequence[float] = (0.0, 0.0, 0.0),
    series_uid: str | None = None,
    modality: str = "CT",
    slope: float = 1.0,
    intercept: float = -1024.0,
    seed: int = 0,
    name_prefix: str = "img",
    series_description: str = "test series",
) -> tuple[str, np.ndarray]:
    """Write a series and return (SeriesInstanceUID, expected physical values as (columns, rows, slices)).

    Slices are written in shuffled file order so that sorting by position is really exercised.
    ``locations`` (mm along the normal) override the uniform ``slice_spacing`` (to make gaps);
    ``tilt_shift_per_slice`` adds an LPS in-plane drift per slice (to make a gantry tilt).
    """
    folder.mkdir(parents=True, exist_ok=True)
    series_uid = series_uid or generate_uid()
    row_cosine, column_cosine = np.asarray(orientation[:3]), np.asarray(orientation[3:])
    normal = np.cross(row_cosine, column_cosine)
    locations = list(locations) if locations is not None else [k * slice_spacing for k in range(n_slices)]
    rng = np.random.default_rng(seed)
    stored = rng.integers(0, 3000, size=(len(locations), rows, columns)).astype(np.int16)
    order = rng.permutation(len(locations))
    for file_index, k in enumerate(order):
        position = np.asarray(origin) + locations[k] * normal + k * np.asarray(tilt_shift_per_slice)
        write_slice(folder / f"{name_prefix}{file_index:03d}.dcm", stored[k], position=position,
                    series_uid=series_uid, orientation=orientation, pixel_spacing=pixel_spacing, slope=slope,
                    intercept=intercept, modality=modality, instance_number=int(order[file_index]) + 1,
                    series_description=series_description)
    expected = (stored.astype(np.float64) * slope + intercept).transpose(2, 1, 0)
    return series_uid, expected
