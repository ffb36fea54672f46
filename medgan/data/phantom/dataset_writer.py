"""Write a phantom dataset: per-subject NIfTI files, a decathlon datalist, checksums, a montage.

Why one writer: the bundled ``sample_data/`` and every ``medgan sample-data`` run must be
byte-identical for the same arguments, so file names, JSON layout, gzip headers (nibabel
writes mtime 0) and the train/validation/test split are fixed here in one place.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from medgan.data.phantom import tissues as t
from medgan.data.phantom.grid import PhantomGrid
from medgan.data.phantom.lesions import LESION_MIXES
from medgan.data.phantom.subject import PhantomSubject, generate_subject, has_lesion
from medgan.errors import ConfigError, OutputPathError
from medgan.io import atomic_write_text, sha256_file, write_nifti

# Field of view used when no spacing is given: a 240 mm cube holds any phantom head
# (about 150 x 190 mm across, plus a little neck) like a clinical head scan.
DEFAULT_FOV_MM = 240.0
# Smallest field of view that still holds the whole head front-to-back.
MIN_FOV_MM = 200.0
MIN_SHAPE = 16
# Above this many voxels the render grid is not supersampled (memory); voxels are
# then small enough (<= ~2 mm at the default field of view) for edges to stay sharp.
MAX_SUPERSAMPLED_VOXELS = 128**3
SPLIT_FRACTIONS = {"validation": 0.15, "test": 0.15}
CHECKSUM_FILE = "checksums.sha256"
PATH_KEYS = ("mri", "ct", "labels", "lesion_mask")
DESCRIPTION = (
    "medgan deterministic digital head phantom: paired T1-weighted MRI (simulated 3 T spoiled "
    "gradient echo, TR 20 ms / TE 4 ms / flip 25 deg, bias field and Rician noise; int16 arbitrary "
    "units, white matter ~400) and CT (int16 HU, Gaussian noise), tissue label map, and for lesion "
    "subjects a binary lesion mask (lesion core incl. necrosis) and lesion_type. label: 0 = healthy, "
    "1 = lesion. Synthetic data, no patient information."
)


@dataclass(frozen=True)
class PhantomDatasetConfig:
    """What to generate: subject count, image shape and spacing, lesion fraction and seed.

    ``spacing_mm=None`` derives an isotropic spacing from a 240 mm field of view.
    Invalid values raise :class:`~medgan.errors.ConfigError` naming the argument.
    """

    subjects: int = 24
    shape: tuple[int, int, int] = (64, 64, 64)
    spacing_mm: float | tuple[float, float, float] | None = None
    lesion_fraction: float = 0.5
    seed: int = 0
    lesion_mix: str = "default"
    grid: PhantomGrid = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if isinstance(self.subjects, bool) or not isinstance(self.subjects, int | np.integer) or self.subjects < 1:
            raise ConfigError(
                f"subjects must be a whole number >= 1, got {self.subjects!r}", fix="pass e.g. --subjects 24"
            )
        shape = _three(self.shape, "shape", int)
        if any(n < MIN_SHAPE for n in shape):
            raise ConfigError(
                f"shape {shape} is too small: every axis needs at least {MIN_SHAPE} voxels to hold a head",
                fix="pass e.g. --shape 64 (or 48,48,48)",
            )
        if isinstance(self.lesion_fraction, bool) or not (
            isinstance(self.lesion_fraction, int | float) and 0.0 <= float(self.lesion_fraction) <= 1.0
        ):
            raise ConfigError(
                f"lesion_fraction must be a number in [0, 1], got {self.lesion_fraction!r}",
                fix="pass e.g. --lesion-fraction 0.5",
            )
        if self.lesion_mix not in LESION_MIXES:
            raise ConfigError(
                f"unknown lesion mix {self.lesion_mix!r}", fix=f"use one of {', '.join(sorted(LESION_MIXES))}"
            )
        if isinstance(self.seed, bool) or not isinstance(self.seed, int | np.integer) or self.seed < 0:
            raise ConfigError(f"seed must be a whole number >= 0, got {self.seed!r}", fix="pass e.g. --seed 0")
        if self.spacing_mm is None:
            spacing = tuple(DEFAULT_FOV_MM / n for n in shape)
        else:
            spacing = _three(self.spacing_mm, "spacing_mm", float)
            if any(not math.isfinite(s) or s <= 0 for s in spacing):
                raise ConfigError(f"spacing_mm must be positive, got {self.spacing_mm!r}", fix="e.g. 1.0")
            fov = [n * s for n, s in zip(shape, spacing, strict=True)]
            if min(fov[:2]) < MIN_FOV_MM:
                raise ConfigError(
                    f"shape {shape} x spacing {spacing} mm gives a {fov[0]:.0f} x {fov[1]:.0f} mm field of "
                    f"view, too small for a head (needs >= {MIN_FOV_MM:.0f} mm in x and y)",
                    fix="leave spacing_mm unset (derived from a 240 mm field of view) or raise shape/spacing",
                )
        factor = 2 if math.prod(shape) <= MAX_SUPERSAMPLED_VOXELS else 1
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "spacing_mm", spacing)
        object.__setattr__(self, "lesion_fraction", float(self.lesion_fraction))
        object.__setattr__(self, "grid", PhantomGrid(shape, spacing, factor))  # type: ignore[arg-type]


def _three(value: Any, name: str, kind: type) -> tuple:
    """An int/float or a 3-sequence as a 3-tuple of ``kind``, else ConfigError naming ``name``."""
    items = [value] * 3 if isinstance(value, int | float | np.number) and not isinstance(value, bool) else value
    try:
        items = list(items)
        if len(items) != 3 or any(isinstance(v, bool) for v in items):
            raise TypeError
        converted = tuple(kind(v) for v in items)
        if kind is int and any(float(v) != int(v) for v in items):
            raise TypeError
    except (TypeError, ValueError):
        raise ConfigError(
            f"{name} must be one number or three numbers, got {value!r}", fix=f"pass e.g. {name}=64 or (64, 64, 64)"
        ) from None
    return converted


@dataclass(frozen=True)
class PhantomDatasetResult:
    """What was written: paths, split sizes, lesion count, bytes on disk and seconds taken."""

    out_dir: Path
    datalist_path: Path
    montage_path: Path
    checksums_path: Path
    split_sizes: dict[str, int]
    lesion_subjects: int
    bytes_on_disk: int
    seconds: float


def split_subjects(labels: list[int], seed: int) -> dict[str, list[int]]:
    """Deterministic, class-stratified 70/15/15 split of subject indices.

    Validation and test each get ``floor(0.15 * N + 0.5)`` subjects. Subjects are
    shuffled with the seed inside each class, then interleaved in proportion to the
    class sizes, so every split holds healthy and lesion subjects in about the
    dataset's ratio; validation takes the first ones, test the next, training the rest.
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, 2_000_003]))
    ranked: list[tuple[float, int, int]] = []
    for class_label in sorted(set(labels)):
        members = [i for i, label in enumerate(labels) if label == class_label]
        for rank, k in enumerate(rng.permutation(len(members))):
            ranked.append(((rank + 0.5) / len(members), class_label, members[k]))
    order = [index for _, _, index in sorted(ranked)]
    n_val = math.floor(SPLIT_FRACTIONS["validation"] * len(labels) + 0.5)
    n_test = math.floor(SPLIT_FRACTIONS["test"] * len(labels) + 0.5)
    return {
        "training": sorted(order[n_val + n_test :]),
        "validation": sorted(order[:n_val]),
        "test": sorted(order[n_val : n_val + n_test]),
    }


