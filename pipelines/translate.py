"""The translate job: MRI (or any source) volumes -> synthetic target volumes with a trained run.

``medgan translate --run RUN_DIR INPUT... --out DIR`` calls :func:`run_translate`.
Inputs are NIfTI files, DICOM series folders, or datalist JSON files (their
source-key entries). Each input is preprocessed like training, translated window
by window, mapped back to the input's exact grid and to physical units (HU), and
written as NIfTI or as a de-identified DICOM series. The job is resumable and
shardable (:mod:`medgan.jobs`): see ``OUT/manifest*.jsonl``.

Each input is resampled to the spacing the run was trained at and back
(``TrainedRun.trained_spacing``), and checked first by the input guard
(:mod:`medgan.inference.input_guard`): an input of the wrong modality or a blank
one fails its item with a message naming the file; doubtful ones (small field of
view, far-off spacing) are translated with warnings in the manifest.
``--set inference.KEY=VALUE`` changes how windows run (see ``InferenceConfig``);
nothing else of the run's config may change.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path

import torch
import yaml

from medgan.config.loader import apply_overrides, config_sha256, resolve_output_path, validate_config
from medgan.config.schema import ExperimentConfig
from medgan.data.datalist import SPLITS, load_datalist, read_datalist_json
from medgan.data.presets import get_preset
from medgan.data.profile import DataProfile
from medgan.devices import resolve_device
from medgan.errors import ConfigError, OutputPathError
from medgan.inference import InferencePlan, SlidingWindowSettings, Translator, VolumeTranslator
from medgan.inference.input_guard import InputGuard
from medgan.io import ReadOptions, atomic_write_text, write_dicom_series, write_nifti
from medgan.jobs import ItemResult, JobFingerprint, JobItem, JobSummary, parse_shard, run_job, unique_output_names
from medgan.training import load_trained_run
from medgan.training.trained_run import trained_spacing_of

LOG = logging.getLogger(__name__)

OUTPUT_FORMATS = ("nifti", "dicom")


def expand_inputs(inputs: Sequence[str | Path], *, source_key: str, split: str | None = None) -> list[Path]:
    """Image paths to translate: files and folders as given, datalist JSONs expanded to their entries.

    From a datalist the ``source_key`` path of every entry is taken, over all of
    its entry lists (``training``, ``validation``, ``test`` and any other) or only
    ``split``. Paths are made absolute and de-duplicated; missing ones are kept so
    the job reports each as a failed item instead of stopping.
    """
    paths: list[Path] = []
    for raw in inputs:
        path = Path(raw).expanduser()
        if path.suffix.lower() == ".json" and path.is_file():
            content = read_datalist_json(path)
            splits = [split] if split is not None else _entry_lists(content)
            for name in splits:
                entries = load_datalist(path, name, check_files=False)
                with_source = [Path(entry[source_key]) for entry in entries if entry.get(source_key) is not None]
                if len(with_source) < len(entries):
                    LOG.warning(
                        "%s: %d of %d %r entries have no %r image and are left out",
                        path,
                        len(entries) - len(with_source),
                        len(entries),
                        name,
                        source_key,
                    )
                paths.extend(with_source)
        else:
            paths.append(path)
    return sorted({path.absolute() for path in paths})


def _entry_lists(content: dict) -> list[str]:
    """Names of a datalist's entry lists (lists of objects): the standard splits first, then any others."""
    names = [
        name
        for name, value in content.items()
        if isinstance(value, list) and all(isinstance(entry, dict) for entry in value)
    ]
    return sorted(names, key=lambda name: (SPLITS.index(name) if name in SPLITS else len(SPLITS), name))


def plan_translate_items(
    input_paths: Sequence[Path],
    out_dir: Path,
    *,
    output_format: str,
    target_modality: str,
    naming_paths: Sequence[Path] = (),
) -> list[JobItem]:
    """One job item per input: its key, and an output name derived from the input path only.

    NIfTI outputs are ``OUT/<name>_synth_<target>.nii.gz``, DICOM outputs folders
    ``OUT/<name>_synth_<target>/``; ``<name>`` is unique over the inputs plus
    ``naming_paths`` (see :func:`medgan.jobs.unique_output_names`), so every shard
    plans the same names, and one split of a datalist gets the names the whole
    datalist would.
    """
    input_paths = sorted({Path(path).absolute() for path in input_paths})
    names = unique_output_names([*input_paths, *naming_paths])
    suffix = ".nii.gz" if output_format == "nifti" else ""
    return [
        JobItem(
            key=str(path),
            input_path=path,
            output_path=resolve_output_path(out_dir, f"{names[path]}_synth_{target_modality.lower()}{suffix}"),
        )
        for path in input_paths
    ]


