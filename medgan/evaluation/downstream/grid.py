"""The study's runs: which (task, condition, n_real, ratio, repeat) cells exist and their seeds.

The default grid sweeps the number of real cases at one synthetic ratio and the ratio at one
real count (two lines through the grid, not the full product), so the study fits a CPU. The
conditions without synthetic data (real, classical) do not depend on the ratio: they run once
per n_real and are the reference of every ratio at that n_real.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medgan.config.downstream import CONDITIONS, DownstreamConfig

SYNTHETIC_CONDITIONS = ("synthetic", "synthetic_classical", "negative_control")
TASKS = ("classify", "detect")
# which purpose a derived seed serves, so that streams for different purposes never coincide
PURPOSE = {"real_cases": 1, "synthetic_cases": 2, "control_cases": 3, "weights": 4, "augmentation": 5}


def derive_seed(*parts: int) -> int:
    """A 32-bit seed that is a fixed function of integer ``parts`` (NumPy's SeedSequence hashing)."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0])


def n_real_code(n_real: int | str) -> int:
    return 0 if n_real == "all" else int(n_real)


def ratio_code(ratio: float | None) -> int:
    return 0 if ratio is None else int(round(ratio * 1000))


@dataclass(frozen=True)
class RunSpec:
    """One training run of the study."""

    task: str
    condition: str
    n_real: int | str
    ratio: float | None  # None for the conditions without synthetic data
    repeat: int

    @property
    def key(self) -> str:
        """A stable, file-safe name, e.g. ``classify-synthetic-n16-r1-rep0``."""
        ratio = "none" if self.ratio is None else f"{self.ratio:g}"
        return f"{self.task}-{self.condition}-n{self.n_real}-r{ratio}-rep{self.repeat}"

    def seed(self, study_seed: int, purpose: str) -> int:
        """This run's seed for ``purpose``, from (seed, task, condition, n_real, ratio, repeat)."""
        return derive_seed(
            study_seed,
            PURPOSE[purpose],
            TASKS.index(self.task),
            CONDITIONS.index(self.condition),
            n_real_code(self.n_real),
            ratio_code(self.ratio),
            self.repeat,
        )

    def real_cases_seed(self, study_seed: int) -> int:
        """Seed of the real-case draw: shared by every task and condition of (n_real, repeat) (pairing)."""
        return derive_seed(study_seed, PURPOSE["real_cases"], n_real_code(self.n_real), self.repeat)

    def synthetic_cases_seed(self, study_seed: int) -> int:
        """Seed of the synthetic-case draw: shared by the synthetic conditions of (n_real, ratio, repeat)."""
        return derive_seed(
            study_seed, PURPOSE["synthetic_cases"], n_real_code(self.n_real), ratio_code(self.ratio), self.repeat
        )


def cells(config: DownstreamConfig) -> list[tuple[int | str, float]]:
    """(n_real, ratio) cells: the n_real sweep at reference_ratio, then the ratio sweep at reference_n_real."""
    found: list[tuple[int | str, float]] = []
    for cell in [(n, config.reference_ratio) for n in config.n_real] + [
        (config.reference_n_real, r) for r in config.ratios
    ]:
        if cell not in found:
            found.append(cell)
    return found


def plan_runs(config: DownstreamConfig) -> list[RunSpec]:
    """Every run of the study, in a stable order."""
    runs: list[RunSpec] = []
    grid = cells(config)
    n_values = list(dict.fromkeys(n for n, _ in grid))
    for task in config.tasks:
        for repeat in range(config.repeats):
            for condition in config.conditions:
                if condition in SYNTHETIC_CONDITIONS:
                    runs += [RunSpec(task, condition, n, ratio, repeat) for n, ratio in grid]
                else:
                    runs += [RunSpec(task, condition, n, None, repeat) for n in n_values]
    return runs
