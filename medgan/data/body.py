"""The one rule for "which voxels are body": a label map when there is one, else a source threshold.

Why one place: the training loss mask, validation, the translate job's scoring
and the evaluation all need the same body, and four copies of the rule had
drifted (one hard-coded the datalist key ``labels``). A label map wins when every
entry of the set has one (a partly labelled set would mix two definitions);
otherwise the body is where the image is above a threshold in network range,
the config's ``data.body_threshold`` or, when that is null, the preset's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from medgan.data.presets import get_preset


def complete_label_key(labels_key: str | None, entries: Sequence[Mapping[str, Any]]) -> str | None:
    """``labels_key`` when every entry has a label map under it, else None (intensity masks)."""
    if labels_key and entries and all(entry.get(labels_key) for entry in entries):
        return labels_key
    return None


def body_threshold(modality: str, override: float | None = None) -> float:
    """The network-range intensity above which a ``modality`` voxel is body (``override`` wins)."""
    return float(override) if override is not None else get_preset(modality).body_threshold


def body_mask(
    image_net: torch.Tensor | np.ndarray,
    *,
    labels: torch.Tensor | np.ndarray | None = None,
    threshold: float | None = None,
) -> torch.Tensor:
    """Float {0, 1} body mask with the image's shape: ``labels > 0`` when given, else ``image > threshold``."""
    if labels is not None:
        return (_plain(labels) > 0).float()
    if threshold is None:
        raise ValueError("body_mask needs labels or a threshold")
    return (_plain(image_net) > threshold).float()


def _plain(array: torch.Tensor | np.ndarray) -> torch.Tensor:
    """A plain tensor (MONAI MetaTensors lose their metadata: a mask needs none)."""
    return torch.as_tensor(array).as_subclass(torch.Tensor)


def outline_threshold(modality: str, override: float | None = None) -> float:
    """The network-range intensity above which a ``modality`` voxel is inside the head outline (air mask)."""
    if override is not None:
        return float(override)
    preset = get_preset(modality)
    return preset.outline_threshold if preset.outline_threshold is not None else preset.body_threshold
