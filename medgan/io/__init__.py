"""medgan.io: the one place that knows file formats (NIfTI, DICOM) and writes atomically."""

from medgan.io.atomic import atomic_directory, atomic_path, atomic_write_text
from medgan.io.nifti import write_nifti

__all__ = ["atomic_directory", "atomic_path", "atomic_write_text", "write_nifti"]
