"""medgan.io: the one place that knows file formats (NIfTI, DICOM) and writes atomically.

Read with :func:`read_volume` (or ``LoadImaged(keys, reader=MedganImageReader())``), check files
with :func:`validate_volume_file`, write with :func:`write_nifti` / :func:`write_dicom_series`,
fingerprint files and folders with :func:`sha256_path`.
"""

from medgan.io.atomic import atomic_directory, atomic_path, atomic_write_text
from medgan.io.dicom_write import write_dicom_series
from medgan.io.geometry import orientation_code
from medgan.io.hashing import sha256_file, sha256_files, sha256_path
from medgan.io.inspect import VolumeReport, validate_volume_file
from medgan.io.nifti import write_nifti
from medgan.io.options import ReadOptions
from medgan.io.reader import MedganImageReader, read_many, read_volume, read_warnings_of

__all__ = [
    "MedganImageReader",
    "ReadOptions",
    "VolumeReport",
    "atomic_directory",
    "atomic_path",
    "atomic_write_text",
    "orientation_code",
    "read_many",
    "read_volume",
    "read_warnings_of",
    "sha256_file",
    "sha256_files",
    "sha256_path",
    "validate_volume_file",
    "write_dicom_series",
    "write_nifti",
]
