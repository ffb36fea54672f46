"""Train and score one study run: its training set, its network, its metrics on held-out real cases.

What a run records (its JSON under ``OUT/runs/``): the spec and seeds, how many real and
synthetic cases it trained on, the SHA-256 of its trained weights, its metrics, and the raw
material the summary bootstraps: the test-case scores (classify) or detection candidates
(detect), in test-list order. Classify's operating point is fixed on the validation list
(Youden's J) and applied to the test list.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from medgan.config.downstream import DownstreamConfig, TrainerSettings
from medgan.data.classical_augmentation import ClassicalAugmentation
from medgan.evaluation.binary_metrics import operating_point, youden_threshold
from medgan.evaluation.classifier import ClassifierSettings, predict_probabilities, train_classifier
from medgan.evaluation.downstream.cases import (
    LESION,
    StudyCase,
    StudyCases,
    TrainingItem,
    control_images,
    sample_real,
    sample_synthetic,
    training_items,
)
from medgan.evaluation.downstream.grid import SYNTHETIC_CONDITIONS, RunSpec, derive_seed
from medgan.evaluation.froc import detection_candidates, dice, sensitivity_at_fp_rates
from medgan.evaluation.roc import roc_auc
from medgan.evaluation.segmenter import SegmenterSettings, predict_lesion_probability, train_segmenter

AUGMENTED_CONDITIONS = ("classical", "synthetic_classical")
DICE_THRESHOLD = 0.5


@dataclass(frozen=True)
class StudyData:
    """Every volume of the study in memory: images ``(N, C, D, H, W)``, masks ``(N, 1, D, H, W)``, the cases."""

    images: torch.Tensor
    masks: torch.Tensor
    has_mask: frozenset[int]
    cases: StudyCases


def weights_sha256(network: nn.Module) -> str:
    """SHA-256 over the network's state tensors (names and bytes, in order): the run's checkpoint hash."""
    digest = hashlib.sha256()
    for name, tensor in network.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def run_training_set(
    spec: RunSpec, config: DownstreamConfig, data: StudyData
) -> tuple[list[TrainingItem], int, list[str]]:
    """The run's training items (the real draw first), the real count, and warnings (a small synthetic pool)."""
    cases = data.cases
    real = sample_real(cases.train, spec.n_real, np.random.default_rng(spec.real_cases_seed(config.seed)))
    synthetic, control_rows, warnings = [], [], []
    if spec.condition in SYNTHETIC_CONDITIONS:
        wanted = int(round(spec.ratio * len(real)))
        pool = cases.eligible_synthetic()
        if wanted > len(pool):
            warnings.append(
                f"asked for {wanted} synthetic cases (ratio {spec.ratio:g} x {len(real)} real) but only {len(pool)} "
                "are eligible; used them all (make more with enrich --set cases_per_source=N)"
            )
        seed = spec.synthetic_cases_seed(config.seed)
        synthetic = sample_synthetic(pool, wanted, np.random.default_rng(seed))
        if spec.condition == "negative_control":
            control_rows = control_images(synthetic, cases, np.random.default_rng(derive_seed(seed, 1)))
    mask_rows = {row: row for row in data.has_mask}
    return training_items(spec.condition, real, synthetic, control_rows, mask_rows=mask_rows), len(real), warnings


