"""Bulk-density baseline: a method like any other, trained by the real engine, fitting true tissue HU."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from head_volumes import CT_HU, LABEL_AIR, LABEL_SKULL, write_heads

from medgan.config.schema import ExperimentConfig
from medgan.errors import ConfigError
from medgan.methods.base import get_method
from medgan.methods.bulk_density import BulkDensity
from medgan.models import BulkDensity3D
from medgan.training import load_trained_run
from pipelines.train import run_training

STEPS = 60


def bulk_config(datalist: Path | str = "datalist.json") -> dict:
    """Bulk density on 16^3 patches: lr 0.02 reaches every class value within ~30 steps."""
    return {
        "method": "bulk_density",
        "data": {
            "datalist": str(datalist),
            "patch_size": [16, 16, 16],
            "samples_per_volume": 2,
            "validation_volumes": 1,
        },
        "model": {"generator": {"name": "bulk_density3d", "dark_threshold": -0.8, "closing_radius": 2}},
        "train": {
            "steps": STEPS,
            "batch_size": 2,
            "seed": 0,
            "lr": {"G": 0.02},
            "device": "cpu",
            "precision": "fp32",
            "checkpoint_every": STEPS,
            "validate_every": 0,
            "log_every": 10,
            "sample_every": 0,
        },
        "inference": {"roi_size": [16, 16, 16], "sw_batch_size": 2},
    }


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One bulk-density run on four tiny heads (three train, one validates)."""
    root = tmp_path_factory.mktemp("bulk_density")
    datalist = write_heads(root / "data", subjects=4, size=32)
    config_path = root / "bulk_density.yaml"
    config_path.write_text(yaml.safe_dump(bulk_config(datalist)))
    return run_training(config_path, run_dir=root / "run", quiet=True)


def metrics(run_dir: Path, kind: str) -> list[dict]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [row for row in rows if row["kind"] == kind]


def test_registered_paired_method_with_one_phase() -> None:
    method = get_method("bulk_density")(ExperimentConfig.model_validate(bulk_config()))
    assert isinstance(method, BulkDensity) and method.pairing == "paired"
    assert [(phase.name, phase.trains) for phase in method.phases()] == [("G", ("G",))]
    assert method.ema_networks() == () and method.inference_network_names() == ("G",)
    networks = method.build_networks()
    assert set(networks) == {"G"} and isinstance(networks["G"], BulkDensity3D)


def test_needs_the_bulk_density_network() -> None:
    config = bulk_config()
    config["model"]["generator"] = {"name": "unet3d"}
    with pytest.raises(ConfigError, match="bulk_density3d"):
        BulkDensity(ExperimentConfig.model_validate(config))


def test_engine_fits_the_class_values_to_the_training_hu(trained_run: Path) -> None:
    rows = metrics(trained_run, "train")
    assert [row["step"] for row in rows] == list(range(10, STEPS + 1, 10))
    first, last = rows[0], rows[-1]
    assert last["G/loss"] < 0.5 * first["G/loss"]
    # Medians of the training CT per class: air -1000 HU, skull 1200 HU, soft tissue between
    # the scalp (-90 HU) and the brain (35 HU); noise is 15 HU.
    assert last["G/value_air"] == pytest.approx(CT_HU[LABEL_AIR], abs=40)
    assert last["G/value_bone"] == pytest.approx(CT_HU[LABEL_SKULL], abs=60)
    assert last["G/value_bone"] > 500 and last["G/value_air"] < -800
    assert -90 <= last["G/value_soft_tissue"] <= 35
    validation = metrics(trained_run, "validation")[-1]
    assert validation["val/mae_ct"] < 100  # mean absolute error in HU on the held-out head


def test_trained_run_translates_through_the_common_interface(trained_run: Path) -> None:
    run = load_trained_run(trained_run)
    assert run.config.method == "bulk_density"
    source = torch.rand(2, 1, 16, 24, 32) * 2 - 1
    pseudo_ct = run.translate(source)
    assert pseudo_ct.shape == source.shape
    assert pseudo_ct.min() >= -1 and pseudo_ct.max() <= 1
    # exactly three values: one per class
    assert torch.unique(pseudo_ct).numel() <= 3
