"""Head anatomy of the phantom: random per-subject shape parameters painted into a label map.

Why this model: it keeps what matters for MRI <-> CT translation and lesion detection
at 1-4 mm resolution — a layered head (scalp fat, two cortical tables with diploic
marrow between, CSF, folded grey matter over white matter, ventricles, deep grey
nuclei), a tilted skull base with a face below it holding air cavities walled by thin
bone (frontal, sphenoid and maxillary sinuses, nasal cavity, pharynx), orbits, and a
neck with a vertebral column. Every layer follows the same direction-dependent outline,
so subjects differ smoothly in size, shape, skull and scalp thickness and ventricle size.

Coordinates: the head frame is RAS in mm around the head centre (x right, y anterior,
z superior); the subject's head is shifted and slightly rotated in the scanner frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medgan.data.phantom import tissues as t
from medgan.data.phantom.fields import direction_polynomial, smooth_noise
from medgan.data.phantom.grid import PhantomGrid


@dataclass(frozen=True)
class AnatomyParams:
    """Per-subject anatomical parameters (mm unless stated)."""

    head_centre_mm: tuple[float, float, float]
    rotation_deg: tuple[float, float, float]
    head_semi_axes_mm: tuple[float, float, float]
    outline_warp: float
    scalp_mm: float
    skull_mm: float
    csf_mm: float
    skull_base_z_mm: float
    skull_base_slope: float
    skull_base_mm: float
    temporal_fossa_mm: float
    grey_matter_mm: float
    ventricle_scale: float
    frontal_sinus_scale: float
    maxillary_scale: float
    sphenoid_scale: float
    neck_semi_axes_mm: tuple[float, float]


def sample_anatomy(rng: np.random.Generator) -> AnatomyParams:
    """Draw one subject's anatomy; ranges follow adult head dimensions (e.g. skull 5-10 mm)."""

    def normal(mean: float, sd: float, low: float, high: float) -> float:
        return float(np.clip(rng.normal(mean, sd), low, high))

    return AnatomyParams(
        head_centre_mm=(normal(0, 3, -8, 8), normal(-2, 4, -12, 8), normal(8, 4, -2, 18)),
        rotation_deg=(normal(0, 4, -10, 10), normal(0, 2, -5, 5), normal(0, 2, -5, 5)),
        head_semi_axes_mm=(normal(74, 3.5, 64, 84), normal(93, 4, 82, 104), normal(100, 4, 90, 110)),
        outline_warp=normal(0.03, 0.01, 0.01, 0.05),
        scalp_mm=normal(6.0, 1.0, 4.0, 9.0),
        skull_mm=normal(7.0, 1.0, 5.0, 10.0),
        csf_mm=normal(3.0, 0.8, 1.5, 5.5),
        skull_base_z_mm=normal(-22, 3, -30, -14),
        skull_base_slope=normal(0.28, 0.04, 0.18, 0.38),
        skull_base_mm=normal(9.0, 1.5, 6.0, 12.0),
        temporal_fossa_mm=normal(22.0, 3.0, 14.0, 30.0),
        grey_matter_mm=normal(3.5, 0.4, 2.5, 4.5),
        ventricle_scale=float(rng.uniform(0.7, 1.6)),
        frontal_sinus_scale=float(rng.uniform(0.0, 1.3)),
        maxillary_scale=float(rng.uniform(0.8, 1.2)),
        sphenoid_scale=float(rng.uniform(0.7, 1.2)),
        neck_semi_axes_mm=(normal(55, 3, 46, 64), normal(50, 3, 42, 58)),
    )


def _rotation(pitch_deg: float, roll_deg: float, yaw_deg: float) -> np.ndarray:
    """Head -> scanner rotation: pitch about x (nodding), roll about y, yaw about z."""
    a, b, c = np.deg2rad([pitch_deg, roll_deg, yaw_deg])
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    return rz @ ry @ rx


