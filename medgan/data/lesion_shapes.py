"""A lesion shape and placement model: fitted from real lesion masks, sampled as new masks.

Why: synthetic lesions are only useful if their masks look like the data's lesions
(size, elongation, surface irregularity) and sit where the data's lesions sit
(which tissue, how deep below the body surface). :func:`lesion_features` measures
each connected lesion of a mask; :func:`fit_shape_model` summarises many of them
into a :class:`LesionShapeModel` (saved as JSON with a run); :func:`sample_lesion_mask`
draws a new procedural blob from it and places it only inside an allowed region
(by default the host tissues the fitted lesions touched, never outside the body,
at least ``min_depth_mm`` below the body surface).

The blob is a randomly rotated ellipsoid whose radius is perturbed by smooth noise
(amplitude from the fitted irregularity); the ``k`` voxels closest to its centre in
that perturbed norm form the mask, so the sampled volume is exactly the drawn volume
(to one voxel) whatever the noise did to the shape.

Feature definitions (per connected component, 26-connectivity):

* ``volume_ml``: voxel count x voxel volume;
* ``elongation``: sqrt(largest / smallest eigenvalue) of the lesion's covariance in mm as
  a solid (voxel centres plus each voxel's own extent; 1 = round; an ellipsoid gives its
  longest / shortest semi-axis);
* ``irregularity``: marching-cubes surface area / the area of a sphere of the same
  volume (1 = sphere; voxelisation alone gives ~1.1-1.3 for small lesions);
* ``depth_mm``: distance from the lesion centroid to the nearest voxel outside the body;
* ``host_labels``: tissue labels on the one-voxel shell around the lesion (when a
  label map is given).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage
from scipy.spatial.transform import Rotation
from skimage.measure import marching_cubes, mesh_surface_area

from medgan.errors import ConfigError, InputError
from medgan.io import atomic_write_text

MIN_VOXELS_FOR_SHAPE = 4
STRUCTURE_26 = np.ones((3, 3, 3), dtype=bool)
ROUGHNESS_PER_IRREGULARITY = 0.6  # noise amplitude per unit of irregularity above 1 (calibrated in tests)
MAX_ROUGHNESS = 0.45


@dataclass(frozen=True)
class LesionFeatures:
    """Shape and place of one connected lesion (see the module docstring)."""

    volume_ml: float
    elongation: float
    irregularity: float
    depth_mm: float
    centroid_mm: tuple[float, float, float]
    host_labels: dict[int, int] = field(default_factory=dict)


def _surface_area_mm2(component: np.ndarray, spacing: Sequence[float]) -> float:
    padded = np.pad(component.astype(np.float32), 1)
    vertices, faces, _, _ = marching_cubes(padded, level=0.5, spacing=tuple(float(s) for s in spacing))
    return float(mesh_surface_area(vertices, faces))


def _elongation(coordinates_mm: np.ndarray, spacing: np.ndarray) -> float:
    """sqrt(max / min eigenvalue) of the covariance of the lesion as a solid (not its voxel centres).

    Each voxel is a box, whose own variance spacing^2 / 12 per axis adds to that of the
    centres: without it a two-voxel lesion would be infinitely elongated.
    """
    if coordinates_mm.shape[0] < MIN_VOXELS_FOR_SHAPE:
        return 1.0
    covariance = np.cov(coordinates_mm.T, bias=True) + np.diag(spacing**2 / 12.0)
    eigenvalues = np.linalg.eigvalsh(covariance)
    return float(math.sqrt(float(eigenvalues[-1]) / float(eigenvalues[0])))


def lesion_features(
    lesion_mask: np.ndarray,
    spacing: Sequence[float],
    *,
    body_mask: np.ndarray | None = None,
    tissue_labels: np.ndarray | None = None,
    source: str | Path | None = None,
) -> list[LesionFeatures]:
    """Features of every connected lesion in ``lesion_mask`` (non-zero = lesion), largest first.

    ``body_mask`` (default: everything) sets the depth; ``tissue_labels`` the host labels.
    Raises InputError naming ``source`` when the arrays disagree in shape.
    """
    lesion = np.asarray(lesion_mask) > 0
    for name, other in (("body mask", body_mask), ("tissue labels", tissue_labels)):
        if other is not None and np.shape(other) != lesion.shape:
            raise InputError(
                f"the lesion mask has shape {lesion.shape} but the {name} has shape {np.shape(other)}",
                path=source,
                fix="give the mask on the image's grid (resample it with nearest neighbour)",
            )
    spacing = np.asarray(spacing, dtype=np.float64)
    voxel_ml = float(np.prod(spacing)) / 1000.0
    body = np.ones(lesion.shape, dtype=bool) if body_mask is None else np.asarray(body_mask) > 0
    depth_map = ndimage.distance_transform_edt(np.pad(body, 1), sampling=spacing)[1:-1, 1:-1, 1:-1]
    components, count = ndimage.label(lesion, structure=STRUCTURE_26)
    features = []
    for index in range(1, count + 1):
        component = components == index
        voxels = np.argwhere(component)
        coordinates = voxels * spacing
        volume_ml = voxels.shape[0] * voxel_ml
        sphere_area = (36.0 * math.pi * (volume_ml * 1000.0) ** 2) ** (1.0 / 3.0)
        centroid_voxel = tuple(int(round(v)) for v in voxels.mean(axis=0))
        host: dict[int, int] = {}
        if tissue_labels is not None:
            shell = ndimage.binary_dilation(component, structure=STRUCTURE_26) & ~lesion
            values, counts = np.unique(np.asarray(tissue_labels)[shell], return_counts=True)
            host = {int(v): int(c) for v, c in zip(values, counts, strict=True)}
        features.append(
            LesionFeatures(
                volume_ml=volume_ml,
                elongation=_elongation(coordinates, spacing),
                irregularity=_surface_area_mm2(component, spacing) / sphere_area,
                depth_mm=float(depth_map[centroid_voxel]),
                centroid_mm=tuple(float(v) for v in coordinates.mean(axis=0)),  # type: ignore[arg-type]
                host_labels=host,
            )
        )
    return sorted(features, key=lambda f: -f.volume_ml)


@dataclass(frozen=True)
class Spread:
    """Mean, standard deviation and observed range of one feature (log scale where named)."""

    mean: float
    sd: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        array = np.asarray(values, dtype=np.float64)
        return cls(float(array.mean()), float(array.std()), float(array.min()), float(array.max()))


@dataclass(frozen=True)
class LesionShapeModel:
    """What the fitted lesions look like and where they sit (JSON-serialisable).

    ``log_volume_ml`` and ``log_elongation`` are spreads of natural logs; ``host_labels``
    the share of shell voxels per tissue label; ``lesions_per_case`` the share of cases
    with each lesion count (cases without a lesion are not counted).
    """

    lesions: int
    log_volume_ml: Spread
    log_elongation: Spread
    irregularity: Spread
    depth_mm: Spread
    host_labels: dict[int, float]
    lesions_per_case: dict[int, float]

    def to_json(self) -> dict[str, Any]:
        content = asdict(self)
        content["host_labels"] = {str(k): v for k, v in self.host_labels.items()}
        content["lesions_per_case"] = {str(k): v for k, v in self.lesions_per_case.items()}
        return content

    @classmethod
    def from_json(cls, content: dict[str, Any]) -> LesionShapeModel:
        spreads = {name: Spread(**content[name]) for name in ("log_volume_ml", "log_elongation", "irregularity")}
        return cls(
            lesions=int(content["lesions"]),
            depth_mm=Spread(**content["depth_mm"]),
            host_labels={int(k): float(v) for k, v in content["host_labels"].items()},
            lesions_per_case={int(k): float(v) for k, v in content["lesions_per_case"].items()},
            **spreads,
        )

    def save(self, path: str | Path) -> Path:
        return atomic_write_text(Path(path), json.dumps(self.to_json(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> LesionShapeModel:
        try:
            return cls.from_json(json.loads(Path(path).read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise InputError(
                f"not a lesion shape model ({error})", path=path, fix="fit one with fit_shape_model and save it"
            ) from error

    def host_tissues(self, min_share: float = 0.05) -> list[int]:
        """Tissue labels that make up at least ``min_share`` of the fitted lesions' shells."""
        return sorted(label for label, share in self.host_labels.items() if share >= min_share and label != 0)


