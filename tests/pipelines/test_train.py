"""`run_training`: dry run, run-folder rules (default name, resume, refusing to overwrite), config errors."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import yaml

from medgan.errors import ConfigError, TrainingError
from pipelines.train import run_training


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two tiny paired heads (a bone shell around brain) and a 2-step pix2pix config."""
    root = tmp_path_factory.mktemp("train_job")
    grid = np.stack(np.meshgrid(*[np.arange(16)] * 3, indexing="ij")) - 7.5
    radius = np.sqrt((grid**2).sum(0))
    labels = np.where(radius < 6, 2, 0) + np.where(radius < 4.5, -1, 0)
    entries = []
    for index in range(2):
        folder = root / f"subject_{index}"
        folder.mkdir()
        ct = np.select([labels == 2, labels == 1], [1200.0, 40.0], -1000.0) + index
        mri = np.select([labels == 2, labels == 1], [80.0, 600.0], 5.0) + index
        for name, volume in (("mri", mri), ("ct", ct), ("labels", labels)):
            image = nib.Nifti1Image(volume.astype(np.float32), np.diag([3.0, 3.0, 3.0, 1.0]))
            nib.save(image, folder / f"{name}.nii.gz")
        entries.append({"subject": folder.name, **{k: f"{folder.name}/{k}.nii.gz" for k in ("mri", "ct", "labels")}})
    (root / "datalist.json").write_text(json.dumps({"training": entries[:1], "validation": entries[1:]}))
    config = {
        "data": {"datalist": str(root / "datalist.json"), "patch_size": [16, 16, 16], "samples_per_volume": 1},
        "model": {
            "generator": {"name": "unet3d", "channels": [4, 8], "strides": [2], "num_res_units": 0},
            "discriminator": {"name": "patchgan3d", "channels": 4, "num_layers_d": 2},
        },
        "train": {"steps": 2, "batch_size": 1, "device": "cpu", "checkpoint_every": 1, "log_every": 1},
        "inference": {"roi_size": [16, 16, 16]},
    }
    path = root / "pix2pix_tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_dry_run_reports_and_trains_nothing(tiny_config: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run_dir = run_training(tiny_config, run_dir=tmp_path / "run", dry_run=True)
    report = capsys.readouterr().out
    assert "G:" in report and "parameters" in report and "D:" in report
    assert "resolved config:" in report and "steps: 2" in report and "dry run: nothing trained" in report
    assert not run_dir.exists()


def test_default_run_dir_resume_and_no_silent_overwrite(
    tiny_config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    run_dir = run_training(tiny_config, quiet=True, overrides=["train.steps=1"])
    assert re.fullmatch(r"pix2pix_tiny-\d{8}-\d{6}", run_dir.name) and run_dir.parent == Path("runs")
    with pytest.raises(TrainingError, match="already has checkpoints"):
        run_training(tiny_config, run_dir=run_dir, quiet=True)
    profile_path = run_dir / "data_profile.json"
    profile = json.loads(profile_path.read_text())  # written at run start
    assert profile["split"] == "training" and profile["source"]["key"] == "mri"
    profile["source"]["median_spacing"] = [3.0, 3.0, 3.0]  # as it was when the run began
    profile_path.write_text(json.dumps(profile))
    resumed = run_training(tiny_config, resume=True, quiet=True)  # newest run of this config
    assert resumed == run_dir
    assert json.loads(profile_path.read_text()) == profile  # a resumed run keeps its profile
    assert (run_dir / "checkpoints" / "latest").read_text().strip() == "step_000002"
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert saved["train"]["steps"] == 2  # the resolved config of the continued run


def test_resume_without_checkpoint_is_an_error(tiny_config: Path, tmp_path: Path) -> None:
    with pytest.raises(TrainingError, match="not a run folder"):
        run_training(tiny_config, run_dir=tmp_path / "empty", resume=True, quiet=True)


def test_config_errors_name_the_key(tiny_config: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="train.stepz"):
        run_training(tiny_config, overrides=["train.stepz=3"], dry_run=True)
    with pytest.raises(ConfigError, match="train.lr must name exactly the optimizers"):
        run_training(tiny_config, run_dir=tmp_path / "run", overrides=["train.lr={G: 0.001}"], quiet=True)
    with pytest.raises(ConfigError, match="unknown method"):
        run_training(tiny_config, overrides=["method=pix3pix"], dry_run=True)


@pytest.mark.ddp
@pytest.mark.slow
def test_torchrun_dash_m_medgan_trains_with_two_processes(tmp_path, tiny_pix2pix_overrides):
    """`torchrun --nproc_per_node=2 -m medgan train` reaches the engine through the CLI; rank 0 reports."""
    repo = Path(__file__).resolve().parents[2]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    tiny = [
        "train.steps=2",
        *tiny_pix2pix_overrides,
        f"data.datalist={repo / 'sample_data' / 'datalist.json'}",
    ]
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--master_addr=127.0.0.1",
        f"--master_port={port}",
        "-m",
        "medgan",
        "train",
        str(repo / "configs" / "pix2pix_mri2ct.yaml"),
        "--run-dir",
        str(tmp_path / "run"),
        "--quiet",
        *[arg for item in tiny for arg in ("--set", item)],
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=240, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("run folder:") == 1
    assert (tmp_path / "run" / "checkpoints" / "step_000002" / "networks.safetensors").is_file()
