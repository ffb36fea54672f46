"""The reconstruct job (``medgan reconstruct``): undersample fully sampled scans and reconstruct them.

For every image input (NIfTI file or DICOM series folder, or a datalist's image key), on the
input's own grid: the magnitude is mapped to [0, 1] with the run's intensity preset (MRI: the
volume's percentile window), its k-space (3D for an ``unrolled3d`` run, 2D per slice of the
first axis for ``unrolled2d``) is undersampled with a fastMRI line mask along the last axis
(``--acceleration``, ``--mask``, ``--center-fraction``; the mask of item i comes from
(``--seed``, i)), and the run reconstructs it. Written per input, ``OUT/<name>/``:
``zero_filled.nii.gz`` and ``reconstruction.nii.gz`` (back in the input's intensity units,
with its affine), ``error_map.png`` (reference, outputs and their errors with the invented
regions outlined) and ``recon.json``: the mask's achieved acceleration and seed, and, with the
input as the fully sampled reference, fastMRI's per-volume NMSE / PSNR / SSIM of both images
and the hallucination report (:mod:`medgan.evaluation.recon_metrics`).

fastMRI-style HDF5 k-space (``.h5``, single coil, ``(slices, H, W)``) is reconstructed directly
by a slice-wise (``unrolled2d``) run: undersampled here when fully sampled (the reference is
then its own full reconstruction), used as measured when the file carries a ``mask``; scored
against ``reconstruction_esc`` on its centre crop when present. Outputs are
``zero_filled.h5`` / ``reconstruction.h5`` (dataset ``reconstruction``, the file's units,
fastMRI's submission layout). A 3D run refuses HDF5 inputs, naming the file and the fix.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from medgan import __version__
from medgan.data.kspace import check_sampling, ifft_centered, sampled_fraction
from medgan.data.presets import get_preset
from medgan.devices import resolve_device
from medgan.errors import ConfigError, InputError
from medgan.evaluation.recon_metrics import hallucination_report, invented_mask, volume_metrics
from medgan.io import atomic_directory
from medgan.jobs import JobFingerprint, JobItem, JobSummary, parse_shard, run_job, unique_output_names
from medgan.methods.capabilities import require_capability
from medgan.methods.image_pool import derive_seed
from medgan.training import load_trained_run
from medgan.viz.montage import save_montage
from pipelines.reconstruct_inputs import (
    MaskSettings,
    Measured,
    centre_crop,
    is_kspace_file,
    measure_image,
    measure_kspace_file,
)

SIDECAR = "recon.json"
ERROR_MAP = "error_map.png"
ERROR_WINDOW = (0.0, 0.25)


def save_error_map(reference: np.ndarray, outputs: dict[str, np.ndarray], path: Path, *, title: str) -> Path:
    """Reference, each output and its |error| (on the [0, 1] scale), invented regions outlined in red."""
    rows: dict[str, np.ndarray] = {"reference": reference}
    windows = {"reference": (0.0, 1.0)}
    overlays: dict[str, np.ndarray] = {}
    for name, image in outputs.items():
        rows[name] = image
        rows[f"|{name} error|"] = np.abs(image - reference)
        windows |= {name: (0.0, 1.0), f"|{name} error|": ERROR_WINDOW}
        overlays[f"|{name} error|"] = invented_mask(reference, image)
    cmaps = {name: "magma" for name in rows if name.startswith("|")}
    return save_montage(rows, path, windows=windows, overlays=overlays, cmaps=cmaps, title=title)


def run_reconstruct(
    run_dir: str | Path,
    inputs: Sequence[str | Path],
    out_dir: str | Path,
    *,
    acceleration: float | None = None,
    mask_kind: str | None = None,
    center_fraction: float | None = None,
    phase_amplitude: float | None = None,
    seed: int = 0,
    shard: str | tuple[int, int] | None = None,
    overwrite: bool = False,
    progress: bool = True,
    device: str = "auto",
) -> JobSummary:
    """Undersample and reconstruct every input with the run in ``run_dir`` (see the module docstring)."""
    shard_spec = parse_shard(shard)
    run = load_trained_run(run_dir, device=resolve_device(device))
    require_capability(run.method, "reconstruct", job="reconstruct")
    options = run.method.options
    acceleration = float(options.acceleration if acceleration is None else acceleration)
    center_fraction = float(options.center_fraction if center_fraction is None else center_fraction)
    mask_kind = mask_kind or options.mask
    phase_amplitude = float(options.phase_amplitude if phase_amplitude is None else phase_amplitude)
    if phase_amplitude < 0:
        raise ConfigError(f"phase amplitude must be >= 0 radians, got {phase_amplitude}", fix="e.g. 0.5, or 0")
    check_sampling(acceleration, center_fraction)
    (image_key, modality), _ = run.method.profiled_images()
    preset = get_preset(modality)
    dims = run.method.kspace_dims
    out_dir = Path(out_dir).absolute()
    paths = sorted({Path(path).absolute() for path in inputs})
    if not paths:
        raise ConfigError("no inputs to reconstruct", fix="pass NIfTI files or DICOM series folders")
    names = unique_output_names(paths)
    items = [
        JobItem(str(path), path, out_dir / names[path], {"index": index, "seed": derive_seed(seed, index)})
        for index, path in enumerate(paths)
    ]
    settings = json.dumps([acceleration, center_fraction, mask_kind, seed, phase_amplitude], separators=(",", ":"))
    fingerprint = JobFingerprint(run.checkpoint_sha256, f"{run.config_sha256}:{settings}")

    def measure(item: JobItem) -> Measured:
        assert item.input_path is not None
        mask_seed = item.payload["seed"] % (2**31 - 1)
        settings = MaskSettings(acceleration, center_fraction, mask_kind, mask_seed, phase_amplitude)
        if not is_kspace_file(item.input_path):
            return measure_image(item.input_path, preset, settings, dims)
        if dims != 2:
            raise InputError(
                "fastMRI HDF5 k-space is 2D per slice; this run reconstructs 3D k-space",
                path=item.input_path,
                fix="train a slice-wise run (--set model.generator.name=unrolled2d), or give the image (NIfTI / DICOM)",
            )
        return measure_kspace_file(item.input_path, settings)

    def reconstruct_one(item: JobItem) -> None:
        measured = measure(item)
        kspace = measured.kspace.to(run.device)
        with torch.no_grad():
            recon = run.method.reconstruct(run.networks, kspace, measured.lines.to(run.device)).float().cpu()
        zero_filled = ifft_centered(measured.kspace, spatial_dims=dims).abs()
        outputs = {"zero_filled": zero_filled[0, 0].numpy(), "reconstruction": recon[0, 0].numpy()}
        report = {
            "input": str(item.input_path),
            "index": item.payload["index"],
            "mask_seed": item.payload["seed"] % (2**31 - 1),
            "mask": mask_kind,
            "acceleration_requested": acceleration,
            "acceleration_achieved": 1.0 / sampled_fraction(measured.lines),
            "center_fraction": center_fraction,
            "kspace_dims": dims,
            "run_dir": str(Path(run_dir).resolve()),
            "checkpoint_sha256": run.checkpoint_sha256,
            "medgan_version": __version__,
            **measured.notes,
            "reference": _reference_line(measured),
            "metrics": {},
        }
        with atomic_directory(item.output_path, overwrite=True) as staging:
            for name, image in outputs.items():
                measured.write(staging, name, image)
                if measured.target is not None:
                    cropped = centre_crop(image, measured.target.shape[-2:])
                    target = centre_crop(measured.target, cropped.shape[-2:])
                    report["metrics"][name] = volume_metrics(target, cropped)
                elif measured.reference is not None:
                    report["metrics"][name] = volume_metrics(measured.reference, image)
            if measured.reference is not None:
                lines = np.broadcast_to(measured.lines.numpy(), measured.reference.shape)
                report["hallucination"] = {
                    name: hallucination_report(measured.reference, image, lines, spatial_dims=dims)
                    for name, image in outputs.items()
                }
                save_error_map(measured.reference, outputs, staging / ERROR_MAP, title=item.output_path.name)
            (staging / SIDECAR).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")

    return run_job(
        items,
        out_dir,
        reconstruct_one,
        fingerprint=fingerprint,
        shard=shard_spec,
        overwrite=overwrite,
        progress=progress,
        description="reconstruct",
    )


def _reference_line(measured: Measured) -> str | None:
    if measured.target is not None:
        return "the file's reconstruction_esc (centre crop), on the [0, 1] magnitude scale"
    if measured.reference is not None:
        return "the input (fully sampled), on the [0, 1] magnitude scale"
    return None


def count_line(summary: JobSummary) -> str:
    """One line for the CLI: how many inputs were reconstructed, skipped, failed."""
    return (
        f"reconstruct: {summary.n_done} written, {summary.n_skipped} already there, {summary.n_failed} failed "
        f"(manifest: {summary.manifest_path})"
    )
