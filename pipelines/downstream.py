"""The downstream study (``medgan downstream CONFIG``): does the synthetic data make my detector better?

1. **Data**: real and synthetic cases preprocessed once (:mod:`pipelines.downstream_data`).
2. **Runs**: every (task, condition, n_real, ratio, repeat) of the grid
   (:mod:`medgan.evaluation.downstream.grid`) trains a network and scores it on the held-out real
   test list; each run writes ``OUT/runs/<key>.json`` atomically through the shared job runner, so
   a killed study continues with the runs still missing, and a finished run is never redone
   unless the data or a setting that shapes runs changed. ``workers`` > 1 runs shards of the
   grid in parallel processes.
3. **Summary**: ``OUT/downstream.json`` (settings, every run, cells with 95 % intervals, paired
   differences, verdicts) and plots in ``OUT/plots/``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medgan.allocator import keep_freed_memory
from medgan.config.downstream import DownstreamConfig
from medgan.config.loader import save_resolved_config
from medgan.evaluation.downstream.grid import RunSpec, plan_runs
from medgan.evaluation.downstream.runs import execute_run
from medgan.evaluation.downstream.summary import regime_curves, summarise
from medgan.io.atomic import atomic_write_text
from medgan.jobs.runner import JobFingerprint, JobItem, JobSummary, run_job, summarize_job
from pipelines.downstream_data import load_study_data

LOG = logging.getLogger(__name__)
RUNS_DIR = "runs"
RESULT_FILE = "downstream.json"
# what a run computes depends on its own spec, the data and these settings; the grid (which runs exist),
# the bootstrap, the output folder and the worker count do not, so changing them (e.g. more repeats) keeps
# the finished runs
RUN_SETTINGS = (
    "train_split",
    "validation_split",
    "test_split",
    "synthetic_split",
    "images",
    "label_key",
    "lesion_mask_key",
    "lesion_type_key",
    "spacing",
    "spatial_size",
    "seed",
    "classifier",
    "detector",
    "fp_rates",
)

QUICK_OVERRIDES: dict[str, Any] = {
    "n_real": [8],
    "ratios": [1.0],
    "reference_n_real": 8,
    "reference_ratio": 1.0,
    "repeats": 2,
    "n_boot": 200,
}
# A smoke run checks the study's plumbing, not its answer: few steps on batches of 2 (a fifth of the
# former 20 steps x batch 8, which spent ~60 s of every smoke study in the classifier's backward pass).
QUICK_TRAINERS: dict[str, dict[str, int]] = {
    "classifier": {"steps": 12, "batch_size": 2},
    "detector": {"steps": 8, "batch_size": 2},
}


def quick_config(config: DownstreamConfig) -> DownstreamConfig:
    """The ``--quick`` smoke version: one small cell, two repeats, a few training steps on small batches."""
    return config.model_copy(
        update={
            **QUICK_OVERRIDES,
            "classifier": config.classifier.model_copy(update=QUICK_TRAINERS["classifier"]),
            "detector": config.detector.model_copy(update=QUICK_TRAINERS["detector"]),
        }
    )


def resolve_workers(workers: int | str, n_runs: int) -> int:
    """``auto``: one process per 4 CPU cores (at least 1); never more processes than runs."""
    cores = os.cpu_count() or 1
    wanted = max(1, cores // 4) if workers == "auto" else int(workers)
    return max(1, min(wanted, n_runs))


@dataclass(frozen=True)
class DownstreamResult:
    """What the study wrote, and its verdict lines."""

    summary: JobSummary
    result_path: Path
    plot_paths: list[Path]
    verdicts: list[str]
    n_runs: int


def _items(runs: list[RunSpec], out_dir: Path) -> list[JobItem]:
    return [
        JobItem(key=run.key, input_path=None, output_path=out_dir / RUNS_DIR / f"{run.key}.json", payload=run)
        for run in runs
    ]


def _run_shard(config_json: str, shard: str, threads: int, overwrite: bool, progress: bool) -> None:
    """One process's share of the runs (also the body of a parallel worker)."""
    torch.set_num_threads(threads)
    keep_freed_memory()  # a spawned worker does not inherit the CLI process's allocator setting
    config = DownstreamConfig.model_validate_json(config_json)
    out_dir = config.out.absolute()
    data, data_sha = load_study_data(config, out_dir, progress=False)
    runs = plan_runs(config)
    run_settings = json.dumps(json.loads(config.model_dump_json(include=set(RUN_SETTINGS))), sort_keys=True)
    fingerprint = JobFingerprint(data_sha, hashlib.sha256(run_settings.encode()).hexdigest())

    def run_one(item: JobItem) -> list[str]:
        record = execute_run(item.payload, config, data)
        atomic_write_text(item.output_path, json.dumps(record, indent=1) + "\n")
        return record["warnings"]

    run_job(
        _items(runs, out_dir),
        out_dir,
        run_one,
        fingerprint=fingerprint,
        shard=shard,
        overwrite=overwrite,
        progress=progress,
        description="downstream",
    )


