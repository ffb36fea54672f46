"""The method contract: what every registered method must do to train in the one engine.

Each check takes a config dict (a tiny config of the method, see tests/tiny_data.py)
and raises AssertionError when the method breaks the contract. They are plain
functions so that tests/methods/test_contract.py can run them on every registered
method and, with ``pytest.raises(AssertionError)``, show that they catch broken toy
methods.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from safetensors.torch import load_file

from medgan.config.loader import validate_config
from medgan.config.schema import ExperimentConfig
from medgan.errors import ConfigError
from medgan.evaluation.metric_registry import compute_metrics, get_metric
from medgan.methods.base import GanMethod, InferenceContext, get_method, known_methods
from medgan.training.distributed import DistributedContext
from medgan.training.engine import Trainer

CPU = DistributedContext(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))


def build(config_dict: dict) -> tuple[ExperimentConfig, GanMethod]:
    """The validated config and the method built from it."""
    config = validate_config(config_dict, ExperimentConfig)
    return config, get_method(config.method)(config)


def check_networks_and_phases(config_dict: dict) -> None:
    """Networks build; phases train only known networks and cover every optimizer and every trainable network."""
    config, method = build(config_dict)
    networks = method.build_networks()
    assert networks and all(isinstance(module, torch.nn.Module) for module in networks.values())
    phases = method.phases()
    assert phases, "a method needs at least one phase"
    trained = {name for phase in phases for name in phase.trains}
    assert trained <= set(networks), f"phases train unknown networks {trained - set(networks)}"
    with_parameters = {name for name, module in networks.items() if any(True for _ in module.parameters())}
    assert with_parameters <= trained, f"networks no phase trains: {with_parameters - trained}"
    assert set(method.optimizer_names()) == set(config.train.lr), "train.lr must name exactly the optimizers"
    assert set(method.ema_networks()) <= set(networks)


def check_one_step_is_finite(config_dict: dict, run_dir: Path) -> None:
    """One training step on the method's own stream gives finite losses and statistics."""
    config, method = build(config_dict)
    trainer = Trainer(config, run_dir, CPU, quiet=True, method=method)
    batch = next(trainer._batches())
    stats, nonfinite = trainer.train_step(batch)
    assert not nonfinite, "the first step was non-finite"
    assert stats, "phases reported no statistics"
    for key, value in stats.items():
        assert isinstance(value, torch.Tensor), f"statistic {key!r} is a {type(value).__name__}, not a tensor"
        if not key.startswith("health/diversity"):  # undefined (NaN) for a batch of one
            assert torch.isfinite(value).all(), f"statistic {key!r} is not finite"


def _train(config_dict: dict, run_dir: Path, *, steps: int, resume: bool) -> Path:
    config = validate_config({**config_dict, "train": {**config_dict["train"], "steps": steps}}, ExperimentConfig)
    Trainer(config, run_dir, CPU, resume=resume, quiet=True, method=get_method(config.method)(config)).fit()
    return run_dir / "checkpoints" / f"step_{steps:06d}"


def _equal_nested(expected: object, actual: object, where: str) -> None:
    if isinstance(expected, torch.Tensor):
        assert isinstance(actual, torch.Tensor) and torch.equal(expected, actual), f"{where} differs after resume"
    elif isinstance(expected, dict):
        assert isinstance(actual, dict) and expected.keys() == actual.keys(), f"{where}: keys differ after resume"
        for key in expected:
            _equal_nested(expected[key], actual[key], f"{where}.{key}")
    elif isinstance(expected, list | tuple):
        assert len(expected) == len(actual), f"{where}: lengths differ after resume"
        for index, (left, right) in enumerate(zip(expected, actual, strict=True)):
            _equal_nested(left, right, f"{where}[{index}]")
    elif isinstance(expected, float) and math.isnan(expected):
        assert isinstance(actual, float) and math.isnan(actual), f"{where} differs after resume"
    else:
        assert expected == actual, f"{where} differs after resume: {expected!r} != {actual!r}"


def check_resume_is_exact(config_dict: dict, root: Path) -> None:
    """2 steps + resume to 4 equals 4 straight steps bit for bit: weights, EMA, optimizers, method state."""
    straight = _train(config_dict, root / "straight", steps=4, resume=False)
    _train(config_dict, root / "stopped", steps=2, resume=False)
    resumed = _train(config_dict, root / "stopped", steps=4, resume=True)
    for name in ("networks.safetensors", "ema.safetensors"):
        _equal_nested(load_file(str(straight / name)), load_file(str(resumed / name)), name)
    expected = torch.load(straight / "state.pt", weights_only=True)
    actual = torch.load(resumed / "state.pt", weights_only=True)
    for part in ("step", "optimizers", "method_state", "guard"):
        _equal_nested(expected[part], actual[part], part)


def check_metrics_and_samples(config_dict: dict) -> None:
    """Declared validation metrics and montage rows come back with the declared keys."""
    config, method = build(config_dict)
    networks = method.build_networks()
    for module in networks.values():
        module.eval()
    items = list(method.validation_set())
    if not items:  # no validation data: the montage comes from a training batch
        draw = method.training_stream(cache_dir=None)[0]
        items = [{key: value[:1] for key, value in draw.items()}]
    declared = method.validation_metrics()
    for metric_name in declared.values():
        get_metric(metric_name)  # every declared metric is registered
    outputs = method.infer_outputs(networks, items[0], InferenceContext(torch.device("cpu"), "fp32"))
    metrics = compute_metrics(declared, [outputs], config)
    assert set(metrics) == set(declared), f"metrics {set(metrics)} != declared {set(declared)}"
    assert all(math.isfinite(value) for value in metrics.values()), f"non-finite metrics {metrics}"
    rows = method.sample_volumes(outputs)
    assert tuple(rows) == method.sample_names(), f"montage rows {tuple(rows)} != declared {method.sample_names()}"
    for name, row in rows.items():
        assert row.volume.ndim == 3, f"montage row {name!r} is not a (D, H, W) volume"
        assert row.window[0] < row.window[1], f"montage row {name!r} has an empty window"


def check_options_reject_foreign_keys(config_dict: dict) -> None:
    """A key the method does not read is a ConfigError naming it and the method (also another method's key)."""
    method_name = config_dict["method"]
    candidates = ["surely_not_an_option"]
    options_model = get_method(method_name).options_model
    for other in known_methods():
        other_fields = set(get_method(other).options_model.model_fields) - set(options_model.model_fields)
        candidates += sorted(other_fields)[:1]
    for key in candidates:
        bad = {**config_dict, "model": {**config_dict["model"], key: 1}}
        try:
            validate_config(bad, ExperimentConfig)
        except ConfigError as err:
            assert key in str(err) and method_name in str(err), f"the error does not name {key!r} and the method"
        else:
            raise AssertionError(f"method {method_name!r} accepted the foreign option model.{key}")
