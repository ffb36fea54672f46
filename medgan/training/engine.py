"""The one training engine: runs any method's update phases with everything around them.

The method (``medgan.methods``) says what to optimise and on what data; the
engine owns how, and knows no task: optimizers (:mod:`.optimizers`), the lr
schedule, devices, autocast, DistributedDataParallel, EMA, checkpoints and
resume, the non-finite guard (:mod:`.guard`), statistics (:mod:`.stats`),
training health (:mod:`.health`), validation and montages (:mod:`.validation`).

Per step, as in the StyleGAN2-ADA loop: for each phase due at this step, only the
networks it trains require grad; the phase's loss function gets a
:class:`~medgan.methods.base.PhaseContext` (step, phase, gain, the method's state
slot); the engine backpropagates, checks loss and gradient norm for NaN/Inf
(agreed across ranks) and steps the phase's optimizer, or skips it. After the
phases, the method's end-of-step hook sees the step's statistics. Under DDP each
trained network is called through its DDP wrapper (gradients are averaged across
ranks) while frozen networks are called directly, so no reducer waits for
gradients that never come.

Determinism: the torch / numpy / python RNGs are re-seeded from (seed, step, rank)
at every step and the data stream is a function of (seed, step), so a run resumed
from a checkpoint (weights, optimizers, method state, counters, RNG states)
reproduces an uninterrupted run bit for bit (on the same device).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from medgan.config.schema import ExperimentConfig
from medgan.errors import TrainingError
from medgan.methods.base import Batch, GanMethod, InferenceContext, Phase, PhaseContext, StepContext, get_method
from medgan.precision import autocast, resolve_precision
from medgan.training.checkpoint import (
    capture_rng_states,
    latest_checkpoint,
    load_checkpoint_state,
    load_checkpoint_weights,
    load_flat_state_dicts,
    restore_rng_states,
    save_checkpoint,
)
from medgan.training.distributed import (
    DistributedContext,
    any_rank_true,
    average_buffers,
    average_gradients,
    barrier,
)
from medgan.training.ema import ema_decay_at, make_ema_copies, update_ema
from medgan.training.guard import NonFiniteGuard
from medgan.training.health import SHORT_WORD, VERDICT_CODE, HealthMonitor
from medgan.training.loader import build_step_loader
from medgan.training.monitor import RunMonitor
from medgan.training.optimizers import (
    build_optimizers,
    lr_multiplier,
    phase_parameters,
    plan_optimizers,
    set_learning_rates,
)
from medgan.training.run_layout import RunLayout
from medgan.training.stats import StatsAccumulator
from medgan.training.validation import batch_outputs, validate, write_samples


def step_seed(seed: int, step: int, rank: int) -> int:
    """A well-mixed 63-bit seed for (seed, step, rank)."""
    return int(np.random.SeedSequence([seed, step, rank]).generate_state(2, dtype=np.uint64)[0] >> 1)


def count_parameters(networks: dict[str, nn.Module]) -> dict[str, int]:
    """Number of parameters per network."""
    return {name: sum(p.numel() for p in module.parameters()) for name, module in networks.items()}


class Trainer:
    """Trains one method from a config inside one run folder (see the module docstring)."""

    def __init__(
        self,
        config: ExperimentConfig,
        run_dir: Path,
        context: DistributedContext,
        *,
        resume: bool = False,
        quiet: bool = False,
        method: GanMethod | None = None,
    ) -> None:
        self.config, self.layout, self.context = config, RunLayout(Path(run_dir)), context
        self.run_dir = self.layout.root
        self.quiet = quiet
        self.device = context.device
        self.precision = resolve_precision(config.train.precision, self.device)
        self.method = method or get_method(config.method)(config)
        self.phases: tuple[Phase, ...] = self.method.phases()
        torch.manual_seed(config.train.seed)  # same initial weights on every rank
        self.networks = {name: module.to(self.device) for name, module in self.method.build_networks().items()}
        self.ema_networks = make_ema_copies(self.networks, self.method.ema_networks())
        self.method_state = {
            name: state.to(self.device) if isinstance(state, nn.Module) else state
            for name, state in self.method.build_state().items()
        }
        self.phase_params = {phase.name: phase_parameters(phase, self.networks) for phase in self.phases}
        plans = plan_optimizers(self.phases, self.networks, config.train)
        self.base_lr = {plan.name: plan.lr for plan in plans}
        self.optimizers = build_optimizers(plans, config.train.weight_decay)
        self.grad_scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")
        self.ddp_networks = self._wrap_ddp()
        self.step = 0
        self.guard = NonFiniteGuard(config.train)
        self.health = HealthMonitor(
            self.layout.health, config.train.health, log_every=config.train.log_every, enabled=context.is_main
        )
        self.fresh = not resume
        if resume:
            self._resume()
        elif self.context.is_main:
            self.layout.require_fresh()

    def _wrap_ddp(self) -> dict[str, nn.Module]:
        if not self.context.distributed:
            return {}
        trained = {name for phase in self.phases for name in phase.trains}
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        return {name: DistributedDataParallel(self.networks[name], device_ids=device_ids) for name in sorted(trained)}

    # ---- checkpoints --------------------------------------------------------------------------------

    def _state(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "optimizers": {name: optimizer.state_dict() for name, optimizer in self.optimizers.items()},
            "grad_scaler": self.grad_scaler.state_dict(),
            "method_state": {name: state.state_dict() for name, state in self.method_state.items()},
            "guard": self.guard.state_dict(),
            "health": self.health.state_dict(),
            "rng": capture_rng_states(),
            "world_size": self.context.world_size,
        }

    def _weights_finite(self) -> bool:
        modules = list(self.networks.values()) + list(self.ema_networks.values())
        return all(torch.isfinite(t).all() for m in modules for t in m.state_dict().values() if t.is_floating_point())

    def save(self) -> Path | None:
        """Checkpoint the current step on rank 0 (every rank waits); refuses non-finite weights."""
        if not self._weights_finite():
            raise TrainingError(
                f"weights became non-finite by step {self.step}; not saving them",
                path=self.layout.checkpoints,
                fix="lower train.lr or use precision fp32",
            )
        saved = None
        if self.context.is_main:
            saved = save_checkpoint(
                self.layout.checkpoints,
                self.step,
                self.networks,
                self.ema_networks,
                self._state(),
                keep_last=self.config.train.keep_checkpoints,
            )
        barrier(self.context)
        return saved

    def _load(self, step_dir: Path, *, restore_counters: bool) -> None:
        load_flat_state_dicts(self.networks, load_checkpoint_weights(step_dir, ema=False), step_dir)
        load_flat_state_dicts(self.ema_networks, load_checkpoint_weights(step_dir, ema=True), step_dir)
        state = load_checkpoint_state(step_dir)
        for name, optimizer in self.optimizers.items():
            optimizer.load_state_dict(state["optimizers"][name])
        if state["grad_scaler"]:
            self.grad_scaler.load_state_dict(state["grad_scaler"])
        saved_method_state = state.get("method_state", {})
        missing = sorted(set(self.method_state) - set(saved_method_state))
        if missing:
            raise TrainingError(
                f"checkpoint has no method state {missing}",
                path=step_dir,
                fix="resume with the config the run was trained with",
            )
        for name, method_state in self.method_state.items():
            method_state.load_state_dict(saved_method_state[name])
        if restore_counters:
            self.step = int(state["step"])
            self.guard.load_state_dict(state["guard"])
            self.health.load_state_dict(state.get("health", {}))
            restore_rng_states(state["rng"])

    def _resume(self) -> None:
        step_dir = latest_checkpoint(self.layout.checkpoints)
        if step_dir is None:
            raise TrainingError(
                "--resume given but the run has no checkpoint yet",
                path=self.layout.checkpoints,
                fix="drop --resume to start this run from scratch",
            )
        self._load(step_dir, restore_counters=True)

    def _restore_last_good(self) -> None:
        step_dir = latest_checkpoint(self.layout.checkpoints)
        self.guard.begin_restore(self.step, step_dir, self.run_dir)
        assert step_dir is not None  # begin_restore raised otherwise
        self._load(step_dir, restore_counters=False)
        self.monitor.message(
            f"step {self.step}: restored {step_dir.name} after non-finite steps; lr scale now {self.guard.lr_scale:.4g}"
        )

    # ---- one step ----------------------------------------------------------------------------------

    def _set_learning_rates(self) -> dict[str, float]:
        factor = lr_multiplier(self.config.train, self.step) * self.guard.lr_scale
        return set_learning_rates(self.optimizers, self.base_lr, factor)

    def _seed_step(self) -> None:
        seed = step_seed(self.config.train.seed, self.step, self.context.rank)
        torch.manual_seed(seed)
        random.seed(seed)
        np.random.seed(seed % 2**32)  # noqa: NPY002  (third-party code draws from the global stream)

    def train_step(self, batch: Batch) -> tuple[dict[str, torch.Tensor], bool]:
        """Run every phase due now on ``batch``; return the step's statistics and whether any phase was non-finite."""
        self._seed_step()
        stats: dict[str, torch.Tensor] = {}
        any_nonfinite = False
        clip = self.config.train.grad_clip_norm or math.inf
        for phase in self.phases:
            if not phase.is_due(self.step):
                continue
            for name, module in self.networks.items():
                module.requires_grad_(name in phase.trains)
                module.train()
            optimizer = self.optimizers[phase.optimizer_key]
            optimizer.zero_grad(set_to_none=True)
            wrapped = {} if phase.double_backward else self.ddp_networks
            view = {
                name: wrapped.get(name, module) if name in phase.trains else module
                for name, module in self.networks.items()
            }
            phase_context = PhaseContext(self.step, phase, float(phase.interval), self.method_state)
            with autocast(self.precision, self.device):
                loss, phase_stats = phase.loss(phase_context, view, batch)
            self.grad_scaler.scale(loss).backward()
            if phase.double_backward:
                average_gradients(self.phase_params[phase.name], self.context)
            self.grad_scaler.unscale_(optimizer)
            grad_norm = torch.nn.utils.clip_grad_norm_(self.phase_params[phase.name], clip)
            finite = torch.isfinite(loss.detach())
            if not self.grad_scaler.is_enabled():
                finite = finite & torch.isfinite(grad_norm)
            if any_rank_true(not bool(finite), self.context):
                optimizer.zero_grad(set_to_none=True)
                any_nonfinite = True
                stats[f"{phase.name}/nonfinite"] = torch.ones(())
            else:
                self.grad_scaler.step(optimizer)
            self.grad_scaler.update()
            for key, value in phase_stats.items():
                stats[key if key.startswith("health/") else f"{phase.name}/{key}"] = value
            stats[f"{phase.name}/grad_norm"] = grad_norm.detach()
        for module in self.networks.values():
            module.requires_grad_(True)
        if not any_nonfinite:
            self.method.end_of_step(StepContext(self.step, self.method_state), stats)
        return stats, any_nonfinite

    def _after_good_step(self) -> None:
        train = self.config.train
        decay = ema_decay_at(train.ema_decay, self.step, rampup=train.ema_rampup, start_step=train.ema_start_step)
        average_buffers(self.networks.values(), self.context)
        update_ema(self.ema_networks, self.networks, decay)

    # ---- the loop ----------------------------------------------------------------------------------

    def _due(self, every: int) -> bool:
        return every > 0 and self.step % every == 0

    def _inference_view(self) -> dict[str, nn.Module]:
        return {**self.networks, **self.ema_networks}

    def _validate_and_sample(
        self, validation_items: list, last_batch: Batch, *, do_validate: bool, do_sample: bool
    ) -> None:
        if not self.context.is_main:
            return
        networks = self._inference_view()
        inference = InferenceContext(self.device, self.precision)
        with torch.no_grad():
            if validation_items:
                metrics, outputs = validate(self.method, networks, validation_items, self.config, inference)
                if do_validate:
                    self.monitor.log(self.step, metrics, kind="validation")
            else:
                outputs = batch_outputs(self.method, networks, last_batch, inference)
        if do_sample and outputs:
            rows = self.method.sample_volumes(outputs)
            write_samples(rows, self.layout.sample(self.step), f"{self.config.method} step {self.step}")

    def _batches(self) -> Iterator[Batch]:
        cache_dir = self.config.data.cache_dir or self.layout.cache
        stream = self.method.training_stream(cache_dir)
        loader = build_step_loader(
            stream, self.config, start_step=self.step, rank=self.context.rank, world_size=self.context.world_size
        )
        for batch in loader:
            yield {key: value.to(self.device, non_blocking=True) for key, value in batch.items()}

    def _log_interval(self, accumulator: StatsAccumulator, lrs: dict[str, float], timing: dict[str, float]) -> None:
        scalars = accumulator.reduce()
        verdict = self.health.update(self.step, scalars)
        rate = self.monitor.steps_per_second(self.step)
        scalars |= lrs | {"nonfinite_total": float(self.guard.total), "it_per_s": rate}
        scalars |= {"time/data_wait_s": timing["wait"], "time/step_s": timing["step"]}
        scalars["time/data_wait_fraction"] = timing["wait"] / max(timing["step"], 1e-9)
        scalars["health/verdict_code"] = float(VERDICT_CODE[verdict])
        self.monitor.log(self.step, scalars)
        shown = {key: value for key, value in scalars.items() if key.endswith("/loss")}
        self.monitor.advance(self.step, shown, rate, status=SHORT_WORD[verdict])

    def fit(self) -> Path:
        """Train until ``train.steps``; returns the run folder."""
        train = self.config.train
        self.monitor = RunMonitor(
            self.run_dir, enabled=self.context.is_main, quiet=self.quiet, start_step=self.step, total_steps=train.steps
        )
        if self.context.is_main and not self.fresh:
            self.health.resume(self.step)
        try:
            validation_items = list(self.method.validation_set()) if self.context.is_main else []
            if self.fresh:
                self.save()  # the initial weights: what a restore falls back to before the first save
            self._set_learning_rates()
            accumulator = StatsAccumulator()
            # loader wait (next(batches), incl. the cache fill on the first step) vs the whole step
            # (wait + train_step + EMA; validation and checkpoints excluded), summed per log interval
            timing = {"wait": 0.0, "step": 0.0}
            step_started = time.perf_counter()
            for batch in self._batches():
                timing["wait"] += time.perf_counter() - step_started
                step_stats, nonfinite = self.train_step(batch)
                self.step += 1
                if nonfinite:
                    self.monitor.message(f"step {self.step}: non-finite loss or gradient, step skipped")
                if self.guard.record(nonfinite):
                    self._restore_last_good()
                elif not nonfinite:
                    self._after_good_step()
                accumulator.add(step_stats)
                timing["step"] += time.perf_counter() - step_started
                lrs = self._set_learning_rates()
                final = self.step >= train.steps
                if self._due(train.log_every) or final:
                    self._log_interval(accumulator, lrs, timing)
                    timing = {"wait": 0.0, "step": 0.0}
                else:
                    self.monitor.advance(self.step, None, None)
                do_validate = self._due(train.validate_every) or final
                do_sample = self._due(train.sample_every) or final
                if do_validate or do_sample:
                    self._validate_and_sample(validation_items, batch, do_validate=do_validate, do_sample=do_sample)
                if self._due(train.checkpoint_every) or final:
                    self.save()
                step_started = time.perf_counter()
            return self.run_dir
        finally:
            self.monitor.close()