def _run_parallel(config: DownstreamConfig, workers: int, overwrite: bool, progress: bool, n_runs: int) -> None:
    """Shards 0..workers-1 in spawned processes, with a progress bar over the run files written."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    threads = max(1, (os.cpu_count() or 1) // workers)
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=_run_shard, args=(config.model_dump_json(), f"{i}/{workers}", threads, overwrite, False))
        for i in range(workers)
    ]
    for process in processes:
        process.start()
    runs_dir = config.out.absolute() / RUNS_DIR
    try:
        with Progress(
            TextColumn("downstream"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), disable=not progress
        ) as bar:
            task = bar.add_task("runs", total=n_runs)
            while any(p.is_alive() for p in processes):
                bar.update(task, completed=len(list(runs_dir.glob("*.json"))) if runs_dir.exists() else 0)
                time.sleep(1.0)
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
            process.join()


def _records(runs: list[RunSpec], out_dir: Path) -> list[dict[str, Any]]:
    records = []
    for run in runs:
        path = out_dir / RUNS_DIR / f"{run.key}.json"
        if path.exists():
            records.append(json.loads(path.read_text(encoding="utf-8")))
    return records


def write_summary(
    config: DownstreamConfig, out_dir: Path, test_labels: np.ndarray
) -> tuple[Path, list[Path], list[str]]:
    """``downstream.json`` and the plots from every finished run file of this grid."""
    runs = plan_runs(config)
    records = _records(runs, out_dir)
    summary = summarise(records, test_labels, fp_rates=config.fp_rates, n_boot=config.n_boot, seed=config.seed)
    content = {
        "settings": json.loads(config.model_dump_json()),
        "test_labels": test_labels.tolist(),
        "n_runs_planned": len(runs),
        "n_runs_finished": len(records),
        **summary,
        "runs": [{k: v for k, v in r.items() if k not in ("test_scores", "test_candidates")} for r in records],
    }
    result_path = atomic_write_text(out_dir / RESULT_FILE, json.dumps(content, indent=1) + "\n")
    plots = save_plots(config, summary["cells"], records, test_labels, out_dir / "plots")
    return result_path, plots, [v["text"] for v in summary["verdicts"]]


def save_plots(
    config: DownstreamConfig, cells: list[dict[str, Any]], records: list[dict[str, Any]], test_labels, folder: Path
) -> list[Path]:
    """Per task: the sweep plot, and ROC / FROC curves at the smallest and the largest real-case count."""
    from medgan.viz.downstream_plots import save_curve_plot, save_sweep_plot

    paths = []
    for task in dict.fromkeys(c["task"] for c in cells):
        paths.append(
            save_sweep_plot(
                cells,
                folder / f"{task}_sweeps.png",
                task=task,
                reference_ratio=config.reference_ratio,
                reference_n_real=config.reference_n_real,
            )
        )
        counts = {c["n_real"]: c["n_real_cases"] for c in cells if c["task"] == task}
        for n_real in dict.fromkeys([min(counts, key=counts.get), max(counts, key=counts.get)]):
            curves = regime_curves(
                [r for r in records if r["task"] == task], test_labels, n_real, config.reference_ratio
            )
            kind = "roc" if task == "classify" else "froc"
            paths.append(
                save_curve_plot(
                    curves,
                    folder / f"{task}_{kind}_n{n_real}.png",
                    title=f"{task}: {counts[n_real]} real cases, synthetic:real {config.reference_ratio:g}",
                    task=task,
                )
            )
    return paths


def run_downstream(
    config: DownstreamConfig, *, quick: bool = False, overwrite: bool = False, progress: bool = True
) -> DownstreamResult:
    """Run the study's missing runs (in parallel where set) and write its summary (module docstring)."""
    if quick:
        config = quick_config(config)
    out_dir = config.out.absolute()
    out_dir.mkdir(parents=True, exist_ok=True)
    data, _ = load_study_data(config, out_dir, progress=progress)  # validates inputs and fills the cache once
    save_resolved_config(config, out_dir / "config.yaml")
    runs = plan_runs(config)
    workers = resolve_workers(config.workers, len(runs))
    LOG.info("downstream: %d runs, %d worker process(es)", len(runs), workers)
    if workers == 1:
        _run_shard(config.model_dump_json(), "0/1", torch.get_num_threads(), overwrite, progress)
    else:
        _run_parallel(config, workers, overwrite, progress, len(runs))
    job_summary = summarize_job(out_dir)
    test_labels = np.array([case.label for case in data.cases.test])
    result_path, plots, verdicts = write_summary(config, out_dir, test_labels)
    return DownstreamResult(job_summary, result_path, plots, verdicts, len(runs))


def count_line(result: DownstreamResult) -> str:
    """The CLI's closing lines: counts, where the results are, and the verdicts."""
    summary = result.summary
    lines = [
        f"downstream: {summary.n_done} runs trained, {summary.n_skipped} already there, {summary.n_failed} failed "
        f"(of {result.n_runs}); results {result.result_path}"
    ]
    lines += [f"  {text}" for text in result.verdicts]
    return "\n".join(lines)
