"""torch.distributed set-up for the engine: who am I, which device, and small collective helpers.

``torchrun --nproc_per_node=N -m medgan train CONFIG`` sets RANK / WORLD_SIZE /
LOCAL_RANK; the engine then starts a process group (gloo on CPU, nccl on CUDA).
Without those variables everything here degrades to a single process.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from medgan.devices import resolve_device


@dataclass(frozen=True)
class DistributedContext:
    """This process's place in the job: rank, world size and the device it computes on."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    started_group: bool = False

    @property
    def is_main(self) -> bool:
        """True on rank 0, the process that logs and writes checkpoints."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """True when more than one process trains together."""
        return self.world_size > 1


def init_distributed(requested_device: str) -> DistributedContext:
    """Join the process group torchrun described in the environment (or run alone)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(requested_device, local_rank)
    started = False
    if world_size > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, timeout=datetime.timedelta(minutes=30))
        started = True
    return DistributedContext(rank, world_size, local_rank, device, started)


def shutdown_distributed(context: DistributedContext) -> None:
    """Leave the process group if this context started it."""
    if context.started_group and dist.is_initialized():
        dist.destroy_process_group()


def barrier(context: DistributedContext) -> None:
    """Wait for every rank (no-op alone)."""
    if context.distributed:
        dist.barrier()


def average_buffers(modules: Iterable[nn.Module], context: DistributedContext) -> None:
    """Average every floating buffer (batch-norm running statistics) over the ranks, in place.

    Each rank's batch norm updates its running statistics from its own batches, so
    the ranks' copies drift apart (the weights stay equal: DDP averages gradients).
    SyncBatchNorm would fix that on CUDA only; averaging after each step keeps every
    rank's (and the EMA's) statistics identical on gloo as well. No-op alone.
    """
    if not context.distributed:
        return
    for module in modules:
        for buffer in module.buffers():
            if buffer.is_floating_point():
                dist.all_reduce(buffer.data, op=dist.ReduceOp.SUM)
                buffer.data /= context.world_size


def average_gradients(parameters: Iterable[torch.Tensor], context: DistributedContext) -> None:
    """Average the gradients of ``parameters`` over the ranks, in place (what DDP does for wrapped modules).

    For phases DDP cannot wrap (double backward, e.g. R1). Parameters without a
    gradient on this rank take part with zeros, so every rank makes the same calls.
    No-op alone.
    """
    if not context.distributed:
        return
    for parameter in parameters:
        if parameter.grad is None:
            parameter.grad = torch.zeros_like(parameter)
        dist.all_reduce(parameter.grad, op=dist.ReduceOp.SUM)
        parameter.grad /= context.world_size


def any_rank_true(flag: bool, context: DistributedContext) -> bool:
    """True if ``flag`` is true on any rank, so every rank takes the same branch."""
    if not context.distributed:
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=context.device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item() > 0)
