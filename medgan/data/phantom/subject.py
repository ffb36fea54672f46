"""One phantom subject: anatomy, optional lesion, and its paired MRI, CT and label volumes.

Why a separate seeded stream per concern: every random choice of subject ``i`` comes
from ``numpy.random.default_rng(SeedSequence([seed, i, stream]))``, so a subject is
the same whatever the number of subjects or the order of generation, and turning a
lesion on (a different lesion fraction) leaves the subject's anatomy and noise alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from medgan.data.phantom import tissues as t
from medgan.data.phantom.anatomy import AnatomyParams, render_head_labels, sample_anatomy
from medgan.data.phantom.ct_physics import render_ct
from medgan.data.phantom.grid import PhantomGrid
from medgan.data.phantom.lesions import LESION_MIXES, LesionInfo, LesionMix, paint_lesion, set_lesion_properties
from medgan.data.phantom.mr_physics import render_t1w

_ANATOMY, _TISSUE, _LESION, _MRI, _CT = range(5)
_LESION_PHASE_STREAM = 1_000_003


def subject_rng(seed: int, index: int, stream: int) -> np.random.Generator:
    """The generator of one subject's random stream (anatomy, tissue, lesion, MRI, CT)."""
    return np.random.default_rng(np.random.SeedSequence([seed, index, stream]))


def has_lesion(seed: int, index: int, lesion_fraction: float) -> bool:
    """Whether subject ``index`` carries a lesion.

    A seeded phase plus a fixed-stride sequence: any first N subjects contain
    floor or ceil of ``N * lesion_fraction`` lesion subjects, and the answer for a
    subject never depends on N.
    """
    phase = float(np.random.default_rng(np.random.SeedSequence([seed, _LESION_PHASE_STREAM])).random())
    return math.floor((index + 1) * lesion_fraction + phase) > math.floor(index * lesion_fraction + phase)


@dataclass
class PhantomSubject:
    """The volumes and facts of one generated subject (arrays in RAS voxel order)."""

    index: int
    affine: np.ndarray
    mri_t1: np.ndarray
    ct_hu: np.ndarray
    tissue_labels: np.ndarray
    lesion_mask: np.ndarray | None
    lesion: LesionInfo | None
    anatomy: AnatomyParams
    mri_snr: float
    bias_amplitude: float
    ct_noise_hu: float

    @property
    def class_label(self) -> int:
        """0 = healthy, 1 = lesion."""
        return int(self.lesion is not None)


def _jitter_tissues(rng: np.random.Generator) -> t.TissueProperties:
    """Subject/scanner variation of tissue parameters around the literature table."""
    props = t.TissueProperties.from_table()
    soft = [t.FAT, t.MUSCLE, t.CSF, t.GREY_MATTER, t.WHITE_MATTER, t.VITREOUS]
    props.t1_ms[soft] *= 1.0 + 0.04 * rng.standard_normal(len(soft))
    props.proton_density[soft] *= 1.0 + 0.02 * rng.standard_normal(len(soft))
    props.ct_hu[soft] += 2.0 * rng.standard_normal(len(soft))
    props.ct_hu[[t.CORTICAL_BONE, t.MARROW]] *= 1.0 + 0.06 * rng.standard_normal(2)
    # Lesion rows start as white matter and are set by set_lesion_properties.
    for label in (t.LESION, t.NECROSIS, t.OEDEMA):
        for table in (props.t1_ms, props.proton_density, props.t2star_ms, props.ct_hu):
            table[label] = table[t.WHITE_MATTER]
    return props


def generate_subject(
    seed: int, index: int, grid: PhantomGrid, *, with_lesion: bool, lesion_mix: LesionMix = LESION_MIXES["default"]
) -> PhantomSubject:
    """Generate subject ``index`` of the dataset with the given seed on ``grid`` (lesions drawn from ``lesion_mix``)."""
    anatomy_rng = subject_rng(seed, index, _ANATOMY)
    anatomy = sample_anatomy(anatomy_rng)
    fine_labels = render_head_labels(anatomy, grid, anatomy_rng)
    props = _jitter_tissues(subject_rng(seed, index, _TISSUE))
    lesion = None
    if with_lesion:
        lesion = paint_lesion(fine_labels, grid, subject_rng(seed, index, _LESION), mix=lesion_mix)
        set_lesion_properties(props, lesion)

    mri_rng = subject_rng(seed, index, _MRI)
    mri_snr = float(mri_rng.uniform(20.0, 40.0))
    bias_amplitude = float(mri_rng.uniform(0.10, 0.20))
    mri_t1 = render_t1w(fine_labels, props, grid, mri_rng, snr=mri_snr, bias_amplitude=bias_amplitude)
    ct_rng = subject_rng(seed, index, _CT)
    ct_noise_hu = float(ct_rng.uniform(10.0, 20.0))
    ct_hu = render_ct(fine_labels, props, grid, ct_rng, noise_hu=ct_noise_hu)

    tissue_labels = grid.block_majority(fine_labels)
    lesion_mask = None
    if with_lesion:
        in_lesion = np.isin(fine_labels, t.LESION_MASK_LABELS).astype(np.float32)
        lesion_mask = (grid.block_mean(in_lesion) >= 0.5).astype(np.uint8)
    return PhantomSubject(
        index=index,
        affine=grid.affine,
        mri_t1=mri_t1,
        ct_hu=ct_hu,
        tissue_labels=tissue_labels,
        lesion_mask=lesion_mask,
        lesion=lesion,
        anatomy=anatomy,
        mri_snr=round(mri_snr, 3),
        bias_amplitude=round(bias_amplitude, 4),
        ct_noise_hu=round(ct_noise_hu, 3),
    )