def _write_subject(subject: PhantomSubject, out_dir: Path) -> dict[str, Any]:
    """Write one subject's NIfTI files and return its datalist entry (paths relative to out_dir)."""
    name = f"subject_{subject.index:03d}"
    folder = out_dir / name
    volumes = {"mri": subject.mri_t1, "ct": subject.ct_hu, "labels": subject.tissue_labels}
    if subject.lesion_mask is not None:
        volumes["lesion_mask"] = subject.lesion_mask
    entry: dict[str, Any] = {"subject": name}
    for key, volume in volumes.items():
        write_nifti(volume, folder / f"{key}.nii.gz", affine=subject.affine, dtype=volume.dtype)
        entry[key] = f"{name}/{key}.nii.gz"
    entry["label"] = subject.class_label
    if subject.lesion is not None:
        voxel_ml = float(np.prod(np.diag(subject.affine)[:3])) / 1000.0
        entry.update(
            lesion_type=subject.lesion.lesion_type,
            lesion_subtle=subject.lesion.subtle,
            lesion_contrast=subject.lesion.contrast,
            lesion_volume_ml=round(float(subject.lesion_mask.sum()) * voxel_ml, 3),
            lesion_centre_mm=list(subject.lesion.centre_mm),
            lesion_necrosis=subject.lesion.has_necrosis,
            lesion_oedema=subject.lesion.has_oedema,
        )
    entry.update(mri_snr=subject.mri_snr, mri_bias_amplitude=subject.bias_amplitude, ct_noise_hu=subject.ct_noise_hu)
    return entry


def write_checksums(out_dir: Path, relative_paths: list[str]) -> Path:
    """Write ``checksums.sha256`` (``sha256sum -c`` format) for the given files, sorted by path."""
    lines = [f"{sha256_file(out_dir / rel)}  {rel}\n" for rel in sorted(relative_paths)]
    return atomic_write_text(out_dir / CHECKSUM_FILE, "".join(lines))


