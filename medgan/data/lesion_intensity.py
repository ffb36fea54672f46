"""How lesions look, measured on real ones and painted into new places (the ``procedural`` baseline).

Why: a lesion GAN is only worth its cost if it beats a simple, honest model of lesion
appearance. This one is non-learned: each real lesion is measured against the tissue
around it (per image channel: mean contrast to the median of its shell, core-vs-rim contrast,
texture as a multiple of the shell's noise), :class:`AppearanceModel` keeps those
records per lesion type, and :func:`paint_lesion` draws one record (all channels
together, so an MRI + CT pair gets one consistent lesion) and paints it into a mask
placed in another volume, with a smooth boundary and noise matched to the local tissue.

Exactness: :func:`paint_lesion` only writes voxels within ``band_voxels`` (default 3) of
the mask; every voxel farther away is the input, copied exactly. The seam blends inside
that band (a Gaussian-smoothed mask).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from medgan.errors import ConfigError, InputError
from medgan.io import atomic_write_text

SHELL_VOXELS = 2
BAND_VOXELS = 3
EDGE_SIGMA_VOXELS = 0.8
STRUCTURE_6 = ndimage.generate_binary_structure(3, 1)


@dataclass(frozen=True)
class LesionAppearance:
    """One real lesion, per channel: contrast to its shell, core minus rim, texture / shell noise."""

    lesion_type: str | None
    contrast: tuple[float, ...]
    core_contrast: tuple[float, ...]
    texture_ratio: tuple[float, ...]
    volume_voxels: int


def _shell(mask: np.ndarray, voxels: int) -> np.ndarray:
    return ndimage.binary_dilation(mask, structure=STRUCTURE_6, iterations=voxels) & ~mask


def _noise_sd(channel: np.ndarray, region: np.ndarray) -> float:
    """Noise level in ``region``: the spread of the image minus its 1-voxel Gaussian smoothing."""
    residual = channel - ndimage.gaussian_filter(channel, sigma=1.0)
    return float(residual[region].std()) if region.any() else 0.0


def _away_from_edge(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(lesion interior, outer shell), each one voxel clear of the lesion's edge, where the edge
    itself does not inflate the noise estimate (fall back to the whole lesion when it is thin)."""
    interior = ndimage.binary_erosion(mask, structure=STRUCTURE_6)
    outer = _shell(mask, SHELL_VOXELS + 1) & ~ndimage.binary_dilation(mask, structure=STRUCTURE_6)
    return (interior if interior.any() else mask), outer


def _core(mask: np.ndarray) -> np.ndarray:
    depth = ndimage.distance_transform_edt(mask)
    return depth > 0.5 * depth.max() if depth.max() > 1.0 else np.zeros_like(mask)


def _check_grid(images: np.ndarray, mask: np.ndarray, source: str | Path | None) -> None:
    if images.ndim != 4 or images.shape[1:] != mask.shape:
        raise InputError(
            f"images {images.shape} and lesion mask {mask.shape} are not (C, X, Y, Z) and (X, Y, Z) on one grid",
            path=source,
            fix="give the mask on the image's grid (resample it with nearest neighbour)",
        )


def measure_appearance(
    images: np.ndarray,
    lesion_mask: np.ndarray,
    *,
    lesion_type: str | None = None,
    source: str | Path | None = None,
) -> LesionAppearance:
    """Measure one lesion of ``lesion_mask`` in ``images`` ``(C, X, Y, Z)`` (physical units per channel)."""
    images = np.asarray(images, dtype=np.float32)
    mask = np.asarray(lesion_mask) > 0
    _check_grid(images, mask, source)
    if not mask.any():
        raise InputError("the lesion mask is empty", path=source, fix="give a case whose lesion mask marks a lesion")
    shell = _shell(mask, SHELL_VOXELS)
    core = _core(mask)
    interior, outer = _away_from_edge(mask)
    contrast, core_contrast, texture = [], [], []
    for channel in images:
        contrast.append(float(channel[mask].mean() - np.median(channel[shell])))
        rim = mask & ~core
        core_contrast.append(float(channel[core].mean() - channel[rim].mean()) if core.any() and rim.any() else 0.0)
        shell_noise = _noise_sd(channel, outer)
        texture.append(_noise_sd(channel, interior) / shell_noise if shell_noise > 0 else 1.0)
    return LesionAppearance(lesion_type, tuple(contrast), tuple(core_contrast), tuple(texture), int(mask.sum()))


