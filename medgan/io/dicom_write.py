"""Writing a volume as a de-identified-by-construction DICOM series, atomically.

Headers are built from scratch from an allow-list; nothing is copied wholesale
from a source file. Each call creates new Study / Series / Frame of Reference /
SOP Instance UIDs, replaces patient identity with synthetic values and marks the
images DERIVED\\SECONDARY with PatientIdentityRemoved = YES. File names are
``slice_0000.dcm``... and never come from header values. The series is written
into a staging folder that is renamed into place only when complete.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import torch
from pydicom.dataset import FileMetaDataset
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    CTImageStorage,
    ExplicitVRLittleEndian,
    MRImageStorage,
    generate_uid,
)
from pydicom.valuerep import format_number_as_ds

from medgan.errors import InputError, OutputPathError
from medgan.io.atomic import atomic_directory
from medgan.io.geometry import DicomPlane, dicom_plane_from_affine
from medgan.io.intensity import StoredIntensities, quantize_for_dicom

logger = logging.getLogger(__name__)

SYNTHETIC_PATIENT_NAME = "SYNTHETIC^MEDGAN"
DEIDENTIFICATION_METHOD = "medgan synthetic: allow-listed header, new UIDs"  # LO: <= 64 chars
# The only attributes ever taken from a reference, each a short code string (CS) validated below.
REFERENCE_ALLOW_LIST = {"patient_position": "PatientPosition", "body_part_examined": "BodyPartExamined"}
_CODE_STRING = re.compile(r"^[A-Z0-9_ ]{1,16}$")
_SOP_CLASSES = {"CT": CTImageStorage, "MR": MRImageStorage}


def _ds(value: float) -> str:
    """A float as a DICOM decimal string (at most 16 characters)."""
    return format_number_as_ds(float(value))


def _volume_and_affine(volume, affine) -> tuple[np.ndarray, np.ndarray | None]:
    """Voxels (I, J, K) as float64 and the affine carried by the volume or given explicitly."""
    if affine is None:
        affine = getattr(volume, "affine", None)
    if isinstance(affine, torch.Tensor):
        affine = affine.detach().cpu().numpy()
    voxels = volume.detach().cpu().numpy() if isinstance(volume, torch.Tensor) else np.asarray(volume)
    if voxels.ndim == 4 and voxels.shape[0] == 1:
        voxels = voxels[0]
    return voxels.astype(np.float64), None if affine is None else np.asarray(affine, dtype=np.float64)


def _reference_meta(reference) -> dict[str, Any]:
    """The meta dict of a reference: a MetaTensor, a meta mapping, or a path read with read_volume."""
    if reference is None:
        return {}
    if isinstance(reference, str | Path):
        from medgan.io.reader import read_volume  # local import: reader imports the readers, not the writer

        reference = read_volume(reference)
    if hasattr(reference, "meta"):
        meta = dict(reference.meta)
        meta["affine"] = reference.affine
        return meta
    if isinstance(reference, Mapping):
        return dict(reference)
    raise TypeError(f"reference must be a MetaTensor, a meta dict or a path, not {type(reference).__name__}")


def _allowed_reference_values(meta: Mapping[str, Any]) -> dict[str, str]:
    """Allow-listed, identity-free code strings from a reference's ``dicom_geometry``."""
    geometry = meta.get("dicom_geometry") or {}
    allowed = {}
    for key, keyword in REFERENCE_ALLOW_LIST.items():
        value = str(geometry.get(key, "") or "").strip().upper()
        if value and _CODE_STRING.match(value):
            allowed[keyword] = value
    return allowed


