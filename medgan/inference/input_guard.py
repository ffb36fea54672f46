"""The translate job's input guard: refuse inputs the run cannot translate, warn about doubtful ones.

A network translates whatever it is given; a CT given to an MRI -> CT model or a
blank series gives a confident-looking, wrong output. Before an input is
translated, :func:`check_source_against_profile` compares it (as read: physical
units, file geometry, DICOM tags) with what the run expects:

- **refused** (``InputError`` naming the file, the reason and the fix): a DICOM
  Modality tag of another modality than the model's source; without a tag, an
  intensity histogram that looks like HU for an MRI model (MRI magnitude images
  have no negative values, CT has air at -1000) or that does not look like HU for
  a CT model (no voxels below -500 HU); a constant image.
- **warned** (returned strings, recorded in the job manifest): a field of view much
  smaller than any training image's (a skull-stripped or cropped scan), a spacing
  far from the trained spacing (it is resampled), intensity percentiles far
  outside the training range of a fixed-unit modality (CT).

The thresholds and why they are what they are: docs/decisions.md ("input guard").
The modality checks need no profile; the others are skipped without one (runs
older than ``data_profile.json``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from monai.data import MetaTensor

from medgan.data.presets import canonical_modality, get_preset
from medgan.data.profile import DataProfile, IntensityFeatures, format_mm, intensity_features, ras_geometry
from medgan.errors import ConfigError, InputError

LOG = logging.getLogger(__name__)

AXES = ("R-L", "A-P", "S-I")

# Refusals (see docs/decisions.md, "input guard").
HU_AIR_FRACTION_MIN = 0.05
"""An MRI-model input is HU-like when at least this fraction of its voxels is near air (-1000 +- 150) ..."""
HU_P1_MAX = -500.0
"""... and its 1st percentile is below -500 (MRI magnitude images have no negative values)."""
CT_BELOW_MINUS500_MIN = 0.001
"""A CT-model input must have at least this fraction of voxels below -500 HU (air around / inside the body)."""
CONSTANT_RANGE = 1e-6
"""max - min (relative to max(1, |max|)) below which an image is constant: nothing to translate."""

# Warnings.
FOV_RATIO_MIN = 0.6
"""Warn when the field of view on an axis is below this fraction of the smallest training FOV on it."""
SPACING_RATIO_MAX = 2.0
"""Warn when the spacing on an axis is more than this factor away from the trained spacing (either way)."""
FIXED_UNIT_MARGIN_FRACTION = 0.1
"""For fixed-unit modalities (CT), warn when p1 / p50 / p99 lie more than this fraction of the preset's
window width (CT: 0.1 x 4095 = ~410 HU) outside the range the training images spanned."""


def source_spacing(source: MetaTensor) -> tuple[float, float, float]:
    """The source's spacing in mm per world axis R, A, S (the order the preprocessing resamples in)."""
    return ras_geometry(source.affine, source.shape[1:])[0]


def resampling_note(input_spacing: Sequence[float], trained_spacing: Sequence[float] | None) -> str:
    """What the translate job does with an input's spacing, as one line for the log and the manifest."""
    if trained_spacing is None:
        return f"translated at its native spacing {format_mm(input_spacing)} (the run records no trained spacing)"
    same = all(abs(a - b) <= 1e-3 * max(abs(b), 1e-6) for a, b in zip(input_spacing, trained_spacing, strict=True))
    if same:
        return f"native spacing {format_mm(input_spacing)} is the trained spacing: not resampled"
    return f"resampled {format_mm(input_spacing)} -> {format_mm(trained_spacing)} (trained spacing) and back"


def _refuse(path: Path, problem: str, fix: str) -> InputError:
    return InputError(problem, path=path, fix=fix)


def _check_not_constant(features: IntensityFeatures, path: Path) -> None:
    if features.min != features.min:  # NaN: no finite voxel at all
        raise _refuse(path, "the image has no finite voxel: nothing to translate", "check the file is not corrupt")
    if features.max - features.min <= CONSTANT_RANGE * max(1.0, abs(features.max)):
        raise _refuse(
            path,
            f"the image is constant (every voxel is {features.min:g}): it is blank, nothing to translate",
            "check that this is the intended series (not an empty localizer, a mask or a failed export)",
        )


def _check_modality(source: MetaTensor, path: Path, expected: str, features: IntensityFeatures) -> list[str]:
    """Refuse a contradicting DICOM Modality tag or, without a usable tag, a histogram of the wrong kind."""
    tag = str(source.meta.get("modality", "") or "").strip()
    expected_code = get_preset(expected).dicom_modality
    if tag:
        try:
            tagged = canonical_modality(tag)
        except ConfigError:
            tagged = None
        if tagged == expected:
            return []
        if tagged is not None:
            raise _refuse(
                path,
                f"DICOM Modality is {tag!r} but this run translates {expected_code} ({expected}) images",
                f"give the {expected_code} series of this study, or use a run trained on {tag} inputs",
            )
        warnings = [
            f"DICOM Modality {tag!r} is not {expected_code}: checked by its intensities instead (the run translates "
            f"{expected_code} images)"
        ]
    else:
        warnings = []
    if expected == "mri" and features.fraction_air >= HU_AIR_FRACTION_MIN and features.p1 < HU_P1_MAX:
        raise _refuse(
            path,
            f"the intensities look like CT in HU, not MRI: {features.fraction_air:.0%} of the voxels are near "
            f"-1000 (air) and the 1st percentile is {features.p1:.0f} (MRI magnitude images have no negative "
            "values); this run translates MRI",
            "give the MRI of this study, or use a run trained on CT inputs",
        )
    if expected == "ct" and features.fraction_below_minus500 < CT_BELOW_MINUS500_MIN:
        raise _refuse(
            path,
            f"the intensities do not look like CT in HU: {features.fraction_below_minus500:.2%} of the voxels are "
            f"below -500 (a CT has air, around -1000 HU), range {features.min:.0f} .. {features.max:.0f}; "
            "this run translates CT",
            "give a CT in HU (if the file stores raw CT numbers with air at 0, apply RescaleSlope/Intercept, "
            "usually -1024), or use a run trained on this modality",
        )
    return warnings


