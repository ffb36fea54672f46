"""medgan.training: the one training engine for every method, and loading trained runs.

``train_experiment`` runs a method's phases with checkpoints, resume, EMA, mixed
precision, torch.distributed and logging; ``load_trained_run`` rebuilds a run's
networks from its folder for inference.
"""

from medgan.training.trained_run import TrainedRun, load_trained_run

__all__ = ["TrainedRun", "load_trained_run"]