@dataclass(frozen=True)
class AppearanceModel:
    """Measured appearances of real lesions, per image channel (``channels`` names them)."""

    channels: tuple[str, ...]
    appearances: tuple[LesionAppearance, ...]

    def __post_init__(self) -> None:
        if not self.appearances:
            raise ConfigError("no lesions to fit an appearance model on", fix="give cases with lesion masks")
        widths = {len(a.contrast) for a in self.appearances}
        if widths != {len(self.channels)}:
            raise ConfigError(f"appearances have {sorted(widths)} channels, the model names {len(self.channels)}")

    def lesion_types(self) -> list[str]:
        return sorted({a.lesion_type for a in self.appearances if a.lesion_type is not None})

    def draw(self, rng: np.random.Generator, lesion_type: str | None = None) -> LesionAppearance:
        """One measured appearance (of ``lesion_type`` when given), all channels together."""
        pool = [a for a in self.appearances if lesion_type is None or a.lesion_type == lesion_type]
        if not pool:
            raise ConfigError(
                f"no fitted lesion of type {lesion_type!r}", fix=f"use one of {', '.join(self.lesion_types())}"
            )
        return pool[int(rng.integers(len(pool)))]

    def summary(self) -> dict[str, Any]:
        """Per lesion type and channel: mean and spread of the contrast (for reports)."""
        out: dict[str, Any] = {}
        for lesion_type in [*self.lesion_types(), None]:
            chosen = [a for a in self.appearances if lesion_type is None or a.lesion_type == lesion_type]
            contrasts = np.array([a.contrast for a in chosen])
            out[lesion_type or "all"] = {
                "lesions": len(chosen),
                **{
                    f"{name}_contrast": {"mean": float(contrasts[:, i].mean()), "sd": float(contrasts[:, i].std())}
                    for i, name in enumerate(self.channels)
                },
            }
        return out

    def save(self, path: str | Path) -> Path:
        content = {"channels": list(self.channels), "appearances": [asdict(a) for a in self.appearances]}
        return atomic_write_text(Path(path), json.dumps(content, indent=1) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> AppearanceModel:
        try:
            content = json.loads(Path(path).read_text(encoding="utf-8"))
            appearances = tuple(
                LesionAppearance(
                    a["lesion_type"],
                    tuple(a["contrast"]),
                    tuple(a["core_contrast"]),
                    tuple(a["texture_ratio"]),
                    int(a["volume_voxels"]),
                )
                for a in content["appearances"]
            )
            return cls(tuple(content["channels"]), appearances)
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise InputError(f"not a lesion appearance model ({error})", path=path, fix="fit and save one") from error


def blend_weight(mask: np.ndarray, *, band_voxels: int = BAND_VOXELS, sigma: float = EDGE_SIGMA_VOXELS) -> np.ndarray:
    """0..1 weight: 1 inside the mask (the mask holds the lesion's full level), falling off
    smoothly outside its edge (a Gaussian-smoothed mask), exactly 0 beyond the band."""
    band = ndimage.binary_dilation(mask, structure=STRUCTURE_6, iterations=band_voxels)
    weight = np.clip(ndimage.gaussian_filter(mask.astype(np.float32), sigma=sigma), 0.0, 1.0)
    weight[mask] = 1.0
    weight[~band] = 0.0
    return weight


def paint_lesion(
    images: np.ndarray,
    lesion_mask: np.ndarray,
    appearance: LesionAppearance,
    rng: np.random.Generator,
    *,
    contrast_scale: float = 1.0,
    band_voxels: int = BAND_VOXELS,
    value_ranges: Sequence[tuple[float, float] | None] | None = None,
) -> np.ndarray:
    """``images`` ``(C, X, Y, Z)`` with ``appearance`` painted into ``lesion_mask``; a new array.

    Per channel the lesion's level is the local tissue mean (the mask's shell) plus the
    appearance's contrast (times ``contrast_scale``), the core shifted by its core contrast,
    plus noise at the appearance's texture ratio times the local noise level. Voxels more
    than ``band_voxels`` from the mask are copied exactly. ``value_ranges`` clips each
    channel's painted values (e.g. the CT preset's HU window).
    """
    images = np.asarray(images, dtype=np.float32)
    mask = np.asarray(lesion_mask) > 0
    _check_grid(images, mask, None)
    if len(appearance.contrast) != images.shape[0]:
        raise ConfigError(f"the appearance has {len(appearance.contrast)} channels, the images {images.shape[0]}")
    if not mask.any():
        return images.copy()
    weight = blend_weight(mask, band_voxels=band_voxels)
    touched = weight > 0
    shell = _shell(mask, SHELL_VOXELS)
    core = _core(mask)
    _, outer = _away_from_edge(mask)
    noise = rng.standard_normal(int(touched.sum())).astype(np.float32)  # one field: channels stay consistent
    out = images.copy()
    for index, channel in enumerate(images):
        host = float(np.median(channel[shell]))  # the median: a shell touching bone or CSF keeps the tissue's level
        level = np.full(channel.shape, host + contrast_scale * appearance.contrast[index], np.float32)
        level[core] += contrast_scale * appearance.core_contrast[index]
        target = level[touched] + appearance.texture_ratio[index] * _noise_sd(channel, outer) * noise
        painted = channel[touched] + weight[touched] * (target - channel[touched])
        value_range = value_ranges[index] if value_ranges else None
        if value_range is not None:
            painted = np.clip(painted, *value_range)
        out[index][touched] = painted
    return out