class HeadFrame:
    """Head-frame coordinates of every sub-voxel of the render grid, plus box lookups."""

    def __init__(self, grid: PhantomGrid, params: AnatomyParams) -> None:
        self.grid = grid
        self.axes_mm = grid.fine_axes_mm()
        self.centre = np.asarray(params.head_centre_mm, dtype=np.float64)
        self.rotation = _rotation(*params.rotation_deg)
        offsets = [axis - c for axis, c in zip(self.axes_mm, self.centre, strict=True)]
        inverse = self.rotation.T
        x_off, y_off, z_off = offsets
        self.coords = tuple(
            (
                np.float32(inverse[row, 0]) * x_off[:, None, None]
                + np.float32(inverse[row, 1]) * y_off[None, :, None]
                + np.float32(inverse[row, 2]) * z_off[None, None, :]
            )
            for row in range(3)
        )

    def box(self, centre_head: np.ndarray, radius_mm: float) -> tuple[slice, slice, slice]:
        """Index slices of the render grid covering a sphere given in head coordinates."""
        centre_world = self.centre + self.rotation @ np.asarray(centre_head, dtype=np.float64)
        slices = []
        for axis, c in zip(self.axes_mm, centre_world, strict=True):
            lo = int(np.searchsorted(axis, c - radius_mm))
            hi = int(np.searchsorted(axis, c + radius_mm))
            slices.append(slice(lo, max(lo, hi)))
        return tuple(slices)  # type: ignore[return-value]

    def local(self, box: tuple[slice, slice, slice], centre_head) -> tuple[np.ndarray, ...]:
        """Head coordinates inside ``box``, relative to ``centre_head``."""
        return tuple(axis[box] - np.float32(c) for axis, c in zip(self.coords, centre_head, strict=True))


def _paint_ellipsoid(labels, frame: HeadFrame, centre, semi, label: int, *, where=None, power: float = 2.0):
    """Set ``label`` inside a (super-)ellipsoid given in head coordinates, optionally only over ``where``."""
    box = frame.box(np.asarray(centre), float(max(semi)) * (1.3 if power > 2 else 1.0) + 1.0)
    dx, dy, dz = frame.local(box, centre)
    inside = (np.abs(dx / semi[0]) ** power + np.abs(dy / semi[1]) ** power + np.abs(dz / semi[2]) ** power) < 1
    region = labels[box]
    if where is not None:
        inside &= np.isin(region, where)
    region[inside] = label


def _walled_cavity(labels, frame, centre, semi, wall_mm: float, fill: int, *, power: float = 2.0, where=None):
    """An air (or other) cavity lined by a thin cortical bone wall, as sinuses and orbits are."""
    outer = tuple(s + wall_mm for s in semi)
    _paint_ellipsoid(labels, frame, centre, outer, t.CORTICAL_BONE, power=power, where=where)
    _paint_ellipsoid(labels, frame, centre, semi, fill, power=power, where=where)