def _dicom_modality(output_format: str, target_modality: str) -> str | None:
    """Check ``output_format``; the DICOM Modality code DICOM outputs are written with (None for NIfTI)."""
    if output_format not in OUTPUT_FORMATS:
        raise ConfigError(f"unknown output format {output_format!r}", fix=f"use one of: {', '.join(OUTPUT_FORMATS)}")
    return get_preset(target_modality).dicom_modality if output_format == "dicom" else None


OVERRIDABLE_SECTION = "inference"


def check_inference_overrides(overrides: Sequence[str]) -> None:
    """Refuse any ``--set`` override that is not an ``inference.KEY=VALUE`` (ConfigError naming it).

    The run's data, model and training settings made its weights: changing them at
    translate time would silently translate differently from what was trained
    (e.g. another spacing or intensity preset), so only the inference section, which
    says how windows run, may change.
    """
    for override in overrides:
        changed = apply_overrides({}, [override])  # the loader's own parsing of KEY=VALUE
        section, value = next(iter(changed.items()))
        if section != OVERRIDABLE_SECTION or not isinstance(value, dict):
            key = override.split("=", 1)[0].strip()
            raise ConfigError(
                f"--set {override!r}: translate may only change inference.* keys, not {key!r}",
                fix="set inference.roi_size / overlap / sw_batch_size / context / precision / channels_last / "
                "air_outside_body / mode; the run's other settings made its weights (retrain to change them)",
            )


def with_inference_overrides(config: ExperimentConfig, overrides: Sequence[str]) -> ExperimentConfig:
    """``config`` with the ``inference.*`` overrides applied, validated as ``medgan train --set`` would be.

    A bad key or value is a ConfigError naming it (and, e.g., a window the generator
    cannot take). Returns ``config`` itself when there are no overrides.
    """
    if not overrides:
        return config
    check_inference_overrides(overrides)
    raw = apply_overrides(json.loads(config.model_dump_json()), overrides)
    return validate_config(raw, ExperimentConfig)


def translate_inputs(
    translator: Translator,
    config: ExperimentConfig,
    inputs: Sequence[str | Path],
    out_dir: str | Path,
    *,
    fingerprint: JobFingerprint,
    output_format: str = "nifti",
    shard: str | tuple[int, int] | None = None,
    overwrite: bool = False,
    progress: bool = True,
    split: str | None = None,
    sw_device: str | torch.device = "cpu",
    window: SlidingWindowSettings | None = None,
    profile: DataProfile | None = None,
    nan_fill: float | None = None,
) -> JobSummary:
    """Run the translate job with any ``translator`` callable (what :func:`run_translate` does with a run).

    ``config`` supplies the preprocessing (``data``) and windowing (``inference``);
    ``profile`` is the run's training data profile: inputs are resampled to the
    trained spacing (:func:`medgan.training.trained_run.trained_spacing_of`) and
    checked by the input guard against it (modality checks only without one).
    ``nan_fill``: NaN / Inf voxels become this value (the item's manifest entry says
    how many) instead of failing the item.
    ``fingerprint`` says which weights and config made the outputs, so re-runs can
    skip finished items. Returns the job summary; ``summary.exit_code`` is 1 when
    any item failed (a refused input fails its item).
    """
    target_modality = config.data.target_modality
    dicom_modality = _dicom_modality(output_format, target_modality)
    shard_spec = parse_shard(shard)
    out_dir = Path(out_dir).absolute()
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputPathError("output path exists and is not a folder", path=out_dir, fix="pass a folder for --out")
    input_paths = expand_inputs(inputs, source_key=config.data.source_key, split=split)
    if not input_paths:
        raise ConfigError("no inputs to translate", fix="pass NIfTI files, DICOM folders or a datalist JSON")
    items = plan_translate_items(
        input_paths,
        out_dir,
        output_format=output_format,
        target_modality=target_modality,
        naming_paths=expand_inputs(inputs, source_key=config.data.source_key),  # every datalist split
    )
    trained_spacing = trained_spacing_of(config, profile)
    guard = InputGuard(profile, config.data.source_modality, trained_spacing)
    volume_translator = VolumeTranslator.from_config(
        translator,
        config,
        sw_device=sw_device,
        window=window,
        target_spacing=trained_spacing,
        source_check=guard,
        read_options=None if nan_fill is None else ReadOptions(nan_policy="replace", nan_fill=nan_fill),
    )

    output_dtype = get_preset(target_modality).nifti_dtype  # CT: int16 HU

    def translate_one(item: JobItem) -> ItemResult:
        volume = volume_translator(item.input_path)
        if output_format == "nifti":
            write_nifti(volume, item.output_path, dtype=output_dtype)
        else:
            reference = volume.meta if volume.meta.get("source_format") == "dicom" else None
            write_dicom_series(volume, item.output_path, modality=dicom_modality, reference=reference, overwrite=True)
        note = guard.resampling_note()
        return ItemResult(warnings=tuple(volume_translator.last_warnings), notes=(note,) if note else ())

    return run_job(
        items,
        out_dir,
        translate_one,
        fingerprint=fingerprint,
        shard=shard_spec,
        overwrite=overwrite,
        progress=progress,
        description="translate",
    )