def fit_shape_model(cases: Iterable[Sequence[LesionFeatures]]) -> LesionShapeModel:
    """Summarise the lesions of several cases (each a list from :func:`lesion_features`)."""
    per_case = [list(case) for case in cases]
    lesions = [lesion for case in per_case for lesion in case]
    if not lesions:
        raise ConfigError("no lesions to fit a shape model on", fix="give cases whose lesion masks are not empty")
    shell: Counter[int] = Counter()
    for lesion in lesions:
        shell.update(lesion.host_labels)
    total_shell = max(sum(shell.values()), 1)
    counts = Counter(len(case) for case in per_case if case)
    return LesionShapeModel(
        lesions=len(lesions),
        log_volume_ml=Spread.of([math.log(lesion.volume_ml) for lesion in lesions]),
        log_elongation=Spread.of([math.log(lesion.elongation) for lesion in lesions]),
        irregularity=Spread.of([lesion.irregularity for lesion in lesions]),
        depth_mm=Spread.of([lesion.depth_mm for lesion in lesions]),
        host_labels={label: count / total_shell for label, count in sorted(shell.items())},
        lesions_per_case={n: c / sum(counts.values()) for n, c in sorted(counts.items())},
    )


def _truncated_normal(rng: np.random.Generator, spread: Spread, low: float, high: float) -> float:
    for _ in range(100):
        value = rng.normal(spread.mean, spread.sd)
        if low <= value <= high:
            return float(value)
    return float(np.clip(spread.mean, low, high))