def render_head_labels(params: AnatomyParams, grid: PhantomGrid, rng: np.random.Generator) -> np.ndarray:
    """Paint one subject's tissue labels (uint8, ids from :mod:`tissues`) on the supersampled grid."""
    frame = HeadFrame(grid, params)
    x, y, z = frame.coords
    radius = np.sqrt(x * x + y * y + z * z) + np.float32(1e-3)
    a, b, c = params.head_semi_axes_mm
    # Direction-only fields are very smooth: evaluate them on every factor-th sub-voxel
    # and repeat, which costs an eighth of the full-grid work at factor 2.
    step = grid.factor
    coarse = tuple(axis[::step, ::step, ::step] for axis in frame.coords)
    coarse_radius = radius[::step, ::step, ::step]
    ux, uy, uz = (axis / coarse_radius for axis in coarse)
    outline = 1.0 / np.sqrt((ux / a) ** 2 + (uy / b) ** 2 + (uz / c) ** 2)
    outline *= 1.0 + np.float32(params.outline_warp) * direction_polynomial(rng, ux, uy, uz, degree=3)
    skull_variation = _repeat(direction_polynomial(rng, ux, uy, uz, degree=2), step)
    scalp_variation = _repeat(direction_polynomial(rng, ux, uy, uz, degree=2), step)
    outline = _repeat(outline, step)
    del ux, uy, uz, coarse, coarse_radius

    r_scalp = outline
    r_bone_out = r_scalp - np.float32(params.scalp_mm) * (1 + 0.25 * scalp_variation)
    skull_thickness = np.float32(params.skull_mm) * (1 + 0.2 * skull_variation)
    r_bone_in = r_bone_out - skull_thickness
    r_brain = r_bone_in - np.float32(params.csf_mm)
    table = 0.36 * skull_thickness
    base_top = np.float32(params.skull_base_z_mm) + np.float32(params.skull_base_slope) * y
    # Middle cranial fossae: the skull base dips laterally where the temporal lobes sit.
    base_top -= (
        np.float32(params.temporal_fossa_mm)
        * np.clip(np.abs(x) / 45.0, 0.0, 1.0) ** 2
        * np.exp(-((y + 5.0) ** 2) / np.float32(2 * 22.0**2))
    )
    base_bottom = base_top - np.float32(params.skull_base_mm)

    labels = np.zeros(grid.fine_shape, dtype=np.uint8)
    neck_a, neck_b = params.neck_semi_axes_mm
    neck_y = -12.0
    neck_q = (x / neck_a) ** 2 + ((y - neck_y) / neck_b) ** 2
    neck = (neck_q < 1) & (z < -40)
    labels[(radius < r_scalp) | neck] = t.FAT
    neck_inner = (x / (neck_a - params.scalp_mm)) ** 2 + ((y - neck_y) / (neck_b - params.scalp_mm)) ** 2 < 1
    labels[neck_inner & (z < -40)] = t.MUSCLE

    inside_bone = radius < r_bone_out
    cranial = z > base_bottom
    labels[inside_bone & ~cranial] = t.MUSCLE
    # Facial bones (maxilla, mandible) as a thin shell in the front of the lower head.
    labels[inside_bone & ~cranial & (radius > r_bone_out - 3.0) & (y > 15.0)] = t.CORTICAL_BONE
    vault = inside_bone & cranial
    labels[vault] = t.CORTICAL_BONE
    diploe = vault & (radius > r_bone_in + table) & (radius < r_bone_out - table)
    base_centre = (base_top + base_bottom) / 2
    labels[diploe | (vault & (radius < r_bone_in) & (np.abs(z - base_centre) < params.skull_base_mm / 4))] = t.MARROW
    intracranial = vault & (radius < r_bone_in) & (z > base_top)
    labels[intracranial] = t.CSF
    del diploe, vault, table

    _paint_face(labels, frame, params)

    brain_floor = base_top + np.float32(params.csf_mm)
    brain = intracranial & (radius < r_brain) & (z > brain_floor)
    depth = np.minimum(r_brain - radius, z - brain_floor)
    del radius, r_scalp, r_bone_out, r_bone_in, r_brain, base_top, base_bottom, inside_bone
    # Cortical folding: where the smooth field is high the grey matter dips deep and a
    # CSF-filled sulcus opens above it; where it is low a white-matter gyrus core
    # reaches close to the surface.
    gyri = smooth_noise(rng, frame.axes_mm, correlation_mm=8.0)
    labels[brain] = t.GREY_MATTER
    gm_depth = np.float32(params.grey_matter_mm) + 4.5 + 5.0 * gyri
    labels[brain & (depth > np.maximum(gm_depth, 2.0))] = t.WHITE_MATTER
    sulci = brain & (depth < 8.0 * (gyri - 0.3))
    # The interhemispheric fissure reaches down to the corpus callosum mid-brain and
    # lower towards the frontal and occipital poles.
    fissure_floor = 25.0 - 35.0 * np.clip((np.abs(y) - 40.0) / 20.0, 0.0, 1.0)
    fissure = brain & (np.abs(x) < 0.8 + 0.4 * np.abs(gyri)) & (z > fissure_floor)
    labels[sulci | fissure] = t.CSF
    del sulci, fissure, gyri

    _paint_deep_structures(labels, frame, params, deep=brain & (depth > 8.0))
    return labels


