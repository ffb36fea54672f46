"""Bulk-density baseline: a method like any other, trained by the real engine, fitting true tissue HU."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from head_volumes import CT_HU, LABEL_AIR, LABEL_SKULL, write_heads
from phase_calls import run_phase

from medgan.config.schema import ExperimentConfig
from medgan.data.presets import get_preset
from medgan.errors import ConfigError
from medgan.methods.base import InferenceContext, SampleVolume, get_method
from medgan.methods.bulk_density import BulkDensity, BulkDensityOptions
from medgan.models import BulkDensity3D
from medgan.models.bulk_density import CLASS_NAMES
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
    assert method.optimizer_names() == ("G",) and method.build_state() == {}
    networks = method.build_networks()
    assert set(networks) == {"G"} and isinstance(networks["G"], BulkDensity3D)


def test_options_are_bulk_densitys_own() -> None:
    config = ExperimentConfig.model_validate(bulk_config())
    assert isinstance(config.model, BulkDensityOptions)
    assert config.model.generator["closing_radius"] == 2
    for foreign in ({"discriminator": {"name": "patchgan3d"}}, {"losses": {"lambda_l1": 100.0}}):
        raw = bulk_config()
        raw["model"].update(foreign)
        with pytest.raises(ConfigError, match="bulk_density") as caught:
            ExperimentConfig.model_validate(raw)
        (key,) = foreign
        assert f"model.{key}" in str(caught.value) and "pix2pix" in str(caught.value)


def test_learning_rate_defaults_to_the_methods_and_names_only_g() -> None:
    raw = bulk_config()
    raw["train"]["lr"] = None
    assert ExperimentConfig.model_validate(raw).train.lr == {"G": BulkDensity.default_lr} == {"G": 1e-2}
    raw["train"]["lr"] = {"G": 0.02, "D": 2e-4}
    with pytest.raises(ConfigError, match="bulk_density") as caught:
        ExperimentConfig.model_validate(raw)
    assert "not an optimizer: ['D']" in str(caught.value)


def test_fit_loss_is_the_whole_patch_l1_and_reports_the_class_values() -> None:
    method = BulkDensity(ExperimentConfig.model_validate(bulk_config()))
    networks = method.build_networks()
    source = torch.linspace(-1, 1, 2 * 16**3).view(2, 1, 16, 16, 16)
    target = torch.full_like(source, 0.25)
    loss, stats = run_phase(method, "G", networks, {"source": source, "target": target})
    with torch.no_grad():
        expected = (networks["G"](source) - target).abs().mean()
    assert float(stats["loss"]) == pytest.approx(float(expected)) == pytest.approx(loss.item())
    assert set(stats) == {"loss", "value_air", "value_soft_tissue", "value_bone"}
    class_values = networks["G"].class_values.detach()
    # CT: reported in HU through the ct preset
    expected_hu = get_preset("ct").from_network(class_values.clamp(-1, 1))
    for index, name in enumerate(CLASS_NAMES):
        assert float(stats[f"value_{name}"]) == pytest.approx(float(expected_hu[index]))
    loss.backward()
    assert networks["G"].class_values.grad is not None and networks["G"].class_values.grad.abs().sum() > 0


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


def test_validation_outputs_metrics_and_montage_rows(trained_run: Path) -> None:
    run = load_trained_run(trained_run)
    method = run.method
    (item,) = method.validation_set()  # data.validation_volumes: 1
    outputs = method.infer_outputs(run.networks, item, InferenceContext(torch.device("cpu"), "fp32"))
    assert set(outputs) == {"source", "prediction", "target", "body_mask"}
    assert outputs["prediction"].shape == item["source"].shape == outputs["target"].shape
    assert torch.unique(outputs["prediction"]).numel() > 1 and outputs["prediction"].abs().max() <= 1
    assert method.validation_metrics() == {
        "mae_net": "mae_net",
        "ssim": "ssim",
        "psnr": "psnr",
        "mae_ct": "mae_physical",
    }
    rows = method.sample_volumes(outputs)
    assert tuple(rows) == method.sample_names() == ("mri", "ct pred", "ct real", "|error| (net)")
    assert all(isinstance(row, SampleVolume) and row.volume.shape == item["source"].shape[2:] for row in rows.values())
    ct_window = get_preset("ct").fixed_window
    assert rows["ct real"].window == (ct_window.low, ct_window.high)  # the target rows are shown in HU
    assert float(rows["ct real"].volume.min()) < -500 and float(rows["ct real"].volume.max()) > 500
    assert rows["mri"].window == (-1.0, 1.0)
