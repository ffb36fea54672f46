"""Deterministic digital head phantom: paired T1-weighted MRI and CT with tissue labels and lesions.

Modules: :mod:`tissues` (literature tissue table and MR signal equation), :mod:`anatomy`
(head shape and label painting), :mod:`lesions`, :mod:`mr_physics`, :mod:`ct_physics`,
:mod:`subject` (one seeded subject) and :mod:`dataset_writer` (files, datalist, montage).
"""

from medgan.data.phantom.dataset_writer import (
    PhantomDatasetConfig,
    PhantomDatasetResult,
    split_subjects,
    write_phantom_dataset,
)
from medgan.data.phantom.grid import PhantomGrid
from medgan.data.phantom.subject import PhantomSubject, generate_subject, has_lesion
from medgan.data.phantom.tissues import TISSUES, tissue_legend

__all__ = [
    "TISSUES",
    "PhantomDatasetConfig",
    "PhantomDatasetResult",
    "PhantomGrid",
    "PhantomSubject",
    "generate_subject",
    "has_lesion",
    "split_subjects",
    "tissue_legend",
    "write_phantom_dataset",
]
