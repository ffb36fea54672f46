"""Tissue table of the digital head phantom: label ids, CT numbers and MR relaxation parameters.

Why a table: every image the phantom writes (CT in HU, T1-weighted MRI) is rendered from
one label map through these numbers, so the two modalities stay physically consistent and
the MRI -> CT task keeps its real ambiguity (cortical bone and air are both dark on T1
but sit at opposite ends of the HU scale).

CT numbers (HU) are typical values inside the ranges tabulated in standard radiology
references (e.g. W.E. Brant & C.A. Helms, *Fundamentals of Diagnostic Radiology*,
4th ed., Lippincott Williams & Wilkins, 2012; the scale itself: G.N. Hounsfield,
*Br J Radiol* 1973;46:1016-1022, water 0 HU, air -1000 HU). Bone and marrow follow
the tissue compositions of W. Schneider, T. Bortfeld & W. Schlegel, *Phys Med Biol*
2000;45:459-478 (compact bone well above +1000 HU, mixed red/yellow marrow a few
hundred HU). Brain: grey matter ~35-45 HU, white matter ~20-30 HU, CSF 0-15 HU.

MR parameters at 3 T:
- T1 of white matter, grey matter and skeletal muscle: G.J. Stanisz et al., "T1, T2
  relaxation and magnetization transfer in tissue at 3T", *Magn Reson Med*
  2005;54:507-512 (WM 1084 ms, GM 1820 ms, muscle 1412 ms). J.P. Wansapura et al.,
  "NMR relaxation times in the human brain at 3.0 tesla", *J Magn Reson Imaging*
  1999;9:531-538 report shorter values (WM 832 ms, GM 1331 ms) with the same ordering;
  the per-subject jitter in :mod:`medgan.data.phantom.subject` spans part of that spread.
- T1 of CSF: H. Lu et al., "Routine clinical brain MRI sequences for use at 3.0
  Tesla", *J Magn Reson Imaging* 2005;22:13-22 (~4.2 s).
- T1 of subcutaneous fat (~380 ms at 3 T): G.E. Gold et al., "Musculoskeletal MRI at
  3.0 T: relaxation times and image contrast", *AJR* 2004;183:343-351. Diploic marrow
  (mixed red/yellow) is given a longer T1 than pure fat and, because its trabeculae
  dephase the signal, a T2* of a few ms: assumptions, stated here.
- Proton density (relative water/fat proton density): BrainWeb tissue parameters,
  R.K.-S. Kwan, A.C. Evans & G.B. Pike, "MRI simulation-based evaluation of
  image-processing and classification methods", *IEEE Trans Med Imaging*
  1999;18:1085-1097 (CSF 1.0, GM 0.86, WM 0.77, fat 1.0).
- T2* of brain tissue at 3 T: A.M. Peters et al., "T2* measurements in human brain at
  1.5, 3 and 7 T", *Magn Reson Imaging* 2007;25:748-753 (GM ~66 ms, WM ~53 ms).
  Cortical bone has T2* of ~0.3-0.5 ms (J. Du et al., *J Magn Reson* 2010;207:304-311),
  so at any conventional echo time it gives no signal; air has no protons.

The T1-weighted image is the steady-state spoiled gradient echo (FLASH / SPGR) signal

    S = PD * sin(a) * (1 - E1) / (1 - cos(a) * E1) * exp(-TE / T2*),   E1 = exp(-TR / T1)

with TR = 20 ms, TE = 4 ms, flip angle a = 25 degrees (a common 3D T1-weighted
protocol), which gives fat > WM > GM > muscle > CSF > bone ~ air ~ 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Sequence parameters of the simulated 3D spoiled gradient echo (3 T).
SPGR_TR_MS = 20.0
SPGR_TE_MS = 4.0
SPGR_FLIP_DEG = 25.0

AIR = 0
FAT = 1
MUSCLE = 2
CORTICAL_BONE = 3
MARROW = 4
CSF = 5
GREY_MATTER = 6
WHITE_MATTER = 7
SINUS_AIR = 8
VITREOUS = 9
LESION = 10
NECROSIS = 11
OEDEMA = 12
NUM_LABELS = 13

BRAIN_LABELS = (GREY_MATTER, WHITE_MATTER, LESION, NECROSIS, OEDEMA)
BONE_LABELS = (CORTICAL_BONE, MARROW)
LESION_MASK_LABELS = (LESION, NECROSIS)


@dataclass(frozen=True)
class Tissue:
    """One tissue class: label id, name, CT number (HU) and 3 T MR parameters (ms, relative PD)."""

    label: int
    name: str
    ct_hu: float
    t1_ms: float
    t2star_ms: float
    proton_density: float


# Lesion rows hold white-matter placeholders; each lesion subject overrides them
# (see medgan.data.phantom.lesions) so that lesion contrast varies between subjects.
TISSUES: tuple[Tissue, ...] = (
    Tissue(AIR, "air", -1000.0, 1.0, 1.0, 0.0),
    Tissue(FAT, "fat_scalp", -95.0, 380.0, 30.0, 1.0),
    Tissue(MUSCLE, "muscle_soft_tissue", 45.0, 1412.0, 30.0, 0.80),
    Tissue(CORTICAL_BONE, "cortical_bone", 1500.0, 300.0, 0.4, 0.10),
    Tissue(MARROW, "marrow_cancellous_bone", 350.0, 550.0, 5.0, 0.70),
    Tissue(CSF, "csf", 8.0, 4163.0, 200.0, 1.0),
    Tissue(GREY_MATTER, "grey_matter", 40.0, 1820.0, 66.0, 0.86),
    Tissue(WHITE_MATTER, "white_matter", 27.0, 1084.0, 53.0, 0.77),
    Tissue(SINUS_AIR, "sinus_airway_air", -1000.0, 1.0, 1.0, 0.0),
    Tissue(VITREOUS, "vitreous_eye", 10.0, 4000.0, 150.0, 1.0),
    Tissue(LESION, "lesion", 27.0, 1084.0, 53.0, 0.77),
    Tissue(NECROSIS, "lesion_necrotic_core", 27.0, 1084.0, 53.0, 0.77),
    Tissue(OEDEMA, "perilesional_oedema", 27.0, 1084.0, 53.0, 0.77),
)


def tissue_legend() -> dict[str, str]:
    """Label id (as a JSON-friendly string) -> tissue name, for the datalist and viewers."""
    return {str(tissue.label): tissue.name for tissue in TISSUES}


@dataclass
class TissueProperties:
    """Per-subject lookup tables indexed by label id (HU, T1, T2*, PD), editable for lesions."""

    ct_hu: np.ndarray
    t1_ms: np.ndarray
    t2star_ms: np.ndarray
    proton_density: np.ndarray

    @classmethod
    def from_table(cls) -> TissueProperties:
        """Start from the literature table above (copies, so a subject can adjust its own)."""
        return cls(
            ct_hu=np.array([t.ct_hu for t in TISSUES], dtype=np.float64),
            t1_ms=np.array([t.t1_ms for t in TISSUES], dtype=np.float64),
            t2star_ms=np.array([t.t2star_ms for t in TISSUES], dtype=np.float64),
            proton_density=np.array([t.proton_density for t in TISSUES], dtype=np.float64),
        )

    def t1w_signal(self) -> np.ndarray:
        """Spoiled gradient echo signal per label (see module docstring), in arbitrary units."""
        return spgr_signal(self.proton_density, self.t1_ms, self.t2star_ms)


def spgr_signal(
    proton_density: np.ndarray | float,
    t1_ms: np.ndarray | float,
    t2star_ms: np.ndarray | float,
    *,
    tr_ms: float = SPGR_TR_MS,
    te_ms: float = SPGR_TE_MS,
    flip_deg: float = SPGR_FLIP_DEG,
) -> np.ndarray:
    """Steady-state spoiled gradient echo magnitude for the given tissue parameters."""
    flip = np.deg2rad(flip_deg)
    e1 = np.exp(-tr_ms / np.asarray(t1_ms, dtype=np.float64))
    longitudinal = np.sin(flip) * (1.0 - e1) / (1.0 - np.cos(flip) * e1)
    return np.asarray(proton_density) * longitudinal * np.exp(-te_ms / np.asarray(t2star_ms))
