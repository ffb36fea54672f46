"""The one training engine: runs any method's update phases with everything around them.

The method (``medgan.methods``) says what to optimise; the engine owns how:
optimizers (one AdamW per phase, lr from ``train.lr[phase]``), the lr schedule,
devices, autocast, DistributedDataParallel, EMA, checkpoints and resume, the
non-finite guard, validation, montages and logging.

Per step, as in the StyleGAN2-ADA loop: for each phase due at this step, only the
networks it trains require grad; the method computes the phase loss; the engine
backpropagates, checks loss and gradient norm for NaN/Inf (agreed across ranks)
and steps that phase's optimizer, or skips it. Under DDP each trained network is
called through its DDP wrapper (gradients are averaged across ranks) while frozen
networks are called directly, so no reducer waits for gradients that never come.

Determinism: the torch / numpy / python RNGs are re-seeded from (seed, step, rank)
at every step and the data stream is a function of (seed, step), so a run resumed
from a checkpoint reproduces an uninterrupted run bit for bit (on the same device).

Non-finite steps are skipped and counted; after ``train.max_nonfinite_in_row`` in
a row the engine reloads the last good checkpoint's weights, EMA and optimizer
state with every lr multiplied by ``train.restore_lr_factor`` and carries on from
the current step (so the data that broke it is not replayed), or raises
TrainingError when ``nonfinite_action`` is ``stop`` or restores are used up.
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
from medgan.errors import ConfigError, TrainingError
from medgan.methods.base import Batch, GanMethod, Phase, get_method
from medgan.training.checkpoint import (
    capture_rng_states,
    latest_checkpoint,
    load_checkpoint_state,
    load_checkpoint_weights,
    load_flat_state_dicts,
    restore_rng_states,
    save_checkpoint,
)
from medgan.training.data import build_train_loader, load_validation_volumes
from medgan.training.distributed import DistributedContext, any_rank_true, barrier
from medgan.training.ema import make_ema_copies, update_ema
from medgan.training.monitor import RunMonitor
from medgan.training.precision import autocast, resolve_precision
from medgan.training.trained_run import CHECKPOINTS_DIR
from medgan.training.validation import validate, write_montage

SAMPLES_DIR = "samples"


def step_seed(seed: int, step: int, rank: int) -> int:
    """A well-mixed 63-bit seed for (seed, step, rank)."""
    return int(np.random.SeedSequence([seed, step, rank]).generate_state(2, dtype=np.uint64)[0] >> 1)


def lr_multiplier(config: ExperimentConfig, step: int) -> float:
    """Schedule factor at ``step``: 1, or linear decay to 0 after ``lr_decay_start * steps``."""
    train = config.train
    if train.lr_schedule == "constant":
        return 1.0
    decay_start = int(train.lr_decay_start * train.steps)
    if step < decay_start:
        return 1.0
    return max(0.0, 1.0 - (step - decay_start) / max(train.steps - decay_start, 1))


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
        self.config, self.run_dir, self.context = config, Path(run_dir), context
        self.quiet = quiet
        self.device = context.device
        self.checkpoint_root = self.run_dir / CHECKPOINTS_DIR
        self.precision = resolve_precision(config.train.precision, self.device)
        self.method = method or get_method(config.method)(config)
        self.phases: tuple[Phase, ...] = self.method.phases()
        torch.manual_seed(config.train.seed)  # same initial weights on every rank
        self.networks = {name: module.to(self.device) for name, module in self.method.build_networks().items()}
        self.ema_networks = make_ema_copies(self.networks, self.method.ema_networks())
        self.phase_params = {phase.name: self._trainable_parameters(phase) for phase in self.phases}
        self.base_lr = self._phase_learning_rates()
        self.optimizers = {
            phase.name: torch.optim.AdamW(
                self.phase_params[phase.name],
                lr=self.base_lr[phase.name],
                betas=config.train.betas,
                weight_decay=config.train.weight_decay,
            )
            for phase in self.phases
        }
        self.grad_scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")
        self.ddp_networks = self._wrap_ddp()
        self.step = 0
        self.lr_scale = 1.0
        self.nonfinite_total = 0
        self.nonfinite_in_row = 0
        self.restores = 0
        self.fresh = not resume
        if resume:
            self._resume()
        elif self.context.is_main and latest_checkpoint(self.checkpoint_root) is not None:
            raise TrainingError(
                "this run folder already has checkpoints",
                path=self.run_dir,
                fix="pass --resume to continue it, or choose a new --run-dir",
            )

    # ---- set-up -------------------------------------------------------------------------------------

    def _trainable_parameters(self, phase: Phase) -> list[nn.Parameter]:
        unknown = [name for name in phase.trains if name not in self.networks]
        if unknown:
            raise TrainingError(f"phase {phase.name!r} trains unknown networks {unknown}")
        seen: set[int] = set()
        params = []
        for name in phase.trains:
            for param in self.networks[name].parameters():
                if id(param) not in seen:
                    seen.add(id(param))
                    params.append(param)
        return params

    def _phase_learning_rates(self) -> dict[str, float]:
        lr = self.config.train.lr
        missing = sorted({phase.optimizer_key for phase in self.phases} - set(lr))
        if missing:
            raise ConfigError(
                f"train.lr has no learning rate for phase(s) {missing} of method {self.config.method!r} "
                f"(it has {sorted(lr)})",
                fix=f"set train.lr.{missing[0]}=0.0002 (one entry per phase: "
                f"{', '.join(p.optimizer_key for p in self.phases)})",
            )
        return {phase.name: lr[phase.optimizer_key] for phase in self.phases}

    def _wrap_ddp(self) -> dict[str, nn.Module]:
        if not self.context.distributed:
            return {}
        trained = {name for phase in self.phases for name in phase.trains}
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        return {
            name: DistributedDataParallel(self.networks[name], device_ids=device_ids)
            for name in sorted(trained)
        }

    # ---- checkpoints --------------------------------------------------------------------------------

    def _state(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "optimizers": {name: optimizer.state_dict() for name, optimizer in self.optimizers.items()},
            "grad_scaler": self.grad_scaler.state_dict(),
            "lr_scale": self.lr_scale,
            "nonfinite_total": self.nonfinite_total,
            "restores": self.restores,
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
                path=self.checkpoint_root,
                fix="lower train.lr or use precision fp32",
            )
        saved = None
        if self.context.is_main:
            saved = save_checkpoint(
                self.checkpoint_root,
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
        if restore_counters:
            self.step = int(state["step"])
            self.lr_scale = float(state["lr_scale"])
            self.nonfinite_total = int(state["nonfinite_total"])
            self.restores = int(state["restores"])
            restore_rng_states(state["rng"])

    def _resume(self) -> None:
        step_dir = latest_checkpoint(self.checkpoint_root)
        if step_dir is None:
            raise TrainingError(
                "--resume given but the run has no checkpoint yet",
                path=self.checkpoint_root,
                fix="drop --resume to start this run from scratch",
            )
        self._load(step_dir, restore_counters=True)

    def _restore_last_good(self) -> None:
        step_dir = latest_checkpoint(self.checkpoint_root)
        train = self.config.train
        if train.nonfinite_action == "stop" or step_dir is None or self.restores >= train.max_restores:
            reason = (
                "nonfinite_action is 'stop'"
                if train.nonfinite_action == "stop"
                else ("there is no checkpoint to restore" if step_dir is None else f"{self.restores} restores used up")
            )
            raise TrainingError(
                f"{self.nonfinite_in_row} non-finite steps in a row at step {self.step} ({reason})",
                path=self.run_dir,
                fix="lower train.lr, use precision fp32, or check the data for NaN/Inf voxels",
            )
        self._load(step_dir, restore_counters=False)
        self.restores += 1
        self.lr_scale *= train.restore_lr_factor
        self.nonfinite_in_row = 0
        self.monitor.message(
            f"step {self.step}: restored {step_dir.name} after non-finite steps; lr scale now {self.lr_scale:.4g}"
        )

    # ---- one step ----------------------------------------------------------------------------------

    def _set_learning_rates(self) -> dict[str, float]:
        factor = lr_multiplier(self.config, self.step) * self.lr_scale
        for name, optimizer in self.optimizers.items():
            for group in optimizer.param_groups:
                group["lr"] = self.base_lr[name] * factor
        return {f"lr/{name}": self.base_lr[name] * factor for name in self.optimizers}

    def _seed_step(self) -> None:
        seed = step_seed(self.config.train.seed, self.step, self.context.rank)
        torch.manual_seed(seed)
        random.seed(seed)
        np.random.seed(seed % 2**32)  # noqa: NPY002  (third-party code draws from the global stream)

    def train_step(self, batch: Batch) -> tuple[dict[str, float], bool]:
        """Run every phase due at the current step on ``batch``; return logs and whether any was non-finite."""
        self._seed_step()
        logs: dict[str, float] = {}
        any_nonfinite = False
        clip = self.config.train.grad_clip_norm or math.inf
        for phase in self.phases:
            if not phase.is_due(self.step):
                continue
            for name, module in self.networks.items():
                module.requires_grad_(name in phase.trains)
                module.train()
            optimizer = self.optimizers[phase.name]
            optimizer.zero_grad(set_to_none=True)
            view = {
                name: self.ddp_networks.get(name, module) if name in phase.trains else module
                for name, module in self.networks.items()
            }
            with autocast(self.precision, self.device):
                loss, phase_logs = self.method.phase_loss(phase.name, view, batch)
            self.grad_scaler.scale(loss).backward()
            self.grad_scaler.unscale_(optimizer)
            grad_norm = torch.nn.utils.clip_grad_norm_(self.phase_params[phase.name], clip)
            finite = bool(torch.isfinite(loss.detach())) and (
                self.grad_scaler.is_enabled() or bool(torch.isfinite(grad_norm))
            )
            if any_rank_true(not finite, self.context):
                optimizer.zero_grad(set_to_none=True)
                any_nonfinite = True
                logs[f"{phase.name}/nonfinite"] = 1.0
            else:
                self.grad_scaler.step(optimizer)
            self.grad_scaler.update()
            logs |= {f"{phase.name}/{key}": value for key, value in phase_logs.items()}
            logs[f"{phase.name}/grad_norm"] = float(grad_norm)
        for module in self.networks.values():
            module.requires_grad_(True)
        return logs, any_nonfinite

    def _after_good_step(self) -> None:
        train = self.config.train
        decay = train.ema_decay if self.step >= train.ema_start_step else 0.0
        update_ema(self.ema_networks, self.networks, decay)

    # ---- the loop ----------------------------------------------------------------------------------

    def _due(self, every: int) -> bool:
        return every > 0 and self.step % every == 0

    def _inference_view(self) -> dict[str, nn.Module]:
        return {**self.networks, **self.ema_networks}

    def _validate_and_sample(
        self, validation_volumes: list, last_batch: Batch | None, *, do_validate: bool, do_sample: bool
    ) -> None:
        if not self.context.is_main:
            return
        networks = self._inference_view()
        rows: dict[str, torch.Tensor] = {}
        if validation_volumes:
            metrics, rows = validate(
                self.method, networks, validation_volumes, self.config, self.device, self.precision
            )
            if do_validate:
                self.monitor.log(self.step, metrics, kind="validation")
        elif last_batch is not None:
            with torch.no_grad(), autocast(self.precision, self.device):
                outputs = self.method.sample_outputs(networks, {k: v[:1] for k, v in last_batch.items()})
            rows = {name: outputs[name][0, 0] for name in ("source", "prediction", "target")}
        if do_sample and rows:
            path = self.run_dir / SAMPLES_DIR / f"step_{self.step:06d}.png"
            write_montage(rows, self.config, path, self.step)

    def _batches(self) -> Iterator[Batch]:
        loader, _ = build_train_loader(
            self.config,
            self.method.pairing,
            start_step=self.step,
            rank=self.context.rank,
            world_size=self.context.world_size,
            cache_dir=self.config.data.cache_dir or self.run_dir / "cache",
        )
        for batch in loader:
            yield {key: value.to(self.device, non_blocking=True) for key, value in batch.items()}

    def fit(self) -> Path:
        """Train until ``train.steps``; returns the run folder."""
        train = self.config.train
        self.monitor = RunMonitor(
            self.run_dir, enabled=self.context.is_main, quiet=self.quiet, start_step=self.step, total_steps=train.steps
        )
        try:
            validation_volumes = load_validation_volumes(self.config) if self.context.is_main else []
            if self.fresh:
                self.save()  # the initial weights: what a restore falls back to before the first save
            self._set_learning_rates()
            recent_logs: dict[str, float] = {}
            # loader wait (next(batches), incl. the cache fill on the first step) vs the whole step
            # (wait + train_step + EMA; validation and checkpoints excluded), summed per log interval
            data_wait_s = step_s = 0.0
            step_started = time.perf_counter()
            for batch in self._batches():
                data_wait_s += time.perf_counter() - step_started
                step_logs, nonfinite = self.train_step(batch)
                self.step += 1
                if nonfinite:
                    self.nonfinite_total += 1
                    self.nonfinite_in_row += 1
                    self.monitor.message(f"step {self.step}: non-finite loss or gradient, step skipped")
                    if self.nonfinite_in_row >= train.max_nonfinite_in_row:
                        self._restore_last_good()
                else:
                    self.nonfinite_in_row = 0
                    self._after_good_step()
                step_s += time.perf_counter() - step_started
                recent_logs = {k: v for k, v in step_logs.items() if k.endswith("/loss")}
                lrs = self._set_learning_rates()
                final = self.step >= train.steps
                if self._due(train.log_every) or final:
                    rate = self.monitor.steps_per_second(self.step)
                    scalars = step_logs | lrs | {"nonfinite_total": float(self.nonfinite_total), "it_per_s": rate}
                    scalars |= {"time/data_wait_s": data_wait_s, "time/step_s": step_s}
                    scalars["time/data_wait_fraction"] = data_wait_s / max(step_s, 1e-9)
                    data_wait_s = step_s = 0.0
                    self.monitor.log(self.step, scalars)
                    self.monitor.advance(self.step, recent_logs, rate)
                else:
                    self.monitor.advance(self.step, recent_logs, None)
                do_validate = self._due(train.validate_every) or final
                do_sample = self._due(train.sample_every) or final
                if do_validate or do_sample:
                    self._validate_and_sample(validation_volumes, batch, do_validate=do_validate, do_sample=do_sample)
                if self._due(train.checkpoint_every) or final:
                    self.save()
                step_started = time.perf_counter()
            return self.run_dir
        finally:
            self.monitor.close()
