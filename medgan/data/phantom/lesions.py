"""Brain lesions for the phantom: irregular masses with varied size, place and contrast.

Why: the downstream task (does this head hold a lesion?) must not be trivial. Lesions
are smoothed-noise-perturbed ellipsoids placed inside brain tissue only, from a few
millimetres to a few centimetres across, hypo- or hyper-intense on T1 with a matching
CT change, some with a necrotic core and/or a rim of vasogenic oedema in the white
matter, and about a third of them subtle (low contrast and small).

Lesion types and their target tissue properties (3 T; before scaling by the contrast):
- ``hypointense_mass`` (glioma-like): long T1 (hypointense on T1), hypodense on CT.
- ``haemorrhage`` (subacute): methaemoglobin shortens T1 (hyperintense), hyperdense on CT
  (~50-80 HU for clotted blood).
- ``calcified_mass``: low proton density and short T2* (hypointense), CT +150-300 HU.
Necrotic cores behave like fluid (CSF-like T1, ~10-15 HU); oedema raises water content
(longer T1, CT ~15-22 HU, below normal white matter).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from medgan.data.phantom import tissues as t
from medgan.data.phantom.grid import PhantomGrid


@dataclass(frozen=True)
class LesionTarget:
    """Full-contrast tissue properties of one lesion type and how often it has a core or oedema."""

    t1_ms: float
    proton_density: float
    t2star_ms: float
    ct_hu: float
    p_necrosis: float
    p_oedema: float


LESION_TYPES: dict[str, LesionTarget] = {
    "hypointense_mass": LesionTarget(2400.0, 0.90, 60.0, 18.0, p_necrosis=0.45, p_oedema=0.6),
    "haemorrhage": LesionTarget(500.0, 0.85, 25.0, 65.0, p_necrosis=0.0, p_oedema=0.5),
    "calcified_mass": LesionTarget(1000.0, 0.40, 12.0, 220.0, p_necrosis=0.0, p_oedema=0.1),
}


@dataclass(frozen=True)
class LesionMix:
    """How hard the lesions of a data set are to see: the share of subtle ones, contrast and size.

    ``default`` is the mix above (a third subtle; the downstream task must not be
    trivial). ``conspicuous`` (no subtle lesions, contrast 0.8-1, radius >= 14 mm) makes
    every type plainly visible to the eye. ``haemorrhage`` (that type only, contrast 0.8-1,
    radius 18-28 mm) is a class a small classifier trained from scratch learns from a few
    dozen heads at 5 mm (held-out accuracy ~0.8 on MRI, measured; the dark types and the
    CT's ~25 HU of contrast are not learnt there): for evaluations that need a learnable
    class, e.g. whether a class-conditional generator's samples carry their class.
    """

    p_subtle: float = 0.35
    subtle_contrast: tuple[float, float] = (0.15, 0.35)
    contrast: tuple[float, float] = (0.45, 1.0)
    min_radius_mm: float = 0.0  # floor on the non-subtle radius (the grid's own floor applies too)
    max_radius_mm: float = 22.0
    types: tuple[str, ...] | None = None  # lesion types drawn from (None: every type of LESION_TYPES)


LESION_MIXES: dict[str, LesionMix] = {
    "default": LesionMix(),
    "conspicuous": LesionMix(p_subtle=0.0, contrast=(0.8, 1.0), min_radius_mm=14.0),
    "haemorrhage": LesionMix(
        p_subtle=0.0, contrast=(0.8, 1.0), min_radius_mm=18.0, max_radius_mm=28.0, types=("haemorrhage",)
    ),
}


NECROSIS_TARGET = LesionTarget(3500.0, 0.95, 150.0, 12.0, 0.0, 0.0)
OEDEMA_T1_FACTOR = 1.4
OEDEMA_HU = 19.0


@dataclass(frozen=True)
class LesionInfo:
    """What was drawn, for the datalist: type, contrast (0-1), size and place (world mm)."""

    lesion_type: str
    contrast: float
    subtle: bool
    radius_mm: float
    centre_mm: tuple[float, float, float]
    has_necrosis: bool
    has_oedema: bool


def _mix(white_matter: float, target: float, contrast: float) -> float:
    return white_matter + contrast * (target - white_matter)


def set_lesion_properties(props: t.TissueProperties, info: LesionInfo) -> None:
    """Write the lesion, necrosis and oedema rows of a subject's tissue table from ``info``.

    T1 is mixed in relaxation rate (1/T1), which is what a partial lesion fraction averages.
    """
    wm = t.WHITE_MATTER
    target = LESION_TYPES[info.lesion_type]
    for label, goal, contrast in (
        (t.LESION, target, info.contrast),
        (t.NECROSIS, NECROSIS_TARGET, 1.0),
    ):
        props.t1_ms[label] = 1.0 / _mix(1.0 / props.t1_ms[wm], 1.0 / goal.t1_ms, contrast)
        props.proton_density[label] = _mix(props.proton_density[wm], goal.proton_density, contrast)
        props.t2star_ms[label] = _mix(props.t2star_ms[wm], goal.t2star_ms, contrast)
        props.ct_hu[label] = _mix(props.ct_hu[wm], goal.ct_hu, contrast)
    oedema_strength = 0.5 + 0.5 * info.contrast
    props.t1_ms[t.OEDEMA] = props.t1_ms[wm] * (1 + (OEDEMA_T1_FACTOR - 1) * oedema_strength)
    props.proton_density[t.OEDEMA] = _mix(props.proton_density[wm], 0.88, oedema_strength)
    props.t2star_ms[t.OEDEMA] = props.t2star_ms[wm]
    props.ct_hu[t.OEDEMA] = _mix(props.ct_hu[wm], OEDEMA_HU, oedema_strength)


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((3, 3)))
    return q * np.sign(np.diag(r))


def paint_lesion(
    fine_labels: np.ndarray,
    grid: PhantomGrid,
    rng: np.random.Generator,
    *,
    mix: LesionMix = LESION_MIXES["default"],
    max_tries: int = 20,
) -> LesionInfo:
    """Draw one lesion into ``fine_labels`` (in place) inside grey/white matter and describe it.

    The centre is drawn from white-matter sub-voxels, the blob only replaces brain
    tissue (never CSF, bone or scalp), and a draw that ends up smaller than about two
    output voxels is redrawn, so every lesion subject has a visible (if subtle) lesion.
    """
    axes = grid.fine_axes_mm()
    fine_step = min(grid.spacing_mm) / grid.factor
    voxel_mm = max(grid.spacing_mm)
    min_radius = max(4.0, 1.5 * voxel_mm)
    lesion_type = str(rng.choice(sorted(mix.types or LESION_TYPES)))
    target = LESION_TYPES[lesion_type]
    subtle = bool(rng.random() < mix.p_subtle)
    contrast = float(rng.uniform(*mix.subtle_contrast) if subtle else rng.uniform(*mix.contrast))
    has_necrosis = bool(rng.random() < target.p_necrosis)
    has_oedema = bool(rng.random() < target.p_oedema)
    white_matter = np.flatnonzero(fine_labels == t.WHITE_MATTER)
    min_fine_voxels = 2 * grid.factor**3
    for _ in range(max_tries):
        radius = float(
            rng.uniform(min_radius, min_radius + 6.0)
            if subtle
            else rng.uniform(max(min_radius, mix.min_radius_mm), mix.max_radius_mm)
        )
        semi = radius * rng.uniform(0.75, 1.25, size=3)
        rotation = _random_rotation(rng)
        centre_index = np.unravel_index(white_matter[rng.integers(white_matter.size)], fine_labels.shape)
        centre = np.array([axes[d][centre_index[d]] for d in range(3)], dtype=np.float64)
        reach = radius * 1.25 * (2.0 if has_oedema else 1.3)
        box = tuple(
            slice(int(np.searchsorted(axes[d], centre[d] - reach)), int(np.searchsorted(axes[d], centre[d] + reach)))
            for d in range(3)
        )
        offsets = [axes[d][box[d]] - np.float32(centre[d]) for d in range(3)]
        grids = np.meshgrid(*offsets, indexing="ij")
        local = [sum(rotation[d, k] * grids[k] for k in range(3)) for d in range(3)]
        q = np.sqrt(sum((local[d] / semi[d]) ** 2 for d in range(3)))
        roughness = ndimage.gaussian_filter(
            rng.standard_normal(q.shape).astype(np.float32), sigma=max(1.0, radius / (3 * fine_step))
        )
        roughness /= roughness.std() + 1e-6
        q = q * (1.0 + 0.12 * roughness)
        region = fine_labels[box]
        brain = np.isin(region, (t.GREY_MATTER, t.WHITE_MATTER))
        core = brain & (q < 1.0)
        if core.sum() < min_fine_voxels:
            continue
        if has_oedema:
            extent = rng.uniform(1.5, 2.0)
            region[(region == t.WHITE_MATTER) & (q >= 1.0) & (q < extent)] = t.OEDEMA
        region[core] = t.LESION
        if has_necrosis:
            region[core & (q < rng.uniform(0.35, 0.6))] = t.NECROSIS
        return LesionInfo(
            lesion_type=lesion_type,
            contrast=round(contrast, 4),
            subtle=subtle,
            radius_mm=round(radius, 2),
            centre_mm=tuple(round(float(v), 2) for v in centre),  # type: ignore[arg-type]
            has_necrosis=has_necrosis,
            has_oedema=has_oedema,
        )
    raise RuntimeError("could not place a lesion inside the brain; the head anatomy is degenerate")
