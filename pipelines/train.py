"""The `medgan train` job: config in, run folder out.

A thin composition: load and validate the experiment config (with ``--set``
overrides), pick the run folder, join torch.distributed when launched by
torchrun, save the resolved config and the training data profile
(``data_profile.json``: spacing, field of view, intensities of the training
images, used by the translate job), and hand over to the training engine. With
``dry_run`` it checks the config, the data and the networks (and prints parameter
counts and the resolved config) without training.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Sequence
from pathlib import Path

import torch.distributed as dist

from medgan.config.loader import config_to_yaml, load_config, save_resolved_config
from medgan.config.schema import ExperimentConfig
from medgan.data.profile import DataProfile, build_data_profile
from medgan.errors import TrainingError
from medgan.methods import get_method
from medgan.methods.capabilities import capabilities_of
from medgan.training.distributed import DistributedContext, init_distributed, shutdown_distributed
from medgan.training.engine import Trainer, count_parameters
from medgan.training.health import health_summary
from medgan.training.run_layout import CONFIG_FILE, RunLayout

LOG = logging.getLogger(__name__)

RUNS_ROOT = Path("runs")


def _newest_run(config_path: Path) -> Path:
    candidates = sorted(RUNS_ROOT.glob(f"{config_path.stem}-*"), key=lambda p: p.stat().st_mtime)
    candidates = [c for c in candidates if (c / CONFIG_FILE).is_file()]
    if not candidates:
        raise TrainingError(
            f"--resume without --run-dir found no run of {config_path.name} under {RUNS_ROOT}/",
            path=config_path,
            fix="pass --run-dir RUN_FOLDER to say which run to continue",
        )
    return candidates[-1]


def default_run_dir(config_path: Path, *, resume: bool) -> Path:
    """``runs/<config stem>-<timestamp>``; with ``resume`` the newest existing run of this config."""
    if resume:
        return _newest_run(config_path)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return RUNS_ROOT / f"{config_path.stem}-{stamp}"


def _agree_on_run_dir(run_dir: Path, context: DistributedContext) -> Path:
    """Every rank uses rank 0's run folder (timestamps may differ between processes)."""
    if not context.distributed:
        return run_dir
    shared = [str(run_dir)]
    dist.broadcast_object_list(shared, src=0)
    return Path(shared[0])


def profile_training_data(config: ExperimentConfig) -> DataProfile:
    """The data profile of the run's training split (source images, and target images for reference)."""
    data = config.data
    (source_key, source_modality), target = get_method(config.method)(config).profiled_images()
    return build_data_profile(
        data.datalist,
        split=data.train_split,
        source_key=source_key,
        source_modality=source_modality,
        target_key=target[0] if target else None,
        target_modality=target[1] if target else None,
    )


def write_data_profile(config: ExperimentConfig, layout: RunLayout, *, keep_existing: bool = False) -> Path:
    """Write ``data_profile.json``; with ``keep_existing`` (resume) a profile already there is kept as it is.

    A resumed run keeps the profile it began with; one resumed from before profiles
    existed gets one now.
    """
    if keep_existing and layout.data_profile.is_file():
        return layout.data_profile
    profile = profile_training_data(config)
    LOG.info(
        "training data profile: %d %r image(s), median spacing %s, smallest field of view %s",
        profile.source.n_entries,
        profile.source.key,
        " x ".join(f"{v:g}" for v in profile.source.median_spacing),
        " x ".join(f"{v:g}" for v in profile.source.min_fov_mm),
    )
    return profile.save(layout.data_profile)


def dry_run_report(config: ExperimentConfig) -> str:
    """Validate data and networks without training; return the report text."""
    method = get_method(config.method)(config)
    networks = method.build_networks()
    draw = method.training_stream(cache_dir=None)[0]
    validation = method.validation_set()
    capabilities = ", ".join(capabilities_of(method)) or "none"
    lines = ["resolved config:", config_to_yaml(config).rstrip(), "", f"method: {config.method} (can: {capabilities})"]
    lines += [f"  {name}: {count:,} parameters" for name, count in count_parameters(networks).items()]
    phases = ", ".join(
        f"{phase.name} (trains {'+'.join(phase.trains)}, optimizer {phase.optimizer_key}"
        + (f", every {phase.interval} steps)" if phase.interval > 1 else ")")
        for phase in method.phases()
    )
    lines.append(f"  phases: {phases}")
    shapes = ", ".join(
        f"{key} {tuple(value.shape)} {str(value.dtype).replace('torch.', '')}" for key, value in draw.items()
    )
    lines.append(f"data: one draw gives {shapes}; {len(validation)} validation volume(s) checked")
    lines.append("dry run: nothing trained")
    return "\n".join(lines)


def run_training(
    config_path: str | Path,
    *,
    run_dir: str | Path | None = None,
    resume: bool = False,
    overrides: Sequence[str] = (),
    dry_run: bool = False,
    quiet: bool = False,
) -> Path:
    """Train the experiment in ``config_path``; returns the run folder.

    ``run_dir`` defaults to ``runs/<config stem>-<timestamp>`` (with ``resume``:
    the newest run of this config). ``resume`` continues from the run's latest
    checkpoint exactly where it stopped. ``overrides`` are ``section.key=value``
    strings. ``dry_run`` validates config, data and networks, prints a report and
    trains nothing. ``quiet`` replaces the progress bar with plain log lines.
    """
    config_path = Path(config_path)
    config = load_config(config_path, ExperimentConfig, overrides)
    get_method(config.method)  # unknown method -> ConfigError before anything else
    if dry_run:
        print(dry_run_report(config), flush=True)
        return Path(run_dir) if run_dir else default_run_dir(config_path, resume=False)
    context = init_distributed(config.train.device)
    try:
        chosen = Path(run_dir) if run_dir else default_run_dir(config_path, resume=resume)
        chosen = _agree_on_run_dir(chosen, context)
        layout = RunLayout(chosen)
        if resume and not layout.config.is_file():
            raise TrainingError("--resume given but this is not a run folder", path=chosen, fix="check --run-dir")
        if not resume:
            layout.require_fresh()
        if context.is_main:
            chosen.mkdir(parents=True, exist_ok=True)
            save_resolved_config(config, layout.config)
            write_data_profile(config, layout, keep_existing=resume)
        trainer = Trainer(config, chosen, context, resume=resume, quiet=quiet)
        run = trainer.fit()
        if context.is_main:
            print(health_summary(layout.health), flush=True)
        return run
    finally:
        shutdown_distributed(context)
