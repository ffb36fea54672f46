"""The training data profile: what the images a run was trained on look like.

Why: a trained network only knows the voxel size, field of view and intensity
distribution it was trained on. The translate job uses this profile to resample
every input to the trained spacing (and back), and its input guard
(:mod:`medgan.inference.input_guard`) compares each input with it, so a CT given
to an MRI model, a skull-stripped brain or a 0.5 mm scan are noticed instead of
silently producing a wrong output. ``medgan train`` writes it to
``<run>/data_profile.json`` at run start.

Geometry is given per world axis in RAS order (the order the preprocessing chain
resamples in after ``Orientationd(RAS)``), so files stored in any orientation
compare axis by axis. Intensities are in the file's physical units (HU for CT),
measured on an evenly strided subsample of the voxels so profiling stays fast.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
from nibabel.orientations import io_orientation

from medgan.data.datalist import load_datalist
from medgan.data.presets import canonical_modality
from medgan.errors import InputError
from medgan.io import atomic_write_text, read_volume
from medgan.io.geometry import voxel_spacing

LOG = logging.getLogger(__name__)

PROFILE_VERSION = 1
AIR_HU = -1000.0
AIR_TOLERANCE_HU = 150.0
"""A voxel counts as "near air" within -1000 +- 150 (HU): air and lung-free background in CT."""
MAX_SAMPLED_VOXELS = 200_000
"""Voxels the intensity features are measured on (an even stride over the volume)."""
MAX_PROFILED_IMAGES = 32
"""Images profiled per key: an even selection over the split, so huge datasets stay quick to profile."""

Triple = tuple[float, float, float]


def ras_geometry(affine: Any, shape: Sequence[int]) -> tuple[Triple, Triple]:
    """(spacing, field of view) in mm per world axis R, A, S of a volume with ``affine`` and spatial ``shape``.

    Each voxel axis is assigned to the world axis it runs closest to (nibabel's
    ``io_orientation``, as MONAI's ``Orientation`` does); FOV = voxels x spacing.
    """
    affine = np.asarray(affine, dtype=np.float64)
    steps = voxel_spacing(affine)
    spacing = [0.0, 0.0, 0.0]
    fov = [0.0, 0.0, 0.0]
    for voxel_axis, (world_axis, _) in enumerate(io_orientation(affine)):
        step = steps[voxel_axis]
        spacing[int(world_axis)] = step
        fov[int(world_axis)] = step * int(shape[voxel_axis])
    return (spacing[0], spacing[1], spacing[2]), (fov[0], fov[1], fov[2])


@dataclass(frozen=True)
class IntensityFeatures:
    """Intensity percentiles and air fractions of one volume (physical units)."""

    p1: float
    p50: float
    p99: float
    min: float
    max: float
    fraction_negative: float
    fraction_air: float
    """Fraction of voxels within -1000 +- 150 (near air in HU)."""
    fraction_below_minus500: float


def intensity_features(voxels: Any, max_voxels: int = MAX_SAMPLED_VOXELS) -> IntensityFeatures:
    """Features of ``voxels`` (any array / tensor), percentiles on an even subsample of finite voxels.

    ``min`` / ``max`` and the fraction below -500 are exact, computed in chunks so a
    large CT costs no full-size temporary; the percentiles and the other fractions
    come from at most ``max_voxels`` evenly strided voxels.
    """
    if hasattr(voxels, "detach"):
        voxels = voxels.detach().cpu().numpy()
    flat = np.asarray(voxels, dtype=np.float32).reshape(-1)
    sample = flat[:: max(1, math.ceil(flat.size / max_voxels))]
    sample = sample[np.isfinite(sample)]
    low, high, below, finite = math.inf, -math.inf, 0, 0
    for begin in range(0, flat.size, _CHUNK):
        chunk = flat[begin : begin + _CHUNK]
        chunk = chunk[np.isfinite(chunk)]
        if chunk.size:
            low, high = min(low, float(chunk.min())), max(high, float(chunk.max()))
            below += int(np.count_nonzero(chunk < -500.0))
            finite += chunk.size
    if sample.size == 0 and finite:  # the stride hit only non-finite voxels: take the finite ones
        sample = flat[np.isfinite(flat)][:max_voxels]
    if finite == 0:
        nan = float("nan")
        return IntensityFeatures(nan, nan, nan, nan, nan, 0.0, 0.0, 0.0)
    p1, p50, p99 = (float(v) for v in np.percentile(sample, [1, 50, 99]))
    return IntensityFeatures(
        p1=p1,
        p50=p50,
        p99=p99,
        min=low,
        max=high,
        fraction_negative=float(np.mean(sample < 0)),
        fraction_air=float(np.mean(np.abs(sample - AIR_HU) <= AIR_TOLERANCE_HU)),
        fraction_below_minus500=below / finite,
    )


_CHUNK = 1 << 22


@dataclass(frozen=True)
class ImageStats:
    """One profiled image: geometry in RAS axis order, DICOM modality tag, intensity features."""

    path: str
    shape: tuple[int, int, int]
    """Voxels in the file's own index order."""
    spacing: Triple
    """mm per world axis R, A, S."""
    fov_mm: Triple
    """Field of view in mm per world axis R, A, S."""
    modality_tag: str
    """The DICOM Modality tag ("" for NIfTI / absent)."""
    intensity: IntensityFeatures

    @classmethod
    def of_file(cls, path: str | Path, max_voxels: int = MAX_SAMPLED_VOXELS) -> ImageStats:
        """Read ``path`` with :func:`medgan.io.read_volume` and measure it."""
        volume = read_volume(path)
        shape = tuple(int(size) for size in volume.shape[1:])
        spacing, fov = ras_geometry(volume.affine, shape)
        return cls(
            path=str(path),
            shape=shape,  # type: ignore[arg-type]
            spacing=spacing,
            fov_mm=fov,
            modality_tag=str(volume.meta.get("modality", "") or ""),
            intensity=intensity_features(volume, max_voxels),
        )

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ImageStats:
        return cls(
            path=values["path"],
            shape=tuple(values["shape"]),  # type: ignore[arg-type]
            spacing=tuple(values["spacing"]),  # type: ignore[arg-type]
            fov_mm=tuple(values["fov_mm"]),  # type: ignore[arg-type]
            modality_tag=values.get("modality_tag", ""),
            intensity=IntensityFeatures(**_known(IntensityFeatures, values["intensity"])),
        )


def _median3(rows: Sequence[Sequence[float]]) -> Triple:
    median = np.median(np.asarray(rows, dtype=np.float64), axis=0)
    return float(median[0]), float(median[1]), float(median[2])


def _min3(rows: Sequence[Sequence[float]]) -> Triple:
    low = np.min(np.asarray(rows, dtype=np.float64), axis=0)
    return float(low[0]), float(low[1]), float(low[2])


@dataclass(frozen=True)
class ImageSetProfile:
    """The profiled images of one datalist key (e.g. the source MRIs) and their aggregates."""

    key: str
    modality: str
    """The preset name the run reads these images with ("mri", "ct")."""
    n_entries: int
    """Entries of the split with this key (``images`` may hold an even selection of them)."""
    images: list[ImageStats]
    median_spacing: Triple
    min_fov_mm: Triple
    median_fov_mm: Triple
    modality_tags: list[str]
    """Distinct DICOM Modality tags seen (empty for NIfTI)."""
    percentile_ranges: dict[str, tuple[float, float]]
    """(lowest, highest) over the images of p1, p50 and p99 (keys "p1", "p50", "p99")."""
    median_percentiles: dict[str, float]
    median_fraction_air: float
    median_fraction_negative: float

    @classmethod
    def of_images(cls, key: str, modality: str, n_entries: int, images: Sequence[ImageStats]) -> ImageSetProfile:
        if not images:
            raise ValueError(f"no images to profile for {key!r}")
        features = [image.intensity for image in images]
        names = ("p1", "p50", "p99")
        per_name = {name: [float(getattr(f, name)) for f in features] for name in names}
        return cls(
            key=key,
            modality=canonical_modality(modality),
            n_entries=n_entries,
            images=list(images),
            median_spacing=_median3([image.spacing for image in images]),
            min_fov_mm=_min3([image.fov_mm for image in images]),
            median_fov_mm=_median3([image.fov_mm for image in images]),
            modality_tags=sorted({image.modality_tag for image in images if image.modality_tag}),
            percentile_ranges={name: (min(v), max(v)) for name, v in per_name.items()},
            median_percentiles={name: float(np.median(v)) for name, v in per_name.items()},
            median_fraction_air=float(np.median([f.fraction_air for f in features])),
            median_fraction_negative=float(np.median([f.fraction_negative for f in features])),
        )

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ImageSetProfile:
        return cls(
            key=values["key"],
            modality=values["modality"],
            n_entries=int(values["n_entries"]),
            images=[ImageStats.from_dict(image) for image in values.get("images", [])],
            median_spacing=tuple(values["median_spacing"]),  # type: ignore[arg-type]
            min_fov_mm=tuple(values["min_fov_mm"]),  # type: ignore[arg-type]
            median_fov_mm=tuple(values["median_fov_mm"]),  # type: ignore[arg-type]
            modality_tags=list(values.get("modality_tags", [])),
            percentile_ranges={name: tuple(pair) for name, pair in values["percentile_ranges"].items()},  # type: ignore[misc]
            median_percentiles={name: float(v) for name, v in values["median_percentiles"].items()},
            median_fraction_air=float(values["median_fraction_air"]),
            median_fraction_negative=float(values["median_fraction_negative"]),
        )


@dataclass(frozen=True)
class DataProfile:
    """The training split's source images (what inputs are checked against) and target images (reference)."""

    datalist: str
    split: str
    source: ImageSetProfile
    target: ImageSetProfile | None = None
    version: int = field(default=PROFILE_VERSION)

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self)))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> DataProfile:
        target = values.get("target")
        return cls(
            datalist=values["datalist"],
            split=values["split"],
            source=ImageSetProfile.from_dict(values["source"]),
            target=ImageSetProfile.from_dict(target) if target else None,
            version=int(values.get("version", PROFILE_VERSION)),
        )

    def save(self, path: str | Path) -> Path:
        """Write the profile as JSON, atomically."""
        return atomic_write_text(path, self.to_json() + "\n")

    @classmethod
    def load(cls, path: str | Path) -> DataProfile:
        """Read a profile written by :meth:`save` (InputError naming the file when it is unreadable)."""
        path = Path(path)
        try:
            return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise InputError(
                f"unreadable data profile ({type(err).__name__}: {err})",
                path=path,
                fix="delete the file to translate without the profile checks, or re-create it with "
                "medgan.data.profile.build_data_profile",
            ) from err


