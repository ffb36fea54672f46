"""The enrich job (``medgan enrich CONFIG``): synthetic lesions, with exact masks, in healthy cases.

Steps:

1. **Fit** (every shard fits the same, deterministically): from the lesion cases of
   ``fit_split``, a lesion shape and placement model (:mod:`medgan.data.lesion_shapes`:
   size, elongation, irregularity, depth, host tissues) and an appearance model
   (:mod:`medgan.data.lesion_intensity`: each real lesion's contrast to its surroundings in
   every image, core structure, texture). Both are written to ``OUT/models/`` with a report of
   fitted vs sampled sizes.
2. **Insert**: item ``i`` is copy ``j`` of healthy case ``s`` (``i = s * cases_per_source + j``);
   its random stream is ``derive_seed(seed, i)``. Each of its lesions is a new mask drawn from
   the shape model inside the allowed region (the host tissues, at least ``min_depth_mm`` deep,
   never overlapping an earlier lesion), painted into every image with one drawn appearance.
   Only voxels within 3 of the mask change; all others are the source's, exactly. Images stay
   on the source's grid with its affine.
3. **Write** ``OUT/<subject>_syn<j>/``: one file per image (``<key>.nii.gz`` or ``<key>/`` as a
   de-identified DICOM series marked derived / synthetic), ``lesion_mask.nii.gz`` and
   ``case.json`` (source, lesions, seed, model hashes, medgan version); then ``OUT/datalist.json``:
   the source datalist's lists unchanged (paths made relative to OUT) plus every finished
   synthetic case in ``split``, flagged ``"synthetic": true`` with ``"source_subject"``.

Resume, shards and atomic writes come from :mod:`medgan.jobs`: a single, sharded or resumed
job writes the same cases.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import ndimage

from medgan import __version__
from medgan.config.enrich import EnrichConfig
from medgan.config.loader import config_sha256
from medgan.data.body import body_mask
from medgan.data.datalist import DEFAULT_PATH_KEYS, load_datalist, read_datalist_json
from medgan.data.lesion_intensity import AppearanceModel, measure_appearance, paint_lesion
from medgan.data.lesion_shapes import (
    LesionShapeModel,
    allowed_region,
    fit_shape_model,
    lesion_features,
    sample_lesion_mask,
)
from medgan.data.presets import get_preset
from medgan.errors import ConfigError, InputError
from medgan.io import atomic_directory, atomic_write_text, read_volume, sha256_file, write_dicom_series, write_nifti
from medgan.jobs import JobFingerprint, JobItem, JobSummary, parse_shard, run_job
from medgan.jobs.manifest import merge_manifests
from medgan.methods.image_pool import derive_seed

LOG = logging.getLogger(__name__)

CASE_SIDECAR = "case.json"
MODELS_DIR = "models"
SHAPE_MODEL_FILE = "lesion_shape_model.json"
APPEARANCE_MODEL_FILE = "lesion_appearance_model.json"
FIT_REPORT_FILE = "fit_report.json"
DEPTH_FRACTION = 0.5  # default minimum depth: half the shallowest fitted lesion's centroid depth


class CaseVolumes:
    """One case read on its own grid: images ``(C, X, Y, Z)`` in physical units, affine, spacing, labels."""

    def __init__(self, entry: dict[str, Any], config: EnrichConfig) -> None:
        self.entry = entry
        self.subject = str(entry.get("subject", Path(str(entry[next(iter(config.images))])).stem))
        volumes = [read_volume(entry[key]) for key in config.images]
        first = volumes[0]
        self.affine = np.asarray(first.affine, dtype=np.float64)
        self.spacing = tuple(float(v) for v in np.linalg.norm(self.affine[:3, :3], axis=0))
        for key, volume in zip(config.images, volumes, strict=True):
            if tuple(volume.shape[1:]) != tuple(first.shape[1:]):
                raise InputError(
                    f"image {key!r} has shape {tuple(volume.shape[1:])}, {next(iter(config.images))!r} "
                    f"{tuple(first.shape[1:])}: the images of a case must share one grid",
                    path=entry[key],
                    fix="resample / register the images of each case onto one grid",
                )
        self.images = np.stack([volume[0].numpy() for volume in volumes]).astype(np.float32)
        self.labels = self._grid_matched(entry, config.labels_key, "tissue label map")
        self.lesion_mask = self._grid_matched(entry, config.lesion_mask_key, "lesion mask")

    def _grid_matched(self, entry: dict[str, Any], key: str | None, what: str) -> np.ndarray | None:
        if not key or key not in entry:
            return None
        volume = read_volume(entry[key])[0].numpy()
        if volume.shape != self.images.shape[1:]:
            raise InputError(
                f"the {what} has shape {volume.shape} but the case's images {self.images.shape[1:]}",
                path=entry[key],
                fix="give masks and label maps on the image grid (resample with nearest neighbour)",
            )
        return np.rint(volume).astype(np.int32)

    def body(self, config: EnrichConfig) -> np.ndarray:
        """Body mask: label map > 0 when there is one, else the first image above its preset's body threshold."""
        if self.labels is not None:
            return self.labels > 0
        preset = get_preset(next(iter(config.images.values())))
        image_net = preset.to_network(torch.from_numpy(self.images[0]))
        return ndimage.binary_fill_holes(body_mask(image_net).numpy() > 0)