def allowed_region(
    body_mask: np.ndarray,
    spacing: Sequence[float],
    *,
    min_depth_mm: float = 0.0,
    tissue_labels: np.ndarray | None = None,
    allowed_labels: Sequence[int] | None = None,
) -> np.ndarray:
    """Voxels a lesion may occupy: inside the body, ``min_depth_mm`` below its surface, in ``allowed_labels``."""
    body = np.asarray(body_mask) > 0
    region = body.copy()
    if min_depth_mm > 0:
        depth = ndimage.distance_transform_edt(np.pad(body, 1), sampling=spacing)[1:-1, 1:-1, 1:-1]
        region &= depth >= min_depth_mm
    if allowed_labels is not None:
        if tissue_labels is None:
            raise ConfigError("allowed tissue labels were given without a tissue label map")
        present = set(np.unique(tissue_labels).tolist())
        unknown = sorted(set(allowed_labels) - present)
        if unknown == sorted(set(allowed_labels)):
            raise ConfigError(
                f"none of the allowed tissue labels {sorted(allowed_labels)} occurs in the label map "
                f"(it holds {sorted(int(v) for v in present)})",
                fix="check the tissue labels of the location constraint",
            )
        region &= np.isin(tissue_labels, list(allowed_labels))
    return region


def sample_lesion_mask(
    model: LesionShapeModel,
    region: np.ndarray,
    spacing: Sequence[float],
    rng: np.random.Generator,
    *,
    volume_range_ml: tuple[float, float] | None = None,
    max_tries: int = 20,
) -> np.ndarray:
    """One new lesion mask (uint8, the region's shape) drawn from ``model``, inside ``region`` only.

    ``volume_range_ml`` clips the drawn volume (default: the fitted range). Raises
    ConfigError when the region cannot hold a lesion of the drawn size.
    """
    spacing = np.asarray(spacing, dtype=np.float64)
    voxel_ml = float(np.prod(spacing)) / 1000.0
    low, high = volume_range_ml or (math.exp(model.log_volume_ml.low), math.exp(model.log_volume_ml.high))
    if not 0 < low <= high:
        raise ConfigError(f"lesion volume range ({low}, {high}) ml must be positive and ordered")
    candidates = np.argwhere(region)
    if candidates.shape[0] == 0:
        raise ConfigError("no voxel may hold a lesion (the allowed region is empty)", fix="relax the constraints")
    for _ in range(max_tries):
        volume_ml = math.exp(_truncated_normal(rng, model.log_volume_ml, math.log(low), math.log(high)))
        target_voxels = max(1, int(round(volume_ml / voxel_ml)))
        elongation = math.exp(max(0.0, rng.normal(model.log_elongation.mean, model.log_elongation.sd)))
        roughness = float(
            np.clip(
                (rng.normal(model.irregularity.mean, model.irregularity.sd) - 1.0) * ROUGHNESS_PER_IRREGULARITY,
                0.0,
                MAX_ROUGHNESS,
            )
        )
        centre = candidates[rng.integers(candidates.shape[0])]
        mask = _blob(region, spacing, centre, target_voxels, elongation, roughness, rng)
        if mask is not None:
            return mask
    raise ConfigError(
        f"could not place a lesion of ~{low:.2g}-{high:.2g} ml inside the allowed region in {max_tries} tries "
        f"({candidates.shape[0]} allowed voxels of {voxel_ml * 1000:.3g} mm^3)",
        fix="allow smaller lesions, more tissue labels or a smaller minimum depth",
    )