def _stack(data: StudyData, items: list[TrainingItem]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    images = data.images[[item.image_row for item in items]]
    classes = [data.cases.class_index(item.label, item.lesion_type) for item in items]
    labels = torch.tensor(classes, dtype=torch.int64)
    empty = torch.zeros((1, *data.images.shape[2:]), dtype=torch.bool)
    masks = torch.stack([data.masks[item.mask_row] if item.mask_row is not None else empty for item in items])
    return images, labels, masks


def _augmentation(spec: RunSpec, config: DownstreamConfig, *, with_masks: bool) -> ClassicalAugmentation | None:
    """The run's seeded classical augmentation in the classical conditions, else None."""
    if spec.condition not in AUGMENTED_CONDITIONS:
        return None
    return ClassicalAugmentation(seed=spec.seed(config.seed, "augmentation"), with_masks=with_masks)


def _trainer_fields(trainer: TrainerSettings, spec: RunSpec, config: DownstreamConfig) -> dict[str, Any]:
    """A task's trainer settings as keyword arguments, with the run's weight seed."""
    return {
        "network": dict(trainer.network),
        "steps": trainer.steps,
        "batch_size": trainer.batch_size,
        "lr": trainer.lr,
        "weight_decay": trainer.weight_decay,
        "seed": spec.seed(config.seed, "weights"),
    }


def _classify(spec: RunSpec, config: DownstreamConfig, data: StudyData, items: list[TrainingItem]) -> dict[str, Any]:
    images, labels, _ = _stack(data, items)
    augmentation = _augmentation(spec, config, with_masks=False)
    augment = None if augmentation is None else (lambda batch: augmentation(batch)[0])
    # no flips either outside the classical conditions
    settings = ClassifierSettings(**_trainer_fields(config.classifier, spec, config), flip_axes=())
    types = data.cases.lesion_types
    network = train_classifier(images, labels, num_classes=1 + max(1, len(types)), settings=settings, augment=augment)
    validation_rows = [c.row for c in data.cases.validation]
    test_rows = [c.row for c in data.cases.test]
    # lesion score = the probability of any lesion class (with two classes exactly p[:, 1])
    validation_scores = predict_probabilities(network, data.images[validation_rows])[:, 1:].sum(dim=1).numpy()
    test_probabilities = predict_probabilities(network, data.images[test_rows])
    test_scores = test_probabilities[:, 1:].sum(dim=1).numpy()
    validation_labels = np.array([c.label for c in data.cases.validation])
    test_labels = np.array([c.label for c in data.cases.test])
    threshold = youden_threshold(validation_scores, validation_labels)
    scored = {
        "checkpoint_sha256": weights_sha256(network),
        "metrics": {"auc": roc_auc(test_scores, test_labels), **operating_point(test_scores, test_labels, threshold)},
        "threshold": threshold,
        "test_scores": [round(float(s), 6) for s in test_scores],
    }
    if types:
        type_metrics, predictions = _type_results(types, data.cases.test, test_probabilities)
        scored["metrics"].update(type_metrics)
        scored.update(lesion_types=list(types), test_type_predictions=predictions)
    return scored


def _type_results(
    types: tuple[str, ...], test: list[StudyCase], probabilities: torch.Tensor
) -> tuple[dict[str, float], list[str | None]]:
    """Lesion-type metrics on the test list's lesion cases, and the predicted type per test case (None: healthy).

    The predicted type is the most probable lesion class. ``type_accuracy`` is over the test
    lesion cases; ``type_balanced_accuracy`` the mean per-type recall over the types they hold
    (chance: 1 / number of types, whatever the type mix).
    """
    guesses = [types[int(i)] for i in probabilities[:, 1:].argmax(dim=1)]
    predictions = [guess if case.label == LESION else None for case, guess in zip(test, guesses, strict=True)]
    pairs = [(case.lesion_type, guess) for case, guess in zip(test, predictions, strict=True) if guess is not None]
    truths = sorted({truth for truth, _ in pairs})
    recalls = [np.mean([guess == truth for truth, guess in pairs if truth == kind]) for kind in truths]
    metrics = {
        "type_accuracy": float(np.mean([truth == guess for truth, guess in pairs])) if pairs else float("nan"),
        "type_balanced_accuracy": float(np.mean(recalls)) if recalls else float("nan"),
    }
    return metrics, predictions


def _detect(spec: RunSpec, config: DownstreamConfig, data: StudyData, items: list[TrainingItem]) -> dict[str, Any]:
    images, _, masks = _stack(data, items)
    augment = _augmentation(spec, config, with_masks=True)
    settings = SegmenterSettings(**_trainer_fields(config.detector, spec, config))
    network = train_segmenter(images, masks, settings=settings, augment=augment)
    test_rows = [c.row for c in data.cases.test]
    probabilities = predict_lesion_probability(network, data.images[test_rows]).numpy()
    references = data.masks[test_rows, 0].numpy()
    candidates = [detection_candidates(p, m) for p, m in zip(probabilities, references, strict=True)]
    test_labels = np.array([c.label for c in data.cases.test])
    lesion_dice = [
        dice(p > DICE_THRESHOLD, m) for p, m, label in zip(probabilities, references, test_labels, strict=True) if label
    ]
    case_scores = probabilities.reshape(len(probabilities), -1).max(axis=1)
    froc = sensitivity_at_fp_rates(candidates, config.fp_rates)
    return {
        "checkpoint_sha256": weights_sha256(network),
        "metrics": {
            "froc_mean": froc["mean"],
            **{f"sensitivity_at_{rate}_fp": value for rate, value in froc.items() if rate != "mean"},
            "dice": float(np.mean(lesion_dice)) if lesion_dice else float("nan"),
            "scan_auc": roc_auc(case_scores, test_labels),
        },
        "test_candidates": [c.to_dict() for c in candidates],
        "test_scores": [round(float(s), 6) for s in case_scores],
    }


def execute_run(spec: RunSpec, config: DownstreamConfig, data: StudyData) -> dict[str, Any]:
    """Train and score one run; the record written to its JSON (see the module docstring)."""
    started = time.perf_counter()
    items, n_real, warnings = run_training_set(spec, config, data)
    scored = (_classify if spec.task == "classify" else _detect)(spec, config, data, items)
    return {
        "key": spec.key,
        "task": spec.task,
        "condition": spec.condition,
        "n_real": spec.n_real,
        "ratio": spec.ratio,
        "repeat": spec.repeat,
        "n_real_cases": n_real,
        "n_synthetic_cases": len(items) - n_real,
        "weights_seed": spec.seed(config.seed, "weights"),
        "seconds": round(time.perf_counter() - started, 2),
        "torch_threads": torch.get_num_threads(),  # CPU results are bit-identical only at the same count
        "warnings": warnings,
        **scored,
    }