def _save_preview(out_dir: Path, shown: list[PhantomSubject], spacing: tuple[float, float, float]) -> Path:
    """Montage of a few subjects (MRI, CT, labels; lesion outlined), crossing at the first lesion."""
    from medgan.viz import save_montage

    rows: dict[str, np.ndarray] = {}
    windows: dict[str, tuple[float, float]] = {}
    overlays: dict[str, np.ndarray] = {}
    cmaps: dict[str, str] = {}
    for subject in shown:
        tag = f"s{subject.index:03d}" + (f" {subject.lesion.lesion_type}" if subject.lesion else " healthy")
        rows[f"{tag}\nMRI T1w"] = subject.mri_t1
        rows[f"{tag}\nCT HU"] = subject.ct_hu
        rows[f"{tag}\nlabels"] = subject.tissue_labels
        windows[f"{tag}\nCT HU"] = (-150.0, 350.0)
        windows[f"{tag}\nlabels"] = (-0.5, 19.5)
        cmaps[f"{tag}\nlabels"] = "tab20"
        if subject.lesion_mask is not None:
            overlays[f"{tag}\nMRI T1w"] = subject.lesion_mask
            overlays[f"{tag}\nCT HU"] = subject.lesion_mask
    with_lesion = [s for s in shown if s.lesion_mask is not None and s.lesion_mask.any()]
    slices = None
    if with_lesion:
        slices = [int(round(v)) for v in np.argwhere(with_lesion[0].lesion_mask).mean(axis=0)]
    return save_montage(
        rows,
        out_dir / "montage.png",
        windows=windows,
        overlays=overlays,
        cmaps=cmaps,
        slices=slices,
        spacing=spacing,
        title="medgan head phantom (CT window -150..350 HU; lesion outlined in red)",
        dpi=60,
    )


def write_phantom_dataset(
    out_dir: str | Path,
    config: PhantomDatasetConfig,
    *,
    on_subject_done: Callable[[int], None] | None = None,
    montage_subjects: int = 3,
) -> PhantomDatasetResult:
    """Generate and write the dataset described by ``config`` into ``out_dir``.

    Writes ``subject_XXX/{mri,ct,labels[,lesion_mask]}.nii.gz``, ``datalist.json``,
    ``montage.png`` and ``checksums.sha256``. Existing files of the same names are
    replaced atomically; ``on_subject_done(index)`` is called after each subject.
    """
    started = time.perf_counter()
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputPathError("output path exists and is not a folder", path=out_dir, fix="choose a folder path")
    out_dir.mkdir(parents=True, exist_ok=True)
    entries: list[dict[str, Any]] = []
    shown: list[PhantomSubject] = []
    for index in range(config.subjects):
        with_lesion = has_lesion(config.seed, index, config.lesion_fraction)
        subject = generate_subject(
            config.seed, index, config.grid, with_lesion=with_lesion, lesion_mix=LESION_MIXES[config.lesion_mix]
        )
        entries.append(_write_subject(subject, out_dir))
        if len(shown) < montage_subjects and (with_lesion or not any(s.lesion is None for s in shown)):
            shown.append(subject)
        if on_subject_done is not None:
            on_subject_done(index)

    splits = split_subjects([entry["label"] for entry in entries], config.seed)
    datalist: dict[str, Any] = {
        "name": "medgan-head-phantom",
        "description": DESCRIPTION,
        "generator": {
            "subjects": config.subjects,
            "shape": list(config.shape),
            "spacing_mm": [round(s, 6) for s in config.spacing_mm],  # type: ignore[union-attr]
            "lesion_fraction": config.lesion_fraction,
            "seed": config.seed,
            **({"lesion_mix": config.lesion_mix} if config.lesion_mix != "default" else {}),
        },
        "tissues": t.tissue_legend(),
        "labels": {"0": "healthy", "1": "lesion"},
        "modality": {"mri": "MR T1w (simulated)", "ct": "CT HU"},
    }
    for split_name, indices in splits.items():
        datalist[f"num_{split_name}"] = len(indices)
    for split_name, indices in splits.items():
        datalist[split_name] = [entries[i] for i in indices]
    datalist_path = atomic_write_text(out_dir / "datalist.json", json.dumps(datalist, indent=2) + "\n")
    montage_path = _save_preview(out_dir, shown, config.grid.spacing_mm)

    written = [value for entry in entries for key, value in entry.items() if key in PATH_KEYS]
    written += ["datalist.json", "montage.png"]
    checksums_path = write_checksums(out_dir, written)
    return PhantomDatasetResult(
        out_dir=out_dir,
        datalist_path=datalist_path,
        montage_path=montage_path,
        checksums_path=checksums_path,
        split_sizes={name: len(indices) for name, indices in splits.items()},
        lesion_subjects=sum(entry["label"] for entry in entries),
        bytes_on_disk=sum((out_dir / rel).stat().st_size for rel in written) + checksums_path.stat().st_size,
        seconds=time.perf_counter() - started,
    )
