"""Engine parts: precision choice, lr schedule, EMA maths, and the (seed, step)-determined patch stream."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from medgan.config.schema import ExperimentConfig
from medgan.data.streams import PatchGroup, PatchStream, PatchStreamSpec, StreamImage
from medgan.errors import ConfigError
from medgan.methods.pix2pix import Pix2Pix
from medgan.precision import resolve_precision
from medgan.training.ema import make_ema_copies, update_ema
from medgan.training.loader import StepBatchSampler
from medgan.training.optimizers import lr_multiplier


def test_precision_auto_is_fp32_on_cpu_and_fp16_needs_cuda() -> None:
    cpu = torch.device("cpu")
    assert resolve_precision("auto", cpu) == "fp32"
    assert resolve_precision("bf16", cpu) == "bf16"
    with pytest.raises(ConfigError, match="fp16"):
        resolve_precision("fp16", cpu)


def test_linear_decay_schedule() -> None:
    config = ExperimentConfig.model_validate({"train": {"steps": 10, "lr_decay_start": 0.5}})
    multipliers = [round(lr_multiplier(config.train, step), 3) for step in (0, 4, 5, 6, 9, 10)]
    assert multipliers == [1.0, 1.0, 1.0, 0.8, 0.2, 0.0]
    constant = ExperimentConfig.model_validate({"train": {"steps": 10, "lr_schedule": "constant"}})
    assert lr_multiplier(constant.train, 9) == 1.0


def test_ema_update_is_a_moving_average() -> None:
    networks = {"G": nn.Linear(2, 1, bias=False)}
    with torch.no_grad():
        networks["G"].weight.fill_(0.0)
    ema = make_ema_copies(networks, ("G",))
    assert not any(p.requires_grad for p in ema["G"].parameters())
    with torch.no_grad():
        networks["G"].weight.fill_(1.0)
    update_ema(ema, networks, decay=0.9)
    assert torch.allclose(ema["G"].weight, torch.full((1, 2), 0.1))
    update_ema(ema, networks, decay=0.0)
    assert torch.equal(ema["G"].weight, networks["G"].weight)


def test_step_sampler_gives_ranks_disjoint_draws_and_resumes_mid_way() -> None:
    rank0 = list(StepBatchSampler(0, 3, 2, rank=0, world_size=2))
    rank1 = list(StepBatchSampler(0, 3, 2, rank=1, world_size=2))
    assert rank0 == [[0, 1], [4, 5], [8, 9]] and rank1 == [[2, 3], [6, 7], [10, 11]]
    assert list(StepBatchSampler(2, 3, 2, rank=0, world_size=2)) == rank0[2:]


def test_patch_stream_draws_are_a_function_of_seed_and_index(tiny_experiment: dict) -> None:
    config = ExperimentConfig.model_validate(tiny_experiment)
    stream = Pix2Pix(config).training_stream(cache_dir=None)
    first, again, other = stream[5], stream[5], stream[6]
    assert first["source"].shape == (2, 1, 16, 16, 16) and set(first) == {"source", "target", "body_mask"}
    assert all(torch.equal(first[key], again[key]) for key in first)
    assert not torch.equal(first["source"], other["source"])
    assert set(first["body_mask"].unique().tolist()) <= {0.0, 1.0}
    mri, ct = StreamImage("mri_patch", "mri", "mri"), StreamImage("ct_patch", "ct", "ct")
    unpaired_spec = PatchStreamSpec((PatchGroup((mri,), body_mask="mri_body"), PatchGroup((ct,), body_mask="ct_body")))
    unpaired = PatchStream(unpaired_spec, config.data, seed=3, cache_dir=None)[5]
    assert set(unpaired) == set(unpaired_spec.batch_keys()) == {"mri_patch", "ct_patch", "mri_body", "ct_body"}


def test_patch_stream_keeps_integer_dtypes_of_labels_and_entry_values(tiny_experiment: dict) -> None:
    config = ExperimentConfig.model_validate(tiny_experiment)
    image = StreamImage("image", "ct", "ct")
    spec = PatchStreamSpec((PatchGroup((image,), label_patch="tissue", entry_values=(("class_label", "grade"),)),))
    datalist = json.loads(config.data.datalist.read_text())
    for index, entry in enumerate(datalist["training"]):
        entry["grade"] = index + 1
    relabelled = config.data.datalist.parent / "graded_datalist.json"
    relabelled.write_text(json.dumps(datalist))
    data = config.data.model_copy(update={"datalist": relabelled})
    draw = PatchStream(spec, data, seed=0, cache_dir=None)[0]
    assert draw["image"].dtype == torch.float32 and draw["tissue"].dtype == torch.int64
    assert set(draw["tissue"].unique().tolist()) <= {0, 1, 2}
    assert draw["class_label"].dtype == torch.int64 and draw["class_label"].shape == (2,)
    assert int(draw["class_label"][0]) in {1, 2}


def test_patch_stream_volume_gives_one_chosen_volume_with_its_entry_values(tiny_experiment: dict) -> None:
    config = ExperimentConfig.model_validate(tiny_experiment)
    image = StreamImage("image", "ct", "ct")
    spec = PatchStreamSpec((PatchGroup((image,), entry_values=(("class_label", "grade"),)),))
    datalist = json.loads(config.data.datalist.read_text())
    for index, entry in enumerate(datalist["training"]):
        entry["grade"] = 10 + index
    relabelled = config.data.datalist.parent / "graded_volumes.json"
    relabelled.write_text(json.dumps(datalist))
    stream = PatchStream(spec, config.data.model_copy(update={"datalist": relabelled}), seed=0, cache_dir=None)
    grades = [int(stream.volume(index)["class_label"][0]) for index in range(len(stream.subjects))]
    assert grades == [10 + index for index in range(len(datalist["training"]))]
    assert torch.equal(stream.volume(1, 7)["image"], stream.volume(1, 7)["image"])
    with pytest.raises(IndexError, match="volume 99"):
        stream.volume(99)


def test_ema_rampup_caps_the_half_life_at_a_fraction_of_the_steps_so_far() -> None:
    from medgan.training.ema import ema_decay_at

    assert ema_decay_at(0.999, 5, start_step=10) == 0.0 and ema_decay_at(0.0, 50) == 0.0
    assert ema_decay_at(0.999, 50) == 0.999  # no ramp-up: constant
    early = ema_decay_at(0.999, 599, rampup=0.05)  # 600 steps: half-life 30 steps
    assert early == pytest.approx(0.5 ** (1 / 30))
    assert ema_decay_at(0.999, 100_000, rampup=0.05) == 0.999  # late: the configured decay
    decays = [ema_decay_at(0.999, step, rampup=0.05) for step in range(0, 20_000, 500)]
    assert decays == sorted(decays)