def fit_models(config: EnrichConfig) -> tuple[LesionShapeModel, AppearanceModel, dict[str, Any]]:
    """Shape and appearance models from the lesion cases of ``fit_split`` (see the module docstring)."""
    split = config.fit_split or config.split
    entries = load_datalist(config.datalist, split, require_keys=(*config.images, config.label_key))
    lesion_entries = [e for e in entries if e[config.label_key] == config.lesion_label and config.lesion_mask_key in e]
    if not lesion_entries:
        raise ConfigError(
            f"datalist split {split!r} has no case of class {config.lesion_label} with a {config.lesion_mask_key!r}",
            path=config.datalist,
            fix="set fit_split to a list with lesion cases, or lesion_label / lesion_mask_key to their keys",
        )
    shape_cases, appearances = [], []
    for entry in lesion_entries:
        case = CaseVolumes(entry, config)
        assert case.lesion_mask is not None
        features = lesion_features(
            case.lesion_mask,
            case.spacing,
            body_mask=case.body(config),
            tissue_labels=case.labels,
            source=entry[config.lesion_mask_key],
        )
        if not features:
            LOG.warning("lesion case %s has an empty lesion mask; not fitted on", case.subject)
            continue
        shape_cases.append(features)
        lesion_type = entry.get(config.lesion_type_key) if config.lesion_type_key else None
        appearances.append(
            measure_appearance(
                case.images, case.lesion_mask, lesion_type=lesion_type, source=entry[config.lesion_mask_key]
            )
        )
    shape_model = fit_shape_model(shape_cases)
    appearance_model = AppearanceModel(tuple(config.images), tuple(appearances))
    report = {
        "fitted_cases": len(shape_cases),
        "split": split,
        "shape": shape_model.to_json(),
        "appearance": appearance_model.summary(),
    }
    return shape_model, appearance_model, report


def plan_enrich_items(config: EnrichConfig, out_dir: Path) -> list[JobItem]:
    """One item per synthetic case: copy ``j`` of each healthy case of ``split``, in datalist order."""
    entries = load_datalist(config.datalist, config.split, require_keys=(*config.images, config.label_key))
    healthy = [e for e in entries if e[config.label_key] == config.healthy_label]
    if not healthy:
        raise ConfigError(
            f"datalist split {config.split!r} has no case of class {config.healthy_label} to put lesions in",
            path=config.datalist,
            fix="check split, label_key and healthy_label",
        )
    items = []
    for source_index, entry in enumerate(healthy):
        subject = str(entry.get("subject", f"case{source_index:04d}"))
        for copy in range(config.cases_per_source):
            index = source_index * config.cases_per_source + copy
            key = f"{subject}_syn{copy:02d}"
            items.append(
                JobItem(
                    key,
                    Path(entry[next(iter(config.images))]),
                    out_dir / key,
                    {"index": index, "seed": derive_seed(config.seed, index), "entry": entry, "subject": subject},
                )
            )
    return items


