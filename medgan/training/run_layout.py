"""The one home of the run-folder layout: what a training run writes where.

Why one place: the engine writes these paths, the train job and the translate
job read them, and the "already has checkpoints" rule must be the same wherever
a run is started. A run folder holds::

    config.yaml          the resolved config (only the keys the method reads)
    checkpoints/         step_XXXXXX/{networks,ema}.safetensors + state.pt, and `latest`
    metrics.jsonl        one JSON object per logged step and per validation
    health.json          training-health verdicts (medgan.training.health)
    tensorboard/         TensorBoard events
    samples/             step_XXXXXX.png sample montages
    cache/               the disk cache of preprocessed volumes (data.cache: disk)
    data_profile.json    spacing, field of view and intensities of the training images
                         (medgan.data.profile), written at run start; the translate job
                         resamples to the trained spacing and checks inputs against it
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from medgan.errors import TrainingError

LATEST_FILE = "latest"

CONFIG_FILE = "config.yaml"
CHECKPOINTS_DIR = "checkpoints"
METRICS_FILE = "metrics.jsonl"
HEALTH_FILE = "health.json"
TENSORBOARD_DIR = "tensorboard"
SAMPLES_DIR = "samples"
CACHE_DIR = "cache"
DATA_PROFILE_FILE = "data_profile.json"


@dataclass(frozen=True)
class RunLayout:
    """The paths of one run folder."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / CONFIG_FILE

    @property
    def checkpoints(self) -> Path:
        return self.root / CHECKPOINTS_DIR

    @property
    def metrics(self) -> Path:
        return self.root / METRICS_FILE

    @property
    def health(self) -> Path:
        return self.root / HEALTH_FILE

    @property
    def tensorboard(self) -> Path:
        return self.root / TENSORBOARD_DIR

    @property
    def cache(self) -> Path:
        return self.root / CACHE_DIR

    @property
    def data_profile(self) -> Path:
        return self.root / DATA_PROFILE_FILE

    def sample(self, step: int) -> Path:
        """The montage PNG of ``step``."""
        return self.root / SAMPLES_DIR / f"step_{step:06d}.png"

    def has_checkpoints(self) -> bool:
        """True when the run already saved a checkpoint (``checkpoints/latest`` exists)."""
        return (self.checkpoints / LATEST_FILE).is_file()

    def require_fresh(self) -> None:
        """Refuse to start a new run over one that has checkpoints (TrainingError with the fix)."""
        if self.has_checkpoints():
            raise TrainingError(
                "this run folder already has checkpoints",
                path=self.root,
                fix="pass --resume to continue it, or choose a new --run-dir",
            )
