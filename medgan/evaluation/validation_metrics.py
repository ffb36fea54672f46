"""Validation metrics for image outputs, registered by name (see :mod:`medgan.evaluation.metric_registry`).

They score a ``prediction`` against a ``target`` volume, both ``(1, C, *spatial)``
in network range [-1, 1] (data range 2), cheaply enough to run during training:

* ``mae_net``: mean absolute error inside ``body_mask``, network units;
* ``mae_physical``: the same in the target preset's physical units (HU for CT);
  NaN for a target without a fixed window (MRI);
* ``ssim`` / ``psnr``: MONAI's ``SSIMMetric`` / ``PSNRMetric`` over the whole volume.

The per-call values are used, not ``aggregate()``: ``aggregate()`` all-gathers
across ranks, and validation runs on rank 0 alone.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

import torch
from monai.metrics import PSNRMetric, SSIMMetric

from medgan.data.presets import get_preset
from medgan.evaluation.metric_registry import register_metric
from medgan.losses import masked_l1

if TYPE_CHECKING:
    from medgan.config.schema import ExperimentConfig

NETWORK_RANGE = 2.0  # [-1, 1]


@register_metric("mae_net", needs=("prediction", "target", "body_mask"))
def mae_net(outputs: Mapping[str, torch.Tensor], config: ExperimentConfig) -> float:
    """Mean |prediction - target| inside the body, network units."""
    return float(masked_l1(outputs["prediction"].float(), outputs["target"].float(), outputs["body_mask"]))


@register_metric("mae_physical", needs=("prediction", "target", "body_mask"))
def mae_physical(outputs: Mapping[str, torch.Tensor], config: ExperimentConfig) -> float:
    """Mean |prediction - target| inside the body in the target's units (HU); NaN without a fixed window."""
    preset = get_preset(config.data.target_modality)
    if preset.fixed_window is None:
        return math.nan
    prediction = preset.from_network(outputs["prediction"].float())
    target = preset.from_network(outputs["target"].float())
    return float(masked_l1(prediction, target, outputs["body_mask"]))


@register_metric("ssim", needs=("prediction", "target"))
def ssim(outputs: Mapping[str, torch.Tensor], config: ExperimentConfig) -> float:
    """MONAI 3D SSIM over the volume (data range 2)."""
    metric = SSIMMetric(spatial_dims=3, data_range=NETWORK_RANGE)
    return float(metric(outputs["prediction"].float(), outputs["target"].float()).mean())


@register_metric("psnr", needs=("prediction", "target"))
def psnr(outputs: Mapping[str, torch.Tensor], config: ExperimentConfig) -> float:
    """MONAI PSNR over the volume (peak 2)."""
    metric = PSNRMetric(max_val=NETWORK_RANGE)
    return float(metric(outputs["prediction"].float(), outputs["target"].float()).mean())
