"""Which cases a study run trains on: real cases drawn per seed, synthetic cases, the negative control.

Rules (each tested):

* Real training cases are drawn from the training list per (seed, n_real, repeat), half with a
  lesion and half healthy as far as the list allows, so every condition of a repeat trains on
  the same real cases (the pairing of the paired differences).
* A synthetic case is only used if its ``source_subject`` is not a validation or test subject
  (the leakage guard): a lesion pasted into a held-out head would let the network see a test
  head in training.
* The negative control takes the very synthetic cases a run of the synthetic condition takes,
  with their label (lesion type and mask), but the image of the healthy case each was made from, so it adds
  the same number of "lesion" cases that carry no lesion: whatever it gains is not lesion
  information, and a trustworthy study shows none. Synthetic cases without a real source (a
  ``generate`` output) borrow a synthetic healthy sample instead.
* Lesion types: the classifier tells healthy from each lesion type (class 0 = healthy, 1.. = the
  types in sorted order) when every real and synthetic lesion case names a type, at least two
  types occur among the real cases, and no synthetic case brings a type the real cases lack;
  otherwise it is lesion / no lesion only, and :func:`lesion_type_classes` says why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from medgan.errors import InputError

HEALTHY, LESION = 0, 1


@dataclass(frozen=True)
class StudyCase:
    """One volume of the study: its row in the study's tensors and what the datalist says about it."""

    row: int
    subject: str
    label: int
    synthetic: bool = False
    source_subject: str | None = None
    lesion_type: str | None = None


@dataclass(frozen=True)
class TrainingItem:
    """One training volume of a run: image row, label, the row whose lesion mask it carries (or None), its type."""

    image_row: int
    label: int
    mask_row: int | None
    lesion_type: str | None = None


@dataclass(frozen=True)
class StudyCases:
    """The study's cases by role."""

    train: list[StudyCase]
    validation: list[StudyCase]
    test: list[StudyCase]
    synthetic: list[StudyCase]
    lesion_types: tuple[str, ...] = ()  # the classifier's lesion classes (empty: lesion / no lesion only)

    def class_index(self, label: int, lesion_type: str | None) -> int:
        """The classifier's class of a case: 0 healthy, else 1 (no types) or 1 + the type's index."""
        if label == HEALTHY or not self.lesion_types:
            return int(label)
        return 1 + self.lesion_types.index(lesion_type)

    def held_out_subjects(self) -> set[str]:
        """Subjects of the validation and test lists: no synthetic case may come from them."""
        return {case.subject for case in (*self.validation, *self.test)}

    def eligible_synthetic(self) -> list[StudyCase]:
        """Synthetic lesion cases whose source is not held out (the leakage guard), in datalist order."""
        held_out = self.held_out_subjects()
        return [c for c in self.synthetic if c.label == LESION and c.source_subject not in held_out]


def lesion_type_classes(
    real: Sequence[StudyCase], synthetic: Sequence[StudyCase]
) -> tuple[tuple[str, ...], str | None]:
    """The lesion types the classifier tells apart (sorted), or ``()`` and the reason it cannot."""
    untyped = [c.subject for c in (*real, *synthetic) if c.label == LESION and not c.lesion_type]
    if untyped:
        return (), f"{len(untyped)} lesion case(s) name no lesion type (e.g. {untyped[0]!r})"
    types = tuple(sorted({c.lesion_type for c in real if c.label == LESION}))
    if len(types) < 2:
        return (), f"the real lesion cases hold {len(types)} lesion type(s); telling types apart needs two"
    foreign = sorted({c.lesion_type for c in synthetic if c.label == LESION} - set(types))
    if foreign:
        return (), f"synthetic cases bring lesion type(s) {foreign} that no real case has"
    return types, None


def sample_real(train: Sequence[StudyCase], n_real: int | str, rng: np.random.Generator) -> list[StudyCase]:
    """``n_real`` training cases (``"all"``: every one), half lesion / half healthy where the list allows."""
    if n_real == "all" or n_real >= len(train):
        return list(train)
    by_label = {label: [c for c in train if c.label == label] for label in (HEALTHY, LESION)}
    n_lesion = min(len(by_label[LESION]), max(1, n_real // 2))
    n_healthy = min(len(by_label[HEALTHY]), n_real - n_lesion)
    n_lesion = min(len(by_label[LESION]), n_real - n_healthy)
    chosen = []
    for label, count in ((HEALTHY, n_healthy), (LESION, n_lesion)):
        picks = rng.choice(len(by_label[label]), size=count, replace=False)
        chosen += [by_label[label][i] for i in sorted(picks)]
    return chosen


def sample_synthetic(pool: Sequence[StudyCase], count: int, rng: np.random.Generator) -> list[StudyCase]:
    """``count`` synthetic cases from ``pool`` without replacement (all of them if the pool is smaller)."""
    count = min(count, len(pool))
    return [pool[i] for i in sorted(rng.choice(len(pool), size=count, replace=False))]


def control_images(chosen: Sequence[StudyCase], cases: StudyCases, rng: np.random.Generator) -> list[int]:
    """The image row of each chosen synthetic case's lesion-free counterpart (see the module docstring)."""
    real_rows = {c.subject: c.row for c in (*cases.train, *cases.validation, *cases.test)}
    healthy_synthetic = [c.row for c in cases.synthetic if c.label == HEALTHY]
    rows = []
    for case in chosen:
        if case.source_subject is not None and case.source_subject in real_rows:
            rows.append(real_rows[case.source_subject])
        elif healthy_synthetic:
            rows.append(healthy_synthetic[int(rng.integers(len(healthy_synthetic)))])
        else:
            raise InputError(
                f"synthetic case {case.subject!r} has no source_subject among the real cases and there are no "
                "healthy synthetic cases, so the negative control has no lesion-free counterpart for it",
                fix="use an `enrich` output (its cases name their source), add healthy samples to a `generate` "
                "output (--label 0), or drop negative_control from conditions",
            )
    return rows


def training_items(
    condition: str,
    real: Sequence[StudyCase],
    synthetic: Sequence[StudyCase],
    control_rows: Sequence[int],
    *,
    mask_rows: dict[int, int],
) -> list[TrainingItem]:
    """A run's training set: the real cases, plus synthetic cases or their controls for those conditions.

    ``mask_rows`` maps an image row to the row of its lesion mask (rows without one train as empty masks).
    """
    items = [TrainingItem(c.row, c.label, mask_rows.get(c.row), c.lesion_type) for c in real]
    if condition in ("synthetic", "synthetic_classical"):
        items += [TrainingItem(c.row, c.label, mask_rows.get(c.row), c.lesion_type) for c in synthetic]
    elif condition == "negative_control":
        items += [
            TrainingItem(row, c.label, mask_rows.get(c.row), c.lesion_type)
            for c, row in zip(synthetic, control_rows, strict=True)
        ]
    return items
