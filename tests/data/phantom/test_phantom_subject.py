"""One phantom subject: deterministic, physically plausible values, lesions inside the brain."""

from __future__ import annotations

import numpy as np
import pytest

from medgan.data.phantom import tissues as t
from medgan.data.phantom.anatomy import render_head_labels, sample_anatomy
from medgan.data.phantom.grid import PhantomGrid
from medgan.data.phantom.lesions import LESION_MIXES, paint_lesion
from medgan.data.phantom.subject import generate_subject, has_lesion, subject_rng

GRID = PhantomGrid((48, 48, 48), (5.0, 5.0, 5.0))


@pytest.fixture(scope="module")
def lesion_subject():
    return generate_subject(0, 0, GRID, with_lesion=True)


@pytest.fixture(scope="module")
def healthy_subject():
    return generate_subject(0, 1, GRID, with_lesion=False)


def test_same_seed_and_index_give_identical_volumes(lesion_subject):
    again = generate_subject(0, 0, GRID, with_lesion=True)
    for name in ("mri_t1", "ct_hu", "tissue_labels", "lesion_mask"):
        np.testing.assert_array_equal(getattr(again, name), getattr(lesion_subject, name))
    other_seed = generate_subject(1, 0, GRID, with_lesion=True)
    assert not np.array_equal(other_seed.ct_hu, lesion_subject.ct_hu)


def test_lesion_leaves_anatomy_and_noise_streams_alone(lesion_subject):
    """Turning the lesion off changes only voxels near the lesion, not the whole head."""
    without = generate_subject(0, 0, GRID, with_lesion=False)
    changed = without.tissue_labels != lesion_subject.tissue_labels
    assert changed.any() and changed.sum() < 0.01 * changed.size
    assert without.lesion_mask is None and without.class_label == 0 and lesion_subject.class_label == 1


@pytest.mark.parametrize("which", ["lesion_subject", "healthy_subject"])
def test_tissue_values_are_in_literature_ranges(which, request):
    subject = request.getfixturevalue(which)
    labels, ct, mri = subject.tissue_labels, subject.ct_hu.astype(float), subject.mri_t1.astype(float)
    assert ct.dtype == np.float64 and subject.ct_hu.dtype == np.int16 and subject.mri_t1.dtype == np.int16
    assert ct[labels == t.CORTICAL_BONE].mean() > 700
    assert ct[labels == t.AIR].mean() < -900
    assert 20 <= np.median(ct[labels == t.GREY_MATTER]) <= 45
    assert 20 <= np.median(ct[labels == t.WHITE_MATTER]) <= 45
    wm, gm, csf = (mri[labels == label].mean() for label in (t.WHITE_MATTER, t.GREY_MATTER, t.CSF))
    assert wm > gm > csf
    # bone and air are both dark on T1 (partial volume keeps 5 mm bone voxels above pure bone)
    assert mri[labels == t.CORTICAL_BONE].mean() < min(gm, 0.7 * wm)
    assert mri[labels == t.AIR].mean() < 0.1 * wm
    assert ct.min() >= -1024 and ct.max() <= 3071


def test_mri_has_rician_background_and_bias(healthy_subject):
    labels, mri = healthy_subject.tissue_labels, healthy_subject.mri_t1.astype(float)
    air = mri[labels == t.AIR]
    # magnitude of complex noise: strictly non-negative with a positive mean (Rayleigh in air)
    assert air.min() >= 0 and air.mean() > 0 and air.std() > 0
    assert 0.10 <= healthy_subject.bias_amplitude <= 0.20


def test_lesion_mask_lies_inside_the_brain(lesion_subject):
    mask = lesion_subject.lesion_mask.astype(bool)
    assert mask.sum() >= 2
    assert set(np.unique(lesion_subject.tissue_labels[mask])) <= set(t.BRAIN_LABELS)


def test_paint_lesion_only_replaces_grey_and_white_matter():
    rng = subject_rng(3, 5, 0)
    fine = render_head_labels(sample_anatomy(rng), GRID, rng)
    before = fine.copy()
    info = paint_lesion(fine, GRID, np.random.default_rng(7))
    changed = before != fine
    assert changed.any()
    assert set(np.unique(before[changed])) <= {t.GREY_MATTER, t.WHITE_MATTER}
    assert set(np.unique(fine[changed])) <= {t.LESION, t.NECROSIS, t.OEDEMA}
    assert 0.15 <= info.contrast <= 1.0


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.25, 0.5, 0.75, 1.0])
def test_lesion_fraction_is_respected_for_every_prefix(fraction):
    flags = [has_lesion(4, index, fraction) for index in range(100)]
    for n in (1, 7, 24, 100):
        assert abs(sum(flags[:n]) - fraction * n) < 1


def test_conspicuous_mix_draws_large_full_contrast_lesions_and_default_is_unchanged():
    conspicuous = LESION_MIXES["conspicuous"]
    for index in range(6):
        lesion = generate_subject(3, index, GRID, with_lesion=True, lesion_mix=conspicuous).lesion
        assert not lesion.subtle and lesion.contrast >= 0.8 and lesion.radius_mm >= 14.0
    default = generate_subject(0, 0, GRID, with_lesion=True, lesion_mix=LESION_MIXES["default"])
    assert default.lesion == generate_subject(0, 0, GRID, with_lesion=True).lesion


def test_haemorrhage_mix_draws_only_large_bright_haemorrhages():
    mix = LESION_MIXES["haemorrhage"]
    for index in range(6):
        lesion = generate_subject(5, index, GRID, with_lesion=True, lesion_mix=mix).lesion
        assert lesion.lesion_type == "haemorrhage" and not lesion.subtle
        assert lesion.contrast >= 0.8 and 18.0 <= lesion.radius_mm <= 28.0


def test_cli_lesion_choices_are_the_phantom_mixes():
    from pipelines.cli import sample_data_command

    option = next(p for p in sample_data_command.params if p.name == "lesion_mix")
    assert sorted(option.type.choices) == sorted(LESION_MIXES)
