"""The reconstruct job (``medgan reconstruct``): undersample fully sampled scans and reconstruct them.

For every image input (NIfTI file or DICOM series folder, or a datalist's image key), on the
input's own grid: the magnitude is mapped to [0, 1] with the run's intensity preset (MRI: the
volume's percentile window), its 3D k-space is undersampled with a fastMRI line mask along
the last axis (``--acceleration``, ``--mask``, ``--center-fraction``; the mask of item i comes
from (``--seed``, i)), and the run reconstructs it. Written per input, ``OUT/<name>/``:
``zero_filled.nii.gz`` and ``reconstruction.nii.gz`` (back in the input's intensity units,
with its affine) and ``recon.json``: the mask's achieved acceleration and seed, and, with the
input as the fully sampled reference, fastMRI's per-volume NMSE / PSNR / SSIM of both images
and the hallucination report (:mod:`medgan.evaluation.recon_metrics`).

fastMRI HDF5 k-space holds 2D k-space per slice; the ``recon`` runs built so far are 3D, so
HDF5 inputs are refused (named in the manifest) until a slice-wise run exists.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from medgan import __version__
from medgan.data.kspace import check_sampling, ifft_centered, line_mask, sampled_fraction, simulate_kspace
from medgan.data.presets import get_preset
from medgan.devices import resolve_device
from medgan.errors import ConfigError, InputError
from medgan.evaluation.recon_metrics import hallucination_report, volume_metrics
from medgan.io import atomic_directory, read_volume, write_nifti
from medgan.jobs import JobFingerprint, JobItem, JobSummary, parse_shard, run_job, unique_output_names
from medgan.methods.capabilities import require_capability
from medgan.methods.image_pool import derive_seed
from medgan.models import input_requirement
from medgan.training import load_trained_run

SIDECAR = "recon.json"


def _pad_to(volume: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, ...]]:
    shape = volume.shape[-3:]
    padded = [int(np.ceil(edge / multiple) * multiple) for edge in shape]
    pads: list[int] = []
    for edge, target in zip(reversed(shape), reversed(padded), strict=True):
        pads += [0, target - edge]
    return torch.nn.functional.pad(volume, pads), tuple(shape)


def run_reconstruct(
    run_dir: str | Path,
    inputs: Sequence[str | Path],
    out_dir: str | Path,
    *,
    acceleration: float | None = None,
    mask_kind: str | None = None,
    center_fraction: float | None = None,
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
    check_sampling(acceleration, center_fraction)
    (image_key, modality), _ = run.method.profiled_images()
    preset = get_preset(modality)
    multiple = input_requirement(options.generator).multiple
    out_dir = Path(out_dir).absolute()
    paths = sorted({Path(path).absolute() for path in inputs})
    if not paths:
        raise ConfigError("no inputs to reconstruct", fix="pass NIfTI files or DICOM series folders")
    names = unique_output_names(paths)
    items = [
        JobItem(str(path), path, out_dir / names[path], {"index": index, "seed": derive_seed(seed, index)})
        for index, path in enumerate(paths)
    ]
    settings = json.dumps([acceleration, center_fraction, mask_kind, seed], separators=(",", ":"))
    fingerprint = JobFingerprint(run.checkpoint_sha256, f"{run.config_sha256}:{settings}")

    def reconstruct_one(item: JobItem) -> None:
        assert item.input_path is not None
        if item.input_path.suffix in (".h5", ".hdf5"):
            raise InputError(
                "fastMRI HDF5 k-space is 2D per slice; this run reconstructs 3D volumes",
                path=item.input_path,
                fix="give the fully sampled image (NIfTI / DICOM) instead, or a slice-wise run when one exists",
            )
        volume = read_volume(item.input_path)
        affine = np.asarray(volume.affine, dtype=np.float64)
        physical = volume[0].as_subclass(torch.Tensor).float()
        window = preset.fixed_window or preset.window_of_volume(physical)
        magnitude = ((preset.to_network(physical, window).as_subclass(torch.Tensor) + 1.0) / 2.0).clamp(0.0, 1.0)
        padded, shape = _pad_to(magnitude[None, None], multiple)
        mask_seed = item.payload["seed"] % (2**31 - 1)
        lines = line_mask(padded.shape[-1], acceleration, center_fraction, kind=mask_kind, seed=mask_seed)
        mask = lines[None, None, None, None, :].to(run.device)
        kspace = simulate_kspace(padded, spatial_dims=3).to(run.device) * mask
        with torch.no_grad():
            recon = run.method.reconstruct(run.networks, kspace, mask).float().cpu()
        zero_filled = ifft_centered(kspace.cpu(), spatial_dims=3).abs()
        crop = (0, 0, *[slice(0, edge) for edge in shape])
        outputs = {"zero_filled": zero_filled[crop], "reconstruction": recon[crop]}
        reference = magnitude.numpy()
        report = {
            "input": str(item.input_path),
            "index": item.payload["index"],
            "mask_seed": mask_seed,
            "mask": mask_kind,
            "acceleration_requested": acceleration,
            "acceleration_achieved": 1.0 / sampled_fraction(lines),
            "center_fraction": center_fraction,
            "run_dir": str(Path(run_dir).resolve()),
            "checkpoint_sha256": run.checkpoint_sha256,
            "medgan_version": __version__,
            "reference": "the input (fully sampled), on the [0, 1] magnitude scale",
            "metrics": {},
        }
        with atomic_directory(item.output_path, overwrite=True) as staging:
            for name, image in outputs.items():
                array = image.numpy()
                report["metrics"][name] = volume_metrics(reference, array)
                back = preset.from_network(torch.from_numpy(array * 2.0 - 1.0), window).numpy()
                write_nifti(back.astype(np.float32), staging / f"{name}.nii.gz", affine=affine)
            lines_mask = np.broadcast_to(lines.numpy(), reference.shape)
            report["hallucination"] = {
                name: hallucination_report(reference, outputs[name].numpy(), lines_mask, spatial_dims=3)
                for name in outputs
            }
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


def count_line(summary: JobSummary) -> str:
    """One line for the CLI: how many inputs were reconstructed, skipped, failed."""
    return (
        f"reconstruct: {summary.n_done} written, {summary.n_skipped} already there, {summary.n_failed} failed "
        f"(manifest: {summary.manifest_path})"
    )
