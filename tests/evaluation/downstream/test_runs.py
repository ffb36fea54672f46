"""One study run's classify record: lesion score, and the lesion-type classes when the cases name types."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from medgan.config.downstream import DownstreamConfig, TrainerSettings
from medgan.evaluation.downstream.cases import StudyCase, StudyCases
from medgan.evaluation.downstream.grid import RunSpec
from medgan.evaluation.downstream.runs import StudyData, _type_results, execute_run

TYPES = ("calcified_mass", "haemorrhage")


def _case(row: int, label: int, lesion_type: str | None = None) -> StudyCase:
    return StudyCase(row, f"s{row}", label, lesion_type=lesion_type)


def test_type_metrics_count_only_lesion_cases_and_balance_the_types() -> None:
    test = [_case(0, 0), _case(1, 1, "haemorrhage"), _case(2, 1, "haemorrhage"), _case(3, 1, "calcified_mass")]
    # columns: healthy, calcified_mass, haemorrhage; the healthy case's lesion guess is ignored
    probabilities = torch.tensor([[0.9, 0.01, 0.09], [0.2, 0.1, 0.7], [0.2, 0.5, 0.3], [0.1, 0.6, 0.3]])
    metrics, predictions = _type_results(TYPES, test, probabilities)
    assert predictions == [None, "haemorrhage", "calcified_mass", "calcified_mass"]
    assert metrics["type_accuracy"] == 2 / 3
    assert metrics["type_balanced_accuracy"] == (1 / 2 + 1) / 2  # haemorrhage recall 1/2, calcified 1


def _study_data(lesion_types: tuple[str, ...]) -> StudyData:
    """12 tiny volumes: bright blobs (haemorrhage) or dark ones (calcified) in half of each list."""
    rng = np.random.default_rng(0)
    images = torch.from_numpy(rng.normal(0, 0.1, (12, 1, 16, 16, 16)).astype(np.float32))
    cases, kinds = [], [None, "haemorrhage", None, "calcified_mass"]
    for row in range(12):
        kind = kinds[row % 4]
        if kind:
            images[row, 0, 5:10, 5:10, 5:10] += 0.8 if kind == "haemorrhage" else -0.8
        cases.append(_case(row, int(kind is not None), kind))
    return StudyData(
        images,
        torch.zeros((12, 1, 16, 16, 16), dtype=torch.bool),
        frozenset(),
        StudyCases(cases[:4], cases[4:8], cases[8:], [], lesion_types=lesion_types),
    )


def _config(tmp_path: Path) -> DownstreamConfig:
    trainer = TrainerSettings(
        network={"name": "densenet3d", "init_features": 4, "growth_rate": 4, "block_config": [1, 1]},
        steps=4,
        batch_size=2,
    )
    return DownstreamConfig(spatial_size=[16, 16, 16], classifier=trainer, out=tmp_path, conditions=["real"])


def test_a_typed_study_trains_one_class_per_type_and_records_type_metrics(tmp_path: Path) -> None:
    spec = RunSpec("classify", "real", "all", None, 0)
    typed = execute_run(spec, _config(tmp_path), _study_data(TYPES))
    assert typed["lesion_types"] == list(TYPES)
    assert len(typed["test_type_predictions"]) == 4 and typed["test_type_predictions"][0] is None
    assert set(typed["test_type_predictions"][1::2]) <= set(TYPES)
    assert 0.0 <= typed["metrics"]["type_balanced_accuracy"] <= 1.0 and 0.0 <= typed["metrics"]["auc"] <= 1.0
    assert all(0.0 <= score <= 1.0 for score in typed["test_scores"])
    binary = execute_run(spec, _config(tmp_path), _study_data(()))
    assert "lesion_types" not in binary and "type_accuracy" not in binary["metrics"]
    assert binary["checkpoint_sha256"] != typed["checkpoint_sha256"]  # a 3-class head, not the binary one
