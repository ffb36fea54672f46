"""Periodic validation and sample montages during training.

Validation translates a few whole validation volumes with sliding-window
inference (the way the translate job will) and reports, against the real target:
MAE inside the body in the target's physical units where its preset has a fixed
window (HU for CT), MAE in network units, and SSIM / PSNR on the network range
(MONAI metrics, data range 2). Kept cheap: ``data.validation_volumes`` volumes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from monai.metrics import PSNRMetric, SSIMMetric
from torch import nn

from medgan.config.schema import ExperimentConfig
from medgan.data.presets import get_preset
from medgan.inference.sliding_window import SlidingWindowSettings
from medgan.inference.sliding_window import translate_volume as sliding_window_translate
from medgan.losses import masked_l1
from medgan.methods.base import GanMethod
from medgan.training.data import ValidationVolume
from medgan.training.precision import autocast

NETWORK_RANGE = 2.0  # [-1, 1]


def translate_volume(
    method: GanMethod,
    networks: Mapping[str, nn.Module],
    source: torch.Tensor,
    config: ExperimentConfig,
    precision: str,
) -> torch.Tensor:
    """Sliding-window translation of one ``(1, 1, D, H, W)`` volume, exactly as the translate job does it."""

    def predictor(windows: torch.Tensor) -> torch.Tensor:
        with autocast(precision, windows.device):
            return method.translate(networks, windows).float()

    settings = SlidingWindowSettings.from_config(config.inference)
    return sliding_window_translate(source, predictor, settings, device=source.device)


def validate(
    method: GanMethod,
    networks: Mapping[str, nn.Module],
    volumes: Sequence[ValidationVolume],
    config: ExperimentConfig,
    device: torch.device,
    precision: str,
) -> tuple[dict[str, float], dict[str, torch.Tensor]]:
    """Validation metrics (keys ``val/...``) and the first volume's rows for a montage."""
    for module in networks.values():
        module.eval()
    target_preset = get_preset(config.data.target_modality)
    ssim_metric = SSIMMetric(spatial_dims=3, data_range=NETWORK_RANGE)
    psnr_metric = PSNRMetric(max_val=NETWORK_RANGE)
    mae_net, mae_units, ssim, psnr = [], [], [], []
    montage_rows: dict[str, torch.Tensor] = {}
    for volume in volumes:
        source, target = volume.source.to(device), volume.target.to(device)
        mask = volume.body_mask.to(device)
        prediction = translate_volume(method, networks, source, config, precision)
        mae_net.append(float(masked_l1(prediction, target, mask)))
        if target_preset.fixed_window is not None:
            prediction_units = target_preset.from_network(prediction)
            target_units = target_preset.from_network(target)
            mae_units.append(float(masked_l1(prediction_units, target_units, mask)))
        # The per-call values, not aggregate(): aggregate() all-gathers across ranks, and
        # validation runs on rank 0 alone.
        ssim.append(float(ssim_metric(prediction, target).mean()))
        psnr.append(float(psnr_metric(prediction, target).mean()))
        if not montage_rows:
            montage_rows = {"source": source[0, 0], "prediction": prediction[0, 0], "target": target[0, 0]}
    metrics = {
        "val/mae_net": sum(mae_net) / len(mae_net),
        "val/ssim": sum(ssim) / len(ssim),
        "val/psnr": sum(psnr) / len(psnr),
    }
    if mae_units:
        metrics[f"val/mae_{target_preset.name}"] = sum(mae_units) / len(mae_units)
    return metrics, montage_rows


def write_montage(rows: Mapping[str, torch.Tensor], config: ExperimentConfig, path: Path, step: int) -> Path:
    """A montage PNG of source / prediction / target / |error| (target rows in physical units where fixed)."""
    from medgan.evaluation.montage import save_montage

    data = config.data
    target_preset = get_preset(data.target_modality)
    windows: dict[str, tuple[float, float]] = {"|error| (net)": (0.0, 1.0)}
    if target_preset.fixed_window is not None:
        unit_rows = {name: target_preset.from_network(rows[name].float()) for name in ("prediction", "target")}
        window = (target_preset.fixed_window.low, target_preset.fixed_window.high)
        windows |= {f"{data.target_key} pred": window, f"{data.target_key} real": window}
    else:
        unit_rows = {name: rows[name].float() for name in ("prediction", "target")}
        windows |= {f"{data.target_key} pred": (-1.0, 1.0), f"{data.target_key} real": (-1.0, 1.0)}
    montage = {
        f"{data.source_key}": rows["source"].float().cpu(),
        f"{data.target_key} pred": unit_rows["prediction"].cpu(),
        f"{data.target_key} real": unit_rows["target"].cpu(),
        "|error| (net)": (rows["prediction"].float() - rows["target"].float()).abs().cpu(),
    }
    return save_montage(montage, path, windows=windows, title=f"{config.method} step {step}")