def _known(cls: type, values: dict[str, Any]) -> dict[str, Any]:
    names = {item.name for item in fields(cls)}
    return {name: value for name, value in values.items() if name in names}


def _even_selection(paths: Sequence[Path], limit: int) -> list[Path]:
    if len(paths) <= limit:
        return list(paths)
    picks = np.linspace(0, len(paths) - 1, limit).round().astype(int)
    return [paths[i] for i in sorted(set(picks.tolist()))]


def profile_images(
    paths: Sequence[Path], *, key: str, modality: str, max_images: int = MAX_PROFILED_IMAGES
) -> ImageSetProfile:
    """Profile (an even selection of at most ``max_images`` of) ``paths``, read as ``modality``."""
    selected = _even_selection(list(paths), max_images)
    return ImageSetProfile.of_images(key, modality, len(paths), [ImageStats.of_file(path) for path in selected])


def build_data_profile(
    datalist: str | Path,
    *,
    split: str = "training",
    source_key: str,
    source_modality: str,
    target_key: str | None = None,
    target_modality: str | None = None,
    max_images: int = MAX_PROFILED_IMAGES,
) -> DataProfile:
    """The profile of ``split`` of ``datalist``: its ``source_key`` images (and ``target_key`` ones).

    Entries without a key are left out for that key (unpaired datalists). Raises
    ConfigError for an unknown split and InputError when the split has no source
    image or one cannot be read (the error names the file).
    """
    entries = load_datalist(datalist, split)

    def paths_of(key: str) -> list[Path]:
        return sorted({Path(entry[key]) for entry in entries if entry.get(key) is not None})

    source_paths = paths_of(source_key)
    if not source_paths:
        raise InputError(
            f"split {split!r} has no {source_key!r} image to profile",
            path=datalist,
            fix="check data.source_key and data.train_split against the datalist",
        )
    source = profile_images(source_paths, key=source_key, modality=source_modality, max_images=max_images)
    target = None
    if target_key is not None and target_modality is not None:
        target_paths = paths_of(target_key)
        if target_paths:
            target = profile_images(target_paths, key=target_key, modality=target_modality, max_images=max_images)
    return DataProfile(datalist=str(Path(datalist)), split=split, source=source, target=target)


def format_numbers(values: Sequence[float], digits: int = 2) -> str:
    """``1 x 1 x 2.5``-style text of a few numbers (trailing zeros dropped)."""
    return " x ".join(f"{float(v):.{digits}f}".rstrip("0").rstrip(".") for v in values)


def format_mm(values: Sequence[float], digits: int = 2) -> str:
    """``1 x 1 x 2.5 mm``-style text of three lengths (trailing zeros dropped)."""
    return format_numbers(values, digits) + " mm"
