"""The study grid: which runs exist, and which seeds are shared (pairing) or distinct."""

from __future__ import annotations

from medgan.config.downstream import DownstreamConfig
from medgan.evaluation.downstream.grid import RunSpec, cells, plan_runs


def test_default_grid_is_two_sweeps_not_the_full_product() -> None:
    config = DownstreamConfig()
    assert cells(config) == [(8, 1.0), (16, 1.0), (32, 1.0), ("all", 1.0), (16, 0.5), (16, 2.0), (16, 4.0)]
    runs = plan_runs(config)
    # per repeat: real + classical once per n_real (4 each), 3 synthetic conditions per cell (7 each)
    assert len(runs) == 5 * (2 * 4 + 3 * 7)
    assert len({run.key for run in runs}) == len(runs)


def test_seeds_pair_what_must_be_paired_and_separate_the_rest() -> None:
    real = RunSpec("classify", "real", 16, None, 0)
    synthetic = RunSpec("classify", "synthetic", 16, 2.0, 0)
    control = RunSpec("classify", "negative_control", 16, 2.0, 0)
    other_repeat = RunSpec("classify", "real", 16, None, 1)
    assert real.real_cases_seed(0) == synthetic.real_cases_seed(0) == control.real_cases_seed(0)
    assert synthetic.synthetic_cases_seed(0) == control.synthetic_cases_seed(0)
    assert real.real_cases_seed(0) != other_repeat.real_cases_seed(0)
    assert len({run.seed(0, "weights") for run in (real, synthetic, control, other_repeat)}) == 4
    assert real.seed(0, "weights") != real.seed(1, "weights")