def _base_dataset(modality: str, stored: StoredIntensities, plane: DicomPlane, shape: tuple[int, int, int],
                  uids: dict[str, str], patient_id: str, series_description: str,
                  from_reference: dict[str, str]) -> pydicom.Dataset:
    """Attributes shared by every slice of the series (everything but instance and position)."""
    columns, rows, _ = shape
    ds = pydicom.Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = _SOP_CLASSES[modality]
    ds.ImageType = ["DERIVED", "SECONDARY", "AXIAL"] if modality == "CT" else ["DERIVED", "SECONDARY"]
    ds.Modality = modality
    ds.PatientName = SYNTHETIC_PATIENT_NAME
    ds.PatientID = patient_id
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = DEIDENTIFICATION_METHOD
    ds.StudyInstanceUID = uids["study"]
    ds.SeriesInstanceUID = uids["series"]
    ds.FrameOfReferenceUID = uids["frame_of_reference"]
    ds.PositionReferenceIndicator = ""
    ds.StudyDate = ""
    ds.StudyTime = ""
    ds.StudyID = ""
    ds.AccessionNumber = ""
    ds.ReferringPhysicianName = ""
    ds.SeriesNumber = 1
    ds.SeriesDescription = series_description[:64]
    ds.Manufacturer = "medgan"
    ds.PatientPosition = from_reference.get("PatientPosition", "")
    if "BodyPartExamined" in from_reference:
        ds.BodyPartExamined = from_reference["BodyPartExamined"]
    ds.BurnedInAnnotation = "NO"
    ds.ImageOrientationPatient = [_ds(v) for v in (*plane.row_cosine, *plane.column_cosine)]
    ds.PixelSpacing = [_ds(plane.pixel_spacing[0]), _ds(plane.pixel_spacing[1])]
    ds.SliceThickness = _ds(plane.slice_spacing)
    ds.SpacingBetweenSlices = _ds(plane.slice_spacing)
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = rows
    ds.Columns = columns
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = stored.pixel_representation
    ds.RescaleSlope = stored.slope_ds
    ds.RescaleIntercept = stored.intercept_ds
    ds.RescaleType = "HU" if modality == "CT" else "US"
    ds.WindowCenter = _ds((stored.value_min + stored.value_max) / 2)
    ds.WindowWidth = _ds(max(stored.value_max - stored.value_min, 1.0))
    if modality == "CT":
        ds.KVP = ""
        ds.AcquisitionNumber = ""
    else:
        ds.ScanningSequence = "RM"  # research mode: a synthetic image has no real pulse sequence
        ds.SequenceVariant = "NONE"
        ds.ScanOptions = ""
        ds.MRAcquisitionType = "3D"
        ds.EchoTime = ""
        ds.RepetitionTime = ""
        ds.EchoTrainLength = ""
    return ds