JOB_SETTINGS_FILE = "translate_job.yaml"


def _with_nan_fill(config_sha256_hex: str, nan_fill: float | None) -> str:
    """The job's config hash: the effective config's, folded with ``nan_fill`` when one is set.

    Without a fill the hash is the config's own, so outputs of earlier jobs still count as done.
    """
    if nan_fill is None:
        return config_sha256_hex
    return hashlib.sha256(f"{config_sha256_hex}|nan_fill={float(nan_fill)!r}".encode()).hexdigest()


def _save_job_settings(out_dir: Path, settings: dict) -> Path:
    """Record what produced the outputs (run, checkpoint, resolved config, options) beside them.

    Every shard writes the same content (no shard-specific values), atomically, so
    concurrent shards cannot leave a torn file.
    """
    return atomic_write_text(out_dir / JOB_SETTINGS_FILE, yaml.safe_dump(settings, sort_keys=False))


def run_translate(
    run_dir: str | Path,
    inputs: Sequence[str | Path],
    out_dir: str | Path,
    *,
    output_format: str = "nifti",
    shard: str | tuple[int, int] | None = None,
    overwrite: bool = False,
    device: str = "auto",
    progress: bool = True,
    split: str | None = None,
    overrides: Sequence[str] = (),
    nan_fill: float | None = None,
) -> JobSummary:
    """Translate ``inputs`` with the trained run in ``run_dir``; outputs and manifest go to ``out_dir``.

    ``shard`` ("i/n") and torchrun's RANK / WORLD_SIZE split the sorted inputs so
    several processes or machines share one job; ``overwrite`` redoes finished
    items. Windows run on ``device`` ("auto": CUDA when present); the stitched
    volume stays in host memory. ``overrides`` are ``inference.KEY=VALUE`` strings
    applied to the run's config (anything else is a ConfigError). The fingerprint's
    config hash is that of the effective config (and of ``nan_fill`` when set), so
    outputs made with other inference settings are redone rather than skipped. See
    :func:`translate_inputs`.
    """
    parse_shard(shard)  # a bad --shard is reported before the run is loaded
    check_inference_overrides(overrides)  # and so is a foreign --set key
    torch_device = resolve_device(device)
    run = load_trained_run(run_dir, device=torch_device)
    config = with_inference_overrides(run.config, overrides)
    effective_sha256 = _with_nan_fill(config_sha256(config), nan_fill)
    inference_plan = InferencePlan.from_config(config.inference, torch_device, divisible_by=config.data.divisible_by)
    inference_plan.prepare(run.networks.values())  # weights in the windows' memory format, once
    LOG.info("inference: %s", inference_plan.describe())
    trained_spacing = trained_spacing_of(config, run.profile, warn=False)
    _save_job_settings(
        Path(out_dir),
        {
            "run_dir": str(Path(run_dir).resolve()),
            "checkpoint": str(run.checkpoint_path),
            "checkpoint_sha256": run.checkpoint_sha256,
            "config_sha256": effective_sha256,
            "run_config_sha256": run.config_sha256,
            "output_format": output_format,
            "split": split,
            "inference_overrides": list(overrides),
            "nan_fill": nan_fill,
            "inference_path": inference_plan.describe(),
            "trained_spacing": None if trained_spacing is None else [float(v) for v in trained_spacing],
            "data_profile": run.profile is not None,
            "run_config": json.loads(config.model_dump_json()),
        },
    )
    return translate_inputs(
        run.translate,
        config,
        inputs,
        out_dir,
        fingerprint=JobFingerprint(run.checkpoint_sha256, effective_sha256),
        output_format=output_format,
        shard=shard,
        overwrite=overwrite,
        progress=progress,
        split=split,
        sw_device=torch_device,
        profile=run.profile,
        nan_fill=nan_fill,
    )
