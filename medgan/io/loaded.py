"""The format-neutral result of reading one volume, before it becomes a MetaTensor."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class LoadedVolume:
    """Voxels (I, J, K) float32, their RAS affine, and what the reader learned on the way."""

    voxels: np.ndarray
    affine_ras: np.ndarray
    source_format: str  # "nifti" | "dicom"
    modality: str = ""  # DICOM Modality ("CT", "MR", ...); "" when the format does not say
    read_warnings: list[str] = field(default_factory=list)
    extra_meta: dict[str, Any] = field(default_factory=dict)
