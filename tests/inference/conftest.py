"""Fixtures of the inference tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from inference_inputs import AWKWARD_AFFINE, head_like_mri, save_nifti


@pytest.fixture
def awkward_mri(tmp_path: Path) -> Path:
    """A 23 x 30 x 17 MRI with the non-RAS, anisotropic :data:`AWKWARD_AFFINE`."""
    return save_nifti(tmp_path / "awkward_mri.nii.gz", head_like_mri((23, 30, 17)), AWKWARD_AFFINE)
