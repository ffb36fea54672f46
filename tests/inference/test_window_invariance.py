"""A trained translator gives the same volume whatever the window settings (the speed settings)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from tiny_data import tiny_method_config

from medgan.data.datalist import load_datalist
from medgan.inference import InferencePlan, SlidingWindowSettings, VolumeTranslator
from medgan.io import read_volume
from medgan.training import load_trained_run
from pipelines.train import run_training


@pytest.fixture(scope="module")
def batch_norm_run(tiny_datalist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny pix2pix U-Net with batch norm (the translation default), trained 10 steps by the real engine."""
    root = tmp_path_factory.mktemp("invariance")
    config = tiny_method_config(tiny_datalist, steps=10, validate_every=0, sample_every=0, checkpoint_every=10)
    config["model"]["generator"] = {**config["model"]["generator"], "norm": "batch"}
    config_path = root / "config.yaml"
    config_path.write_text(yaml.safe_dump(config))
    return run_training(config_path, run_dir=root / "run", quiet=True)


def translate_all(run_dir: Path, datalist: Path, window: SlidingWindowSettings) -> list[tuple[np.ndarray, np.ndarray]]:
    run = load_trained_run(run_dir)
    translator = VolumeTranslator.from_config(run.translate, run.config, plan=InferencePlan(window))
    results = []
    for entry in load_datalist(datalist, "training"):
        body = read_volume(entry["labels"]).numpy()[0] > 0
        results.append((translator(entry["mri"]).numpy()[0], body))
    return results


def test_window_size_overlap_and_batch_do_not_change_the_pseudo_ct(batch_norm_run: Path, tiny_datalist: Path) -> None:
    small = translate_all(batch_norm_run, tiny_datalist, SlidingWindowSettings((8, 8, 8), 0.5, sw_batch_size=3))
    whole = translate_all(batch_norm_run, tiny_datalist, SlidingWindowSettings((64, 64, 64), 0.0, sw_batch_size=1))
    differences = [float(np.abs(a - b)[body].mean()) for (a, body), (b, _) in zip(small, whole, strict=True)]
    spread = [float(a[body].std()) for a, body in whole]
    assert max(differences) < 5.0, differences  # HU, the target on real heads
    assert min(spread) > 5.0  # the network's output varies: the agreement is not of two constants
    without_context = translate_all(batch_norm_run, tiny_datalist, SlidingWindowSettings((8, 8, 8), 0.5, context=0))
    changed = [float(np.abs(a - b)[body].mean()) for (a, body), (b, _) in zip(without_context, whole, strict=True)]
    assert max(changed) > max(differences)  # the context is what keeps small windows faithful