def write_dicom_series(volume, out_dir: str | Path, *, modality: str = "CT", reference=None, affine=None,
                       series_description: str = "medgan synthetic", overwrite: bool = False,
                       uid_seed: str | None = None) -> Path:
    """Write a 3D volume as a DICOM series folder (one Part 10 file per slice), atomically.

    ``volume``: (I, J, K) or (1, I, J, K) array / tensor / MetaTensor in physical units (HU for CT).
    Geometry comes from its RAS affine (or ``affine=``, or the ``reference``'s affine), converted to
    LPS: ImageOrientationPatient, per-slice ImagePositionPatient, PixelSpacing, SliceThickness =
    SpacingBetweenSlices. A left-handed affine is written with its slices reversed so DICOM readers
    (which sort along row x column) see the same world geometry; read back, k runs the other way.
    ``reference`` (a MetaTensor from :func:`read_volume`, its meta dict, or a path) gives the affine when
    the volume has none, plus only the allow-listed PatientPosition / BodyPartExamined.
    Intensities: see :func:`medgan.io.intensity.quantize_for_dicom`. ``uid_seed`` makes UIDs and the
    PatientID reproducible (derived by hashing; without it they are random).
    """
    modality = modality.upper()
    out_dir = Path(out_dir)
    if modality not in _SOP_CLASSES:
        raise InputError(f"modality {modality!r} cannot be written", path=out_dir, fix="use modality='CT' or 'MR'")
    voxels, affine = _volume_and_affine(volume, affine)
    reference_meta = _reference_meta(reference)
    if affine is None and "affine" in reference_meta:
        affine = np.asarray(reference_meta["affine"], dtype=np.float64)
        reference_shape = reference_meta.get("spatial_shape")
        if reference_shape is not None and tuple(int(n) for n in reference_shape) != voxels.shape:
            raise InputError(f"volume shape {voxels.shape} differs from the reference's {tuple(reference_shape)}",
                             path=out_dir, fix="resample the volume onto the reference grid first")
    if affine is None or affine.shape != (4, 4):
        raise InputError("no 4x4 affine for the volume", path=out_dir,
                         fix="pass a MetaTensor, affine=, or reference= (a volume read with read_volume)")
    if voxels.ndim != 3:
        raise InputError(f"volume of shape {voxels.shape} is not 3D", path=out_dir,
                         fix="give an (I, J, K) or (1, I, J, K) volume")
    if not np.all(np.isfinite(voxels)):
        raise InputError(f"volume has {int((~np.isfinite(voxels)).sum())} NaN/Inf voxels", path=out_dir,
                         fix="replace non-finite values (e.g. torch.nan_to_num) before writing")
    try:
        plane, reverse = dicom_plane_from_affine(affine, voxels.shape[2])
    except ValueError as err:
        raise InputError(f"DICOM cannot hold this geometry: {err}", path=out_dir,
                         fix="resample the volume onto an orthogonal grid (e.g. MONAI Spacing/Orientation)") from err
    if reverse:
        voxels = voxels[:, :, ::-1]
    stored = quantize_for_dicom(voxels, modality)

    def new_uid(role: str) -> str:
        return generate_uid(entropy_srcs=[uid_seed, role]) if uid_seed is not None else generate_uid()

    uids = {role: new_uid(role) for role in ("study", "series", "frame_of_reference")}
    patient_id = "MEDGAN-" + (uuid.uuid5(uuid.NAMESPACE_OID, uid_seed).hex[:12] if uid_seed else uuid.uuid4().hex[:12])
    base = _base_dataset(modality, stored, plane, voxels.shape, uids, patient_id, series_description,
                         _allowed_reference_values(reference_meta))
    try:
        with atomic_directory(out_dir, overwrite=overwrite) as staging:
            for k in range(voxels.shape[2]):
                _write_slice(base, stored, plane, k, new_uid(f"instance-{k}"), staging / f"slice_{k:04d}.dcm")
    except FileExistsError as err:
        raise OutputPathError("output folder already exists", path=out_dir,
                              fix="pass overwrite=True to replace it, or choose another folder") from err
    logger.info("wrote %d %s slices to %s", voxels.shape[2], modality, out_dir)
    return out_dir


def _write_slice(base: pydicom.Dataset, stored: StoredIntensities, plane: DicomPlane, k: int,
                 sop_instance_uid: str, path: Path) -> None:
    """Write slice ``k`` as a Part 10 file (Explicit VR Little Endian)."""
    ds = pydicom.Dataset()
    ds.update(base)
    position = plane.position(k)
    ds.SOPInstanceUID = sop_instance_uid
    ds.InstanceNumber = k + 1
    ds.ImagePositionPatient = [_ds(v) for v in position]
    ds.SliceLocation = _ds(float(position @ np.cross(plane.row_cosine, plane.column_cosine)))
    # DICOM rows run along j and columns along i, so the stored frame is the (i, j) slice transposed.
    little_endian = stored.values.dtype.newbyteorder("<")
    ds.PixelData = np.ascontiguousarray(stored.values[:, :, k].T).astype(little_endian).tobytes()
    ds["PixelData"].VR = "OW"
    file_meta = FileMetaDataset()
    file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    file_meta.MediaStorageSOPInstanceUID = sop_instance_uid
    file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    file_meta.ImplementationVersionName = "MEDGAN"
    ds.file_meta = file_meta
    ds.preamble = b"\0" * 128
    ds.save_as(path, enforce_file_format=True)
