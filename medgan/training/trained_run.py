"""Load a finished (or running) training run for inference: config, method, weights.

The translate job and evaluation only need "give me the generator of this run";
:func:`load_trained_run` rebuilds the method's networks from the run's saved
``config.yaml``, loads the newest checkpoint (the EMA weights where the method
keeps them, unless told otherwise) and records which exact weights and config
were used (SHA-256), so outputs can name their provenance. It also loads the
run's training data profile (``data_profile.json``, None for runs older than it),
which says at which voxel spacing the run was trained (:func:`trained_spacing_of`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from medgan.config.loader import config_sha256, load_config
from medgan.config.schema import ExperimentConfig
from medgan.data.profile import DataProfile
from medgan.errors import TrainingError
from medgan.io.hashing import sha256_files
from medgan.methods.base import GanMethod, get_method
from medgan.methods.capabilities import require_capability
from medgan.training.checkpoint import (
    EMA_FILE,
    NETWORKS_FILE,
    latest_checkpoint,
    load_checkpoint_weights,
    load_flat_state_dicts,
)
from medgan.training.run_layout import CHECKPOINTS_DIR, CONFIG_FILE, RunLayout

LOG = logging.getLogger(__name__)


def trained_spacing_of(
    config: ExperimentConfig, profile: DataProfile | None, *, warn: bool = True
) -> tuple[float, float, float] | None:
    """The voxel spacing (mm, RAS axis order) the network was trained at, or None when unknown.

    ``config.data.spacing`` when training resampled to it; else the median source
    spacing of the training images (``profile``), which training used natively;
    else None (a run older than the profile with native spacing: inputs are then
    translated at their own spacing, logged as a warning when ``warn``).
    """
    if config.data.spacing is not None:
        return tuple(float(v) for v in config.data.spacing)  # type: ignore[return-value]
    if profile is not None:
        return profile.source.median_spacing
    if warn:
        LOG.warning(
            "the run has no data_profile.json (trained before medgan wrote one) and no data.spacing: "
            "inputs are translated at their native spacing, whatever spacing the run was trained at"
        )
    return None


def load_run_profile(run_dir: str | Path) -> DataProfile | None:
    """The run's training data profile, or None when the run has none (older runs)."""
    path = RunLayout(Path(run_dir)).data_profile
    return DataProfile.load(path) if path.is_file() else None


@dataclass
class TrainedRun:
    """A trained method ready to translate: its config, networks (eval mode) and provenance."""

    config: ExperimentConfig
    method: GanMethod
    networks: dict[str, nn.Module]
    checkpoint_path: Path
    checkpoint_sha256: str
    config_sha256: str
    step: int
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    profile: DataProfile | None = None
    """The training data profile (``data_profile.json``); None for runs older than it."""

    @property
    def trained_spacing(self) -> tuple[float, float, float] | None:
        """The spacing the run was trained at (see :func:`trained_spacing_of`), None when unknown."""
        return trained_spacing_of(self.config, self.profile)

    def translate(self, source_net: torch.Tensor) -> torch.Tensor:
        """Translate a ``(B, 1, D, H, W)`` source batch in [-1, 1] to the target domain, no grad.

        Raises ConfigError when the run's method cannot translate (e.g. a sampler).
        """
        require_capability(self.method, "translate", job="translate")
        with torch.no_grad():
            return self.method.translate(self.networks, source_net.to(self.device))


def load_run_config(run_dir: str | Path) -> ExperimentConfig:
    """The run's saved config (TrainingError naming the folder when it is not a run folder)."""
    config_path = Path(run_dir) / CONFIG_FILE
    if not config_path.is_file():
        raise TrainingError(
            "not a training run folder: config.yaml is missing",
            path=run_dir,
            fix="pass the folder that `medgan train` created (it holds config.yaml and checkpoints/)",
        )
    return load_config(config_path, ExperimentConfig)


def load_trained_run(
    run_dir: str | Path,
    *,
    device: str | torch.device = "cpu",
    use_ema: bool = True,
    checkpoint: str | Path | None = None,
) -> TrainedRun:
    """Rebuild the run in ``run_dir`` from its ``config.yaml`` and newest checkpoint.

    ``use_ema`` loads the EMA copy of the networks the method keeps one for (the
    weights to infer with); the others come from the raw weights. ``checkpoint``
    picks a step folder (name or path) instead of ``checkpoints/latest``.
    Networks are in eval mode on ``device``. Raises TrainingError naming the run
    folder when it has no config or no checkpoint.
    """
    run_dir = Path(run_dir)
    config = load_run_config(run_dir)
    checkpoint_root = run_dir / CHECKPOINTS_DIR
    if checkpoint is None:
        step_dir = latest_checkpoint(checkpoint_root)
    else:
        step_dir = Path(checkpoint) if Path(checkpoint).is_absolute() else checkpoint_root / checkpoint
    if step_dir is None or not (step_dir / NETWORKS_FILE).is_file():
        raise TrainingError(
            "the run has no checkpoint to load",
            path=checkpoint_root,
            fix="train longer (checkpoints are written every train.checkpoint_every steps and at the end)",
        )
    method = get_method(config.method)(config)
    networks = method.build_networks()
    load_flat_state_dicts(networks, load_checkpoint_weights(step_dir, ema=False), step_dir / NETWORKS_FILE)
    used_files = [step_dir / NETWORKS_FILE]
    ema_names = [name for name in method.ema_networks() if name in networks]
    if use_ema and ema_names:
        ema_modules = {name: networks[name] for name in ema_names}
        load_flat_state_dicts(ema_modules, load_checkpoint_weights(step_dir, ema=True), step_dir / EMA_FILE)
        used_files.append(step_dir / EMA_FILE)
    torch_device = torch.device(device)
    for module in networks.values():
        module.to(torch_device).eval()
    return TrainedRun(
        config=config,
        method=method,
        networks=networks,
        checkpoint_path=step_dir,
        checkpoint_sha256=sha256_files(used_files),
        config_sha256=config_sha256(config),
        step=int(step_dir.name.split("_")[-1]),
        device=torch_device,
        profile=load_run_profile(run_dir),
    )