def _shell(mask: np.ndarray) -> np.ndarray:
    """The two-voxel shell around a lesion (its surroundings, for the recorded contrast)."""
    grown = ndimage.binary_dilation(mask > 0, structure=ndimage.generate_binary_structure(3, 1), iterations=2)
    return grown & ~(mask > 0)


def _value_ranges(config: EnrichConfig) -> list[tuple[float, float] | None]:
    """Paint within each preset's physical window (CT: its HU window); MRI only above 0."""
    ranges: list[tuple[float, float] | None] = []
    for modality in config.images.values():
        window = get_preset(modality).fixed_window
        ranges.append((float(window.low), float(window.high)) if window is not None else (0.0, float("inf")))
    return ranges


class ProceduralPainter:
    """Paints a drawn measured appearance (:func:`medgan.data.lesion_intensity.paint_lesion`)."""

    name = "procedural"

    def __init__(self, config: EnrichConfig, appearance_model: AppearanceModel) -> None:
        self.config, self.appearance_model = config, appearance_model
        self.fingerprint = ""

    def paint(
        self, images: np.ndarray, mask: np.ndarray, spacing: tuple[float, ...], rng: np.random.Generator
    ) -> tuple[np.ndarray, dict[str, Any]]:
        appearance = self.appearance_model.draw(rng, self.config.lesion_type)
        painted = paint_lesion(
            images,
            mask,
            appearance,
            rng,
            contrast_scale=self.config.contrast_scale,
            value_ranges=_value_ranges(self.config),
        )
        return painted, {"lesion_type": appearance.lesion_type}


