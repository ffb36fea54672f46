"""medgan.training: the one training engine for every method, and loading trained runs.

``Trainer`` (``medgan.training.engine``) runs a method's phases with checkpoints,
resume, EMA, mixed precision, torch.distributed and logging; the job that drives it
is ``pipelines.train.run_training``. ``load_trained_run`` rebuilds a run's networks
from its folder for inference.
"""

from medgan.training.trained_run import TrainedRun, load_trained_run

__all__ = ["TrainedRun", "load_trained_run"]