def _repeat(field: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour upsampling by an integer factor along every axis."""
    for axis in range(field.ndim):
        field = np.repeat(field, factor, axis=axis)
    return field


def _paint_deep_structures(labels, frame: HeadFrame, params: AnatomyParams, deep: np.ndarray) -> None:
    """Deep grey nuclei (thalami, basal ganglia) and the ventricular system."""
    for side in (-1.0, 1.0):
        for centre, semi in (((11, -12, 6), (8, 13, 9)), ((21, 8, 10), (6, 12, 9))):
            box = frame.box(np.array(centre) * [side, 1, 1], max(semi) + 1.0)
            dx, dy, dz = frame.local(box, np.array(centre) * [side, 1, 1])
            inside = (dx / semi[0]) ** 2 + (dy / semi[1]) ** 2 + (dz / semi[2]) ** 2 < 1
            region = labels[box]
            region[inside & deep[box]] = t.GREY_MATTER
    scale = params.ventricle_scale
    for side in (-1.0, 1.0):
        centre = np.array([side * (5 + 3 * scale), -5.0, 18.0])
        semi = (5.0 * scale, 30 * (0.8 + 0.2 * scale), 9 * scale)
        box = frame.box(centre, max(semi) + 8.0)
        dx, dy, dz = frame.local(box, centre)
        dz = dz + 0.006 * dy * dy  # the ventricle body arches over the thalamus
        inside = (dx / semi[0]) ** 2 + (dy / semi[1]) ** 2 + (dz / semi[2]) ** 2 < 1
        labels[box][inside] = t.CSF
    _paint_ellipsoid(labels, frame, (0, -3, 6), (1.5 * scale, 12, 8), t.CSF)


def _paint_face(labels, frame: HeadFrame, params: AnatomyParams) -> None:
    """Orbits, air sinuses with bony walls, nasal cavity, pharynx and the cervical spine."""
    a, b, c = params.head_semi_axes_mm

    def front_y(x_mm: float, z_mm: float) -> float:
        """Anterior skin surface of the (unwarped) head ellipsoid at height z."""
        return b * float(np.sqrt(max(0.05, 1 - (x_mm / a) ** 2 - (z_mm / c) ** 2)))

    def base_z(y_mm: float) -> float:
        return params.skull_base_z_mm + params.skull_base_slope * y_mm

    soft = (t.FAT, t.MUSCLE, t.CORTICAL_BONE, t.MARROW)
    bone = (t.CORTICAL_BONE, t.MARROW)
    # Orbits: bony cone approximated by a sphere, orbital fat, eye ball.
    for side in (-1.0, 1.0):
        eye_z = base_z(60.0) - 17.0
        eye = np.array([side * 31.0, front_y(31.0, eye_z) - 14.0, eye_z])
        _walled_cavity(labels, frame, eye, (17.0, 17.0, 17.0), 2.0, t.FAT, where=soft)
        _paint_ellipsoid(labels, frame, eye, (11.5, 11.5, 11.5), t.VITREOUS, where=(t.FAT,))
    # Frontal sinus: inside the frontal bone only; absent in some people.
    if params.frontal_sinus_scale > 0.3:
        fz = base_z(80.0) + 18.0
        fy = front_y(0.0, fz) - params.scalp_mm - params.skull_mm / 2
        s = params.frontal_sinus_scale
        _paint_ellipsoid(labels, frame, (0.0, fy, fz), (14 * s, 5.0, 9 * s), t.SINUS_AIR, where=bone)
    # Sphenoid sinus under the middle of the skull base.
    s = params.sphenoid_scale
    _walled_cavity(
        labels,
        frame,
        (0.0, 12.0, base_z(12.0) - params.skull_base_mm - 10.0),
        (10 * s, 9 * s, 8 * s),
        2.0,
        t.SINUS_AIR,
        where=soft,
    )
    # Nasal cavity (vertical midline slab) with a bony septum, then the maxillary sinuses.
    nasal_z = base_z(60.0) - 38.0
    nasal_front = front_y(0.0, nasal_z)
    nasal_centre = (0.0, nasal_front - 30.0, nasal_z)
    _walled_cavity(labels, frame, nasal_centre, (9.0, 28.0, 26.0), 2.0, t.SINUS_AIR, power=4.0, where=soft)
    _paint_ellipsoid(labels, frame, nasal_centre, (1.0, 22.0, 22.0), t.CORTICAL_BONE, power=4.0, where=(t.SINUS_AIR,))
    s = params.maxillary_scale
    for side in (-1.0, 1.0):
        max_z = base_z(50.0) - 45.0
        centre = (side * 24.0, front_y(24.0, max_z) - 35.0, max_z)
        _walled_cavity(labels, frame, centre, (11 * s, 14 * s, 16 * s), 2.0, t.SINUS_AIR, where=soft)
    # Pharynx: the airway tube behind the nasal cavity, down through the neck.
    pharynx_y = nasal_centre[1] - 34.0
    vertebra_y = pharynx_y - 20.0
    _tube(labels, frame, (0.0, pharynx_y), (9.0, 7.0), top_z=nasal_z, fill=t.SINUS_AIR, where=(t.MUSCLE, t.FAT))
    # Cervical spine: vertebral bodies (cortical shell around marrow), spinal canal behind.
    spine_top = base_z(vertebra_y) - params.skull_base_mm - 6.0
    _tube(labels, frame, (0.0, vertebra_y), (10.0, 9.0), top_z=spine_top, fill=t.CORTICAL_BONE, where=(t.MUSCLE, t.FAT))
    _tube(labels, frame, (0.0, vertebra_y), (7.5, 6.5), top_z=spine_top - 2.0, fill=t.MARROW, where=(t.CORTICAL_BONE,))
    _tube(labels, frame, (0.0, vertebra_y - 17.0), (6.0, 6.0), top_z=spine_top, fill=t.CSF, where=(t.MUSCLE, t.FAT))


def _tube(labels, frame: HeadFrame, centre_xy, semi_xy, *, top_z: float, fill: int, where) -> None:
    """A vertical elliptic tube (airway, vertebral column) from the bottom of the image up to ``top_z``."""
    x, y, z = frame.coords
    inside = ((x - centre_xy[0]) / semi_xy[0]) ** 2 + ((y - centre_xy[1]) / semi_xy[1]) ** 2 < 1
    inside &= z < top_z
    inside &= np.isin(labels, where)
    labels[inside] = fill
