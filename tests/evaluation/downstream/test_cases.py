"""Which cases a run trains on: the leakage guard, balanced real draws, the negative control's counterparts."""

from __future__ import annotations

import numpy as np
import pytest

from medgan.errors import InputError
from medgan.evaluation.downstream.cases import (
    StudyCase,
    StudyCases,
    control_images,
    lesion_type_classes,
    sample_real,
    sample_synthetic,
    training_items,
)


def _cases() -> StudyCases:
    train = [StudyCase(i, f"s{i}", i % 2) for i in range(10)]
    validation = [StudyCase(10, "v0", 0), StudyCase(11, "v1", 1)]
    test = [StudyCase(12, "t0", 0), StudyCase(13, "t1", 1)]
    synthetic = [
        StudyCase(14, "s0_syn", 1, True, "s0"),
        StudyCase(15, "s2_syn", 1, True, "s2"),
        StudyCase(16, "t0_syn", 1, True, "t0"),  # made from a test head: must never be used
        StudyCase(17, "v0_syn", 1, True, "v0"),  # made from a validation head: neither
    ]
    return StudyCases(train, validation, test, synthetic)


def test_synthetic_cases_made_from_held_out_heads_are_never_eligible() -> None:
    eligible = _cases().eligible_synthetic()
    assert [c.subject for c in eligible] == ["s0_syn", "s2_syn"]
    for seed in range(20):  # nor drawn, whatever the seed and count
        drawn = sample_synthetic(eligible, 4, np.random.default_rng(seed))
        assert {c.source_subject for c in drawn} <= {"s0", "s2"}


def test_real_draws_are_balanced_and_a_function_of_the_seed() -> None:
    train = _cases().train
    drawn = sample_real(train, 6, np.random.default_rng(3))
    assert sorted(c.label for c in drawn) == [0, 0, 0, 1, 1, 1]
    assert drawn == sample_real(train, 6, np.random.default_rng(3))
    assert sample_real(train, "all", np.random.default_rng(0)) == train


def test_the_negative_control_uses_each_synthetic_case_s_healthy_source_image() -> None:
    cases = _cases()
    chosen = cases.eligible_synthetic()
    rows = control_images(chosen, cases, np.random.default_rng(0))
    assert rows == [0, 2]  # the rows of s0 and s2
    items = training_items("negative_control", cases.train[:2], chosen, rows, mask_rows={14: 14, 15: 15})
    added = items[2:]
    assert [(i.image_row, i.label, i.mask_row) for i in added] == [(0, 1, 14), (2, 1, 15)]


def test_training_sets_per_condition() -> None:
    cases = _cases()
    real, chosen = cases.train[:4], cases.eligible_synthetic()
    assert len(training_items("real", real, chosen, [], mask_rows={})) == 4
    assert len(training_items("classical", real, chosen, [], mask_rows={})) == 4
    synthetic = training_items("synthetic", real, chosen, [], mask_rows={})
    assert [i.image_row for i in synthetic[4:]] == [14, 15]


def test_a_synthetic_case_without_a_counterpart_is_a_clear_error() -> None:
    orphan = StudyCase(20, "sample_1", 1, True, None)
    cases = StudyCases(_cases().train, _cases().validation, _cases().test, [orphan])
    with pytest.raises(InputError, match="negative control"):
        control_images([orphan], cases, np.random.default_rng(0))


def _typed(row: int, subject: str, label: int, lesion_type: str | None, **other: object) -> StudyCase:
    return StudyCase(row, subject, label, lesion_type=lesion_type if label else None, **other)


def test_lesion_types_are_classes_only_when_every_lesion_case_names_a_known_one() -> None:
    real = [_typed(0, "h", 0, None), _typed(1, "a", 1, "haemorrhage"), _typed(2, "b", 1, "calcified_mass")]
    synthetic = [_typed(3, "a_syn", 1, "haemorrhage", synthetic=True, source_subject="h")]
    assert lesion_type_classes(real, synthetic) == (("calcified_mass", "haemorrhage"), None)
    types, reason = lesion_type_classes([*real, _typed(4, "c", 1, None)], synthetic)
    assert types == () and "1 lesion case(s) name no lesion type" in reason and "'c'" in reason
    types, reason = lesion_type_classes(real[:2], [])
    assert types == () and "needs two" in reason
    foreign = [_typed(5, "x_syn", 1, "glioma", synthetic=True, source_subject="h")]
    types, reason = lesion_type_classes(real, foreign)
    assert types == () and "'glioma'" in reason


def test_class_indices_and_the_negative_control_keep_the_synthetic_case_s_type() -> None:
    cases = StudyCases([], [], [], [], lesion_types=("calcified_mass", "haemorrhage"))
    classes = [cases.class_index(0, None), cases.class_index(1, "calcified_mass"), cases.class_index(1, "haemorrhage")]
    assert classes == [0, 1, 2]
    assert StudyCases([], [], [], []).class_index(1, "haemorrhage") == 1  # types off: lesion / no lesion
    chosen = [_typed(14, "s0_syn", 1, "haemorrhage", synthetic=True, source_subject="s0")]
    items = training_items("negative_control", [], chosen, [0], mask_rows={14: 14})
    assert [(i.image_row, i.label, i.mask_row, i.lesion_type) for i in items] == [(0, 1, 14, "haemorrhage")]