def _fov_warnings(fov: Sequence[float], profile: DataProfile) -> list[str]:
    trained = profile.source.min_fov_mm
    small = [axis for axis, (have, least) in enumerate(zip(fov, trained, strict=True)) if have < FOV_RATIO_MIN * least]
    if not small:
        return []
    axes = ", ".join(f"{AXES[a]} {fov[a]:.0f} mm vs {trained[a]:.0f} mm" for a in small)
    return [
        f"field of view much smaller than every training image ({axes}; below {FOV_RATIO_MIN:g}x the smallest "
        "training FOV): e.g. a skull-stripped or cropped scan; the network never saw such images, check the output"
    ]


def _spacing_warnings(spacing: Sequence[float], trained: Sequence[float]) -> list[str]:
    far = [
        axis
        for axis, (have, want) in enumerate(zip(spacing, trained, strict=True))
        if want > 0 and not (1 / SPACING_RATIO_MAX <= have / want <= SPACING_RATIO_MAX)
    ]
    if not far:
        return []
    coarser = any(spacing[a] > trained[a] for a in far)
    consequence = (
        "detail finer than the input's voxels cannot be recovered"
        if coarser
        else "detail finer than the trained spacing is lost in the output"
    )
    return [
        f"spacing {format_mm(spacing)} is more than {SPACING_RATIO_MAX:g}x away from the trained spacing "
        f"{format_mm(trained)} on {', '.join(AXES[a] for a in far)}: it is resampled to the trained spacing and "
        f"back ({consequence})"
    ]


def _intensity_warnings(features: IntensityFeatures, profile: DataProfile, modality: str) -> list[str]:
    window = get_preset(modality).fixed_window
    if window is None:  # MRI: no fixed units; each volume is scaled by its own percentiles
        return []
    margin = FIXED_UNIT_MARGIN_FRACTION * (window.high - window.low)
    outside = []
    for name in ("p1", "p50", "p99"):
        low, high = profile.source.percentile_ranges[name]
        value = float(getattr(features, name))
        if value < low - margin or value > high + margin:
            outside.append(f"{name} {value:.0f} (training {low:.0f} .. {high:.0f})")
    if not outside:
        return []
    return [
        f"intensities far outside the training images' ({', '.join(outside)}; more than {margin:.0f} beyond the "
        "range): a different scanner calibration, contrast agent, metal or a unit mistake; check the output"
    ]


def check_source_against_profile(
    source: MetaTensor,
    path: str | Path,
    profile: DataProfile | None,
    source_modality: str,
    *,
    trained_spacing: Sequence[float] | None = None,
) -> list[str]:
    """Refuse (InputError) or warn about ``source`` (as read from ``path``) for a run reading ``source_modality``.

    ``profile`` is the run's training data profile (None: the FOV, spacing and
    intensity-range checks are skipped); ``trained_spacing`` defaults to the
    profile's median source spacing. Returns the warnings, one sentence each.
    """
    path = Path(path)
    expected = canonical_modality(source_modality)
    features = intensity_features(source)
    _check_not_constant(features, path)
    warnings = _check_modality(source, path, expected, features)
    if profile is None:
        return warnings
    spacing, fov = ras_geometry(source.affine, source.shape[1:])
    warnings += _fov_warnings(fov, profile)
    trained = trained_spacing if trained_spacing is not None else profile.source.median_spacing
    warnings += _spacing_warnings(spacing, trained)
    warnings += _intensity_warnings(features, profile, expected)
    return warnings


class InputGuard:
    """The translate job's ``source_check``: :func:`check_source_against_profile` with the run's settings.

    Remembers the spacing of the last checked source (``last_spacing``) so the job
    can say how that input was resampled (:meth:`resampling_note`). Without a
    profile it logs once that only the modality checks run.
    """

    def __init__(
        self,
        profile: DataProfile | None,
        source_modality: str,
        trained_spacing: Sequence[float] | None = None,
    ) -> None:
        self.profile = profile
        self.source_modality = source_modality
        self.trained_spacing = None if trained_spacing is None else tuple(float(v) for v in trained_spacing)
        self.last_spacing: tuple[float, float, float] | None = None
        if profile is None:
            LOG.warning(
                "the run has no data_profile.json (trained before medgan wrote one): inputs are checked for "
                "modality only; the field-of-view, spacing and intensity-range checks are skipped"
            )

    def __call__(self, source: MetaTensor, path: Path) -> list[str]:
        self.last_spacing = source_spacing(source)
        return check_source_against_profile(
            source, path, self.profile, self.source_modality, trained_spacing=self.trained_spacing
        )

    def resampling_note(self) -> str | None:
        """How the last checked input is resampled (None before any)."""
        return None if self.last_spacing is None else resampling_note(self.last_spacing, self.trained_spacing)
