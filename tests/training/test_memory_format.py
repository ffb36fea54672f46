"""Channels-last training: weights and batches re-laid, values unchanged, and the engine uses it on the CPU."""

from __future__ import annotations

import copy

import torch
from torch import nn

from medgan.config.loader import validate_config
from medgan.config.schema import ExperimentConfig
from medgan.training.distributed import DistributedContext
from medgan.training.engine import Trainer
from medgan.training.memory_format import (
    lay_out_batch,
    lay_out_weights,
    memory_format_for,
    resolve_channels_last,
)

CPU = DistributedContext(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))
CHANNELS_LAST = torch.channels_last_3d


def test_auto_means_on_for_the_cpu_and_off_for_cuda() -> None:
    assert resolve_channels_last("auto", torch.device("cpu")) is True
    assert resolve_channels_last("auto", torch.device("cuda")) is False
    assert resolve_channels_last(False, torch.device("cpu")) is False
    assert resolve_channels_last(True, torch.device("cuda")) is True
    assert memory_format_for(False) == torch.contiguous_format


def test_only_5d_tensors_are_re_laid_and_parameters_keep_their_identity() -> None:
    network = nn.Sequential(nn.Conv3d(2, 4, 3), nn.BatchNorm3d(4), nn.Conv2d(4, 4, 3), nn.Linear(3, 3))
    conv3d_weight, conv2d_weight = network[0].weight, network[2].weight
    values = conv3d_weight.detach().clone()
    lay_out_weights([network], CHANNELS_LAST)
    assert network[0].weight is conv3d_weight  # optimizers built before would still hold it
    assert conv3d_weight.is_contiguous(memory_format=CHANNELS_LAST) and not conv3d_weight.is_contiguous()
    assert torch.equal(conv3d_weight, values)
    assert conv2d_weight.is_contiguous() and network[3].weight.is_contiguous()
    batch = lay_out_batch({"image": torch.rand(2, 2, 4, 4, 4), "label": torch.tensor([0, 1])}, CHANNELS_LAST)
    assert batch["image"].is_contiguous(memory_format=CHANNELS_LAST) and batch["label"].is_contiguous()


def test_forward_and_gradients_agree_in_either_layout() -> None:
    """Same output and gradients to float rounding (Adam then amplifies rounding in near-zero gradients alike)."""
    torch.manual_seed(0)
    contiguous = nn.Sequential(nn.Conv3d(1, 8, 3, padding=1), nn.BatchNorm3d(8), nn.ReLU(), nn.Conv3d(8, 1, 3, padding=1))
    channels_last = copy.deepcopy(contiguous)
    lay_out_weights([channels_last], CHANNELS_LAST)
    source, target = torch.rand(2, 1, 12, 12, 12), torch.rand(2, 1, 12, 12, 12)
    outputs = []
    for network, memory_format in ((contiguous, torch.contiguous_format), (channels_last, CHANNELS_LAST)):
        batch = lay_out_batch({"source": source, "target": target}, memory_format)
        output = network(batch["source"])
        (output - batch["target"]).abs().mean().backward()
        outputs.append(output.detach())
    assert torch.allclose(outputs[0], outputs[1], atol=1e-5)
    for expected, actual in zip(contiguous.parameters(), channels_last.parameters(), strict=True):
        assert torch.allclose(expected.grad, actual.grad, rtol=1e-4, atol=1e-6)


def test_the_engine_lays_out_networks_and_batches_as_configured(tiny_experiment: dict, tmp_path) -> None:
    for setting, memory_format in (("auto", CHANNELS_LAST), (False, torch.contiguous_format)):
        raw = {**tiny_experiment, "train": {**tiny_experiment["train"], "channels_last": setting}}
        config = validate_config(raw, ExperimentConfig)
        trainer = Trainer(config, tmp_path / f"run_{setting}", CPU, quiet=True)
        weights = [p for net in trainer.networks.values() for p in net.parameters() if p.dim() == 5]
        assert weights and all(p.is_contiguous(memory_format=memory_format) for p in weights)
        batch = next(trainer._batches())
        images = [value for value in batch.values() if value.dim() == 5]
        assert images and all(value.is_contiguous(memory_format=memory_format) for value in images)
        stats, nonfinite = trainer.train_step(batch)
        assert not nonfinite and torch.isfinite(stats["G/loss"])