class GanPainter:
    """Inpaints with a trained ``lesion`` run at its trained spacing; pastes back only the band.

    The lesion's neighbourhood (the run's patch, in millimetres) is cut from the case, resampled
    to the patch grid (trilinear; the mask nearest), mapped to network range with each image's
    window (MRI: measured on the whole volume, as in training), inpainted by the EMA generator in
    fp32 (asked, when the run has a contrast code, for the contrast of one drawn measured
    appearance times ``contrast_scale``), mapped back and resampled to the case grid; only voxels
    within the run's ``band_voxels`` of the (case-grid) mask take the result, all others stay the
    case's, exactly.
    """

    name = "lesion"

    def __init__(self, config: EnrichConfig, appearance_model: AppearanceModel) -> None:
        from medgan.methods.capabilities import require_capability
        from medgan.training import load_trained_run

        assert config.run is not None
        self.config, self.appearance_model = config, appearance_model
        self.run = load_trained_run(config.run, device="cpu")
        require_capability(self.run.method, "inpaint", job="enrich")
        run_images = dict(self.run.method.options.images)
        if set(run_images) != set(config.images):
            raise ConfigError(
                f"the run inpaints images {list(run_images)} but the enrich config names {list(config.images)}",
                path=config.run,
                fix="set images to the run's model.images (the same datalist keys)",
            )
        self.channels = [list(config.images).index(key) for key in run_images]  # config channel of each run channel
        spacing = self.run.trained_spacing
        if spacing is None:
            raise ConfigError("the run records no trained spacing", path=config.run, fix="retrain it")
        self.trained_spacing = np.asarray(spacing, dtype=np.float64)
        self.presets = [get_preset(modality) for modality in run_images.values()]
        self.patch = np.asarray(self.run.config.data.patch_size, dtype=int)
        self.band = int(self.run.method.options.band_voxels)
        self.fingerprint = self.run.checkpoint_sha256

    def paint(
        self, images: np.ndarray, mask: np.ndarray, spacing: tuple[float, ...], rng: np.random.Generator
    ) -> tuple[np.ndarray, dict[str, Any]]:
        window = np.ceil(self.patch * self.trained_spacing / np.asarray(spacing) - 1e-6).astype(int)
        coordinates = np.argwhere(mask)
        low, high = coordinates.min(axis=0) - self.band, coordinates.max(axis=0) + self.band
        if np.any(high - low + 1 > window):
            raise ConfigError(
                f"a {tuple(int(v) for v in high - low + 1)}-voxel lesion (with its band) does not fit the run's "
                f"{tuple(int(v) for v in window)}-voxel patch",
                fix="allow smaller lesions (volume_range_ml) or train the run with a larger patch",
            )
        start = np.round((low + high) / 2 - window / 2).astype(int)
        pad = [(max(0, -a), max(0, a + w - n)) for a, w, n in zip(start, window, mask.shape, strict=True)]
        region = tuple(slice(a + p[0], a + p[0] + w) for a, w, p in zip(start, window, pad, strict=True))
        unpadded = tuple(slice(p[0], p[0] + n) for p, n in zip(pad, mask.shape, strict=True))
        nets, windows = [], []
        for channel, preset in zip(self.channels, self.presets, strict=True):
            volume = torch.from_numpy(np.ascontiguousarray(images[channel]))
            intensity = preset.fixed_window or preset.window_of_volume(volume)
            windows.append(intensity)
            net = preset.to_network(volume, intensity).as_subclass(torch.Tensor).numpy()
            nets.append(np.pad(net, pad, mode="edge")[region])
        # the contrast to ask for: one drawn measured appearance (as the procedural painter), in network units
        appearance = self.appearance_model.draw(rng, self.config.lesion_type)
        contrast = torch.tensor(
            [
                [
                    appearance.contrast[channel] * self.config.contrast_scale * 2.0 / (w.high - w.low)
                    for channel, w in zip(self.channels, windows, strict=True)
                ]
            ],
            dtype=torch.float32,
        )
        crop = torch.from_numpy(np.stack(nets))[None]
        mask_crop = torch.from_numpy(np.pad(mask, pad)[region].astype(np.float32))[None, None]
        size = tuple(int(edge) for edge in self.patch)
        interpolate = torch.nn.functional.interpolate
        with torch.no_grad():
            patch = interpolate(crop, size=size, mode="trilinear", align_corners=False)
            patch_mask = (interpolate(mask_crop, size=size, mode="trilinear", align_corners=False) >= 0.5).float()
            inpainted = self.run.method.inpaint(self.run.networks, patch, patch_mask, contrast)
            back = interpolate(inpainted, size=tuple(int(w) for w in window), mode="trilinear", align_corners=False)
        band = ndimage.binary_dilation(mask > 0, structure=np.ones((3, 3, 3), bool), iterations=self.band)
        band_crop = np.pad(band, pad)[region]
        painted = images.copy()
        for run_channel, (channel, preset) in enumerate(zip(self.channels, self.presets, strict=True)):
            physical = preset.from_network(back[0, run_channel], windows[run_channel])
            physical = physical.as_subclass(torch.Tensor).numpy()
            full = np.pad(painted[channel], pad)
            full[region][band_crop] = physical[band_crop]
            painted[channel] = full[unpadded]
        return painted, {"lesion_type": appearance.lesion_type}


def make_painter(config: EnrichConfig, appearance_model: AppearanceModel) -> ProceduralPainter | GanPainter:
    """The painter of ``config.method``."""
    if config.method == "lesion":
        return GanPainter(config, appearance_model)
    return ProceduralPainter(config, appearance_model)


def insert_lesions(
    case: CaseVolumes,
    config: EnrichConfig,
    shape_model: LesionShapeModel,
    painter: ProceduralPainter | GanPainter,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, list[dict[str, Any]]]:
    """The case's images with ``lesions_per_case`` new lesions, their joint mask, and what was drawn."""
    allowed_labels = None  # without a label map, anywhere in the body (deep enough)
    if case.labels is not None:
        allowed_labels = config.allowed_labels if config.allowed_labels is not None else shape_model.host_tissues()
    min_depth = config.min_depth_mm
    if min_depth is None:
        min_depth = DEPTH_FRACTION * shape_model.depth_mm.low
    region = allowed_region(
        case.body(config),
        case.spacing,
        min_depth_mm=min_depth,
        tissue_labels=case.labels,
        allowed_labels=allowed_labels,
    )
    images = case.images
    joint = np.zeros(images.shape[1:], dtype=np.uint8)
    drawn = []
    for number in range(config.lesions_per_case):
        free = region & ~ndimage.binary_dilation(joint > 0, iterations=3)
        mask = sample_lesion_mask(shape_model, free, case.spacing, rng, volume_range_ml=config.volume_range_ml)
        images, painted = painter.paint(images, mask, case.spacing, rng)
        joint |= mask
        (features,) = lesion_features(mask, case.spacing)[:1]
        drawn.append(
            {
                "number": number,
                "volume_ml": round(features.volume_ml, 4),
                "elongation": round(features.elongation, 3),
                "centroid_voxel": [int(v) for v in np.argwhere(mask).mean(axis=0).round()],
                "lesion_type": painted["lesion_type"],
                "contrast": {
                    key: round(float(images[i][mask > 0].mean() - case.images[i][_shell(mask)].mean()), 3)
                    for i, key in enumerate(config.images)
                },
            }
        )
    return images, joint, drawn


