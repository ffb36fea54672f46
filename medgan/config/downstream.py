"""The downstream study's config (``medgan downstream CONFIG``): which data, which conditions, which grid.

Every key has a description; unknown keys are errors naming the key and the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from medgan.config.loader import StrictModel

CONDITIONS = ("real", "classical", "synthetic", "synthetic_classical", "negative_control")
Condition = Literal["real", "classical", "synthetic", "synthetic_classical", "negative_control"]
Task = Literal["classify", "detect"]


def _default_classifier() -> dict[str, Any]:
    return {"name": "densenet3d", "init_features": 16, "growth_rate": 8, "block_config": [2, 4, 4]}


def _default_detector() -> dict[str, Any]:
    return {"name": "segresnet3d", "init_filters": 8, "blocks_down": [1, 2, 2], "blocks_up": [1, 1]}


class TrainerSettings(StrictModel):
    """How one task's network is trained in every run (the same budget in every condition)."""

    network: dict[str, Any] = Field(description="Registered network: {name: ..., constructor arguments}.")
    steps: int = Field(300, ge=1, description="Optimiser steps per run, whatever the training set size.")
    batch_size: int = Field(8, ge=1, description="Volumes per step.")
    lr: float = Field(1e-3, gt=0, description="Adam learning rate.")
    weight_decay: float = Field(1e-4, ge=0, description="Adam weight decay.")


class DownstreamConfig(StrictModel):
    """Train a lesion classifier / detector with and without synthetic data; compare on held-out real cases."""

    datalist: Path = Field(Path("sample_data/datalist.json"), description="Datalist JSON of the real cases.")
    train_split: str = Field("training", description="List the real training cases are drawn from (per seed).")
    validation_split: str = Field(
        "validation", description="List that fixes the operating point (threshold); never used for training."
    )
    test_split: str = Field("test", description="List of held-out real cases every run is scored on.")
    synthetic_datalist: Path | None = Field(
        None,
        description="Datalist of the synthetic cases (an `enrich` or `generate` output: entries flagged "
        '"synthetic": true); null: the synthetic entries of `datalist`.',
    )
    synthetic_split: str = Field("training", description="List of synthetic_datalist holding the synthetic cases.")
    images: dict[str, str] = Field(
        default_factory=lambda: {"mri": "mri"},
        description="Datalist key -> intensity preset of the network's input channels (e.g. {mri: mri, ct: ct}).",
    )
    label_key: str = Field("label", description="Datalist key of the class: 0 = healthy, 1 = lesion.")
    lesion_mask_key: str = Field("lesion_mask", description="Datalist key of lesion masks (needed by detect).")
    lesion_type_key: str | None = Field(
        "lesion_type",
        description="Datalist key of a lesion case's type: classify then also tells the types apart (when every "
        "lesion case has one and >= 2 occur); null: lesion / no lesion only.",
    )
    spacing: list[float] | None = Field(None, description="Resample to this spacing in mm (null: keep the files').")
    spatial_size: list[int] = Field(
        [48, 48, 48], description="Every volume is body-cropped, then padded / cropped to this size (voxels)."
    )
    tasks: list[Task] = Field(["classify"], description="classify (lesion / no lesion) and / or detect (masks).")
    conditions: list[Condition] = Field(list(CONDITIONS), description="Conditions to train (see README).")
    n_real: list[int | Literal["all"]] = Field(
        [8, 16, 32, "all"], description="Real training case counts swept at reference_ratio."
    )
    ratios: list[float] = Field([0.5, 1.0, 2.0, 4.0], description="Synthetic-to-real ratios swept at reference_n_real.")
    reference_n_real: int = Field(16, ge=2, description="Real case count of the ratio sweep.")
    reference_ratio: float = Field(1.0, gt=0, description="Synthetic-to-real ratio of the n_real sweep.")
    repeats: int = Field(5, ge=1, description="Seeds per cell: real cases, synthetic cases and weights drawn anew.")
    seed: int = Field(
        0, ge=0, description="Study seed; run seeds derive from (seed, condition, n_real, ratio, repeat)."
    )
    classifier: TrainerSettings = Field(
        default_factory=lambda: TrainerSettings(network=_default_classifier()), description="classify's trainer."
    )
    detector: TrainerSettings = Field(
        default_factory=lambda: TrainerSettings(network=_default_detector(), steps=300, batch_size=4),
        description="detect's trainer (a segmentation network returning one logit map).",
    )
    fp_rates: list[float] = Field([0.25, 0.5, 1.0, 2.0], description="False positives per scan of the FROC points.")
    n_boot: int = Field(1000, ge=100, description="Bootstrap replicates of every interval.")
    workers: int | Literal["auto"] = Field(
        "auto", description="Parallel run processes (auto: one per 4 CPU cores, at least 1)."
    )
    out: Path = Field(Path("downstream"), description="Output folder (runs, downstream.json, plots).")

    @field_validator("images")
    @classmethod
    def _some_images(cls, images: dict[str, str]) -> dict[str, str]:
        if not images:
            raise ValueError("name at least one input image, e.g. {mri: mri}")
        return images

    @field_validator("spatial_size")
    @classmethod
    def _three_sizes(cls, size: list[int]) -> list[int]:
        if len(size) != 3 or any(edge < 16 for edge in size):
            raise ValueError("spatial_size needs three edges of >= 16 voxels, e.g. [48, 48, 48]")
        return size

    @model_validator(mode="after")
    def _consistent(self) -> DownstreamConfig:
        if "real" not in self.conditions:
            raise ValueError("conditions must include real: every comparison is paired against it")
        if not self.tasks:
            raise ValueError("name at least one task: classify and / or detect")
        if any(isinstance(n, int) and n < 2 for n in self.n_real):
            raise ValueError("every n_real must be >= 2 (one healthy and one lesion case) or 'all'")
        if any(ratio <= 0 for ratio in self.ratios):
            raise ValueError("ratios must be > 0")
        if isinstance(self.workers, int) and self.workers < 1:
            raise ValueError("workers must be >= 1 or auto")
        return self