def _blob(
    region: np.ndarray,
    spacing: np.ndarray,
    centre: np.ndarray,
    target_voxels: int,
    elongation: float,
    roughness: float,
    rng: np.random.Generator,
) -> np.ndarray | None:
    """The ``target_voxels`` region voxels nearest ``centre`` in a rotated, noise-perturbed ellipsoid norm."""
    radius_mm = (3.0 * target_voxels * float(np.prod(spacing)) / (4.0 * math.pi)) ** (1.0 / 3.0)
    semi = radius_mm * np.array([elongation ** (2.0 / 3.0), elongation ** (-1.0 / 3.0), elongation ** (-1.0 / 3.0)])
    reach = 2.5 * float(semi.max())
    box = tuple(
        slice(max(0, int(c - math.ceil(reach / s))), min(n, int(c + math.ceil(reach / s)) + 1))
        for c, s, n in zip(centre, spacing, region.shape, strict=True)
    )
    offsets = np.meshgrid(
        *[(np.arange(b.start, b.stop) - c) * s for b, c, s in zip(box, centre, spacing, strict=True)], indexing="ij"
    )
    points = np.stack([o.ravel() for o in offsets], axis=1) @ Rotation.random(random_state=rng).as_matrix()
    norm = np.sqrt(((points / semi) ** 2).sum(axis=1)).reshape(offsets[0].shape)
    if roughness > 0:
        noise = ndimage.gaussian_filter(
            rng.standard_normal(norm.shape), sigma=max(1.0, radius_mm / (2 * spacing.min()))
        )
        norm = norm * (1.0 + roughness * noise / (noise.std() + 1e-9))
    inside = region[box]
    if inside.sum() < target_voxels:
        return None
    norm = np.where(inside, norm, np.inf)
    threshold = np.partition(norm.ravel(), target_voxels - 1)[target_voxels - 1]
    local = norm <= threshold
    components, _ = ndimage.label(local, structure=STRUCTURE_26)
    centre_in_box = tuple(int(c - b.start) for c, b in zip(centre, box, strict=True))
    keep = components == components[centre_in_box] if local[centre_in_box] else local
    if keep.sum() < 0.9 * target_voxels:  # the region split the blob: try elsewhere
        return None
    mask = np.zeros(region.shape, dtype=np.uint8)
    mask[box] = keep
    return mask