def run_enrich(
    config: EnrichConfig,
    *,
    shard: str | tuple[int, int] | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> JobSummary:
    """Fit, insert and write this shard's synthetic cases (see the module docstring)."""
    for modality in config.images.values():
        get_preset(modality)  # an unknown preset is a ConfigError naming it
    shard_spec = parse_shard(shard)
    out_dir = config.out.absolute()
    out_dir.mkdir(parents=True, exist_ok=True)
    shape_model, appearance_model, report = fit_models(config)
    painter = make_painter(config, appearance_model)
    models_dir = out_dir / MODELS_DIR
    models_dir.mkdir(exist_ok=True)
    shape_path = shape_model.save(models_dir / SHAPE_MODEL_FILE)
    appearance_path = appearance_model.save(models_dir / APPEARANCE_MODEL_FILE)
    models_sha = hashlib.sha256(
        (sha256_file(shape_path) + sha256_file(appearance_path) + painter.fingerprint).encode()
    ).hexdigest()
    items = plan_enrich_items(config, out_dir)
    fingerprint = JobFingerprint(models_sha, config_sha256(config.model_copy(update={"out": Path(".")})))

    def enrich_one(item: JobItem) -> list[str]:
        entry = item.payload["entry"]
        case = CaseVolumes(entry, config)
        if case.lesion_mask is not None and case.lesion_mask.any():
            raise InputError(
                f"case {item.payload['subject']} is labelled healthy ({config.label_key} = {config.healthy_label}) "
                "but its lesion mask marks a lesion",
                path=entry[config.lesion_mask_key],
                fix="fix its label or its mask in the datalist",
            )
        rng = np.random.default_rng(item.payload["seed"])
        images, mask, drawn = insert_lesions(case, config, shape_model, painter, rng)
        sidecar = {
            "key": item.key,
            "source_subject": item.payload["subject"],
            "source_files": {key: str(entry[key]) for key in config.images},
            "index": item.payload["index"],
            "seed": item.payload["seed"],
            "job_seed": config.seed,
            "label": config.lesion_label,
            "method": config.method,
            "run": str(config.run) if config.run else None,
            "lesions": drawn,
            "models_sha256": models_sha,
            "medgan_version": __version__,
            "synthetic": True,
            "files": {},
        }
        with atomic_directory(item.output_path, overwrite=True) as staging:
            for channel, (key, modality) in enumerate(config.images.items()):
                if config.output_format == "nifti":
                    write_nifti(images[channel], staging / f"{key}.nii.gz", affine=case.affine)
                    sidecar["files"][key] = f"{key}.nii.gz"
                else:
                    write_dicom_series(
                        images[channel],
                        staging / key,
                        modality="CT" if modality == "ct" else "MR",
                        affine=case.affine,
                        series_description=f"medgan synthetic lesion {key}",
                        uid_seed=f"{models_sha}-{config.seed}-{item.key}-{key}",
                    )
                    sidecar["files"][key] = f"{key}/"
            write_nifti(mask, staging / "lesion_mask.nii.gz", affine=case.affine, dtype=np.uint8)
            sidecar["files"][config.lesion_mask_key] = "lesion_mask.nii.gz"
            (staging / CASE_SIDECAR).write_text(json.dumps(sidecar, indent=2) + "\n", encoding="utf-8")
        return []

    summary = run_job(
        items,
        out_dir,
        enrich_one,
        fingerprint=fingerprint,
        shard=shard_spec,
        overwrite=overwrite,
        progress=progress,
        description="enrich",
    )
    report["sampled"] = sampled_sizes(out_dir)
    atomic_write_text(models_dir / FIT_REPORT_FILE, json.dumps(report, indent=2) + "\n")
    write_enriched_datalist(config, out_dir)
    return summary


def sampled_sizes(out_dir: Path) -> dict[str, float]:
    """Mean and spread of log(volume ml) of every lesion written so far (to set beside the fitted ones)."""
    volumes = [
        lesion["volume_ml"]
        for path in sorted(out_dir.glob(f"*/{CASE_SIDECAR}"))
        for lesion in json.loads(path.read_text(encoding="utf-8"))["lesions"]
    ]
    if not volumes:
        return {"lesions": 0}
    logs = np.log(np.asarray(volumes))
    return {"lesions": len(volumes), "log_volume_ml_mean": float(logs.mean()), "log_volume_ml_sd": float(logs.std())}


def _relative_paths(entry: dict[str, Any], base: Path, out_dir: Path, path_keys: set[str]) -> dict[str, Any]:
    moved = dict(entry)
    for key in path_keys & set(entry):
        if isinstance(entry[key], str):
            path = Path(entry[key])
            absolute = path if path.is_absolute() else base / path
            moved[key] = os.path.relpath(absolute, out_dir)
    return moved


def write_enriched_datalist(config: EnrichConfig, out_dir: Path) -> Path:
    """``OUT/datalist.json``: the source lists unchanged (paths relative to OUT) plus the finished synthetic cases."""
    content = read_datalist_json(config.datalist)
    base = config.datalist.absolute().parent
    path_keys = {
        *DEFAULT_PATH_KEYS,  # every image of the source entries, not only those enriched
        *config.images,
        config.lesion_mask_key,
        *([config.labels_key] if config.labels_key else []),
    }
    merged: dict[str, Any] = {key: value for key, value in content.items() if not isinstance(value, list)}
    for key, value in content.items():
        if isinstance(value, list):
            merged[key] = [_relative_paths(e, base, out_dir, path_keys) if isinstance(e, dict) else e for e in value]
    synthetic = []
    for key, record in sorted(merge_manifests(out_dir).items()):
        sidecar_path = out_dir / key / CASE_SIDECAR
        if record.status not in ("done", "skipped") or not sidecar_path.is_file():
            continue
        sidecar = json.loads(sidecar_path.read_text(encoding="utf-8"))
        files = {name: f"{key}/{path}".rstrip("/") for name, path in sidecar["files"].items()}
        synthetic.append(
            {
                "subject": key,
                **files,
                config.label_key: sidecar["label"],
                "synthetic": True,
                "source_subject": sidecar["source_subject"],
                **_case_lesion_type(sidecar, config),
            }
        )
    merged.setdefault(config.split, [])
    merged[config.split] = [*merged[config.split], *synthetic]
    merged[f"num_{config.split}"] = len(merged[config.split])
    merged["description"] = (
        f"{content.get('description', '')} + {len(synthetic)} synthetic lesion cases (medgan enrich)".strip(" +")
    )
    return atomic_write_text(out_dir / "datalist.json", json.dumps(merged, indent=2) + "\n")


def _case_lesion_type(sidecar: dict[str, Any], config: EnrichConfig) -> dict[str, str]:
    """``{lesion_type_key: type}`` when every lesion of the case has that one type (the downstream study's class)."""
    types = {lesion.get("lesion_type") for lesion in sidecar.get("lesions", [])}
    if not config.lesion_type_key or len(types) != 1 or None in types:
        return {}
    return {config.lesion_type_key: str(types.pop())}


def count_line(summary: JobSummary) -> str:
    """One line for the CLI: how many cases were written, skipped, failed."""
    return (
        f"enrich: {summary.n_done} written, {summary.n_skipped} already there, {summary.n_failed} failed "
        f"(manifest: {summary.manifest_path}; datalist: {summary.manifest_path.parent / 'datalist.json'})"
    )
