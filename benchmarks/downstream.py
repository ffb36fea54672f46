"""Does synthetic data help a lesion classifier / detector? The full downstream study on a phantom.

Data: a fresh phantom (``medgan sample-data``, ``subjects`` heads at 48^3 and 5 mm, its own seed;
datalist split 70 / 15 / 15 %) with the ``haemorrhage`` lesion mix (``--lesions``): the one mix on
which the real-only classifier lands in the calibration band (AUC 0.68 from 16 real heads, 0.99
from 140, measured; the default mix's dark lesion types stay near 0.5 at every size, see
docs/decisions.md), so the study's differences can mean something. Synthetic cases: ``medgan enrich`` on
the training list (one procedural lesion per healthy training head) and, with ``--sources
procedural,gan``, the same with a lesion GAN (``configs/lesion.yaml``, ``gan_steps`` steps on the
training lesions). For each source, ``medgan downstream`` with ``configs/downstream.yaml``'s
grid (or ``--tasks`` / ``--repeats``) runs every condition and writes its own
``downstream.json`` and plots, copied to ``benchmarks/results/downstream/<source>/``.

Reported per source: the study's cells and verdicts, its wall time, and the calibration check
the study needs to mean anything: the real-only classifier's AUC at 16 real cases (target
0.65-0.85: neither trivial nor hopeless).

    python benchmarks/downstream.py                          # procedural, classify: ~50 min on 2 cores
    python benchmarks/downstream.py --repeats 3 --set "n_real=[16,all]" --set "ratios=[1.0]"   # a smaller grid
    python benchmarks/downstream.py --sources procedural,gan --tasks classify,detect
    python benchmarks/downstream.py --smoke --out /tmp/downstream.json
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
for folder in (REPO, REPO / "benchmarks"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

import json  # noqa: E402

from common import environment, write_results  # noqa: E402

from medgan.config.downstream import DownstreamConfig  # noqa: E402
from medgan.config.enrich import EnrichConfig  # noqa: E402
from medgan.config.loader import load_config  # noqa: E402
from medgan.data.phantom.lesions import LESION_MIXES  # noqa: E402
from pipelines.downstream import run_downstream  # noqa: E402
from pipelines.enrich import run_enrich  # noqa: E402
from pipelines.sample_data import make_sample_data  # noqa: E402
from pipelines.train import run_training  # noqa: E402

RESULTS = REPO / "benchmarks" / "results" / "downstream.json"
PLOTS = REPO / "benchmarks" / "results" / "downstream"
CONFIG = REPO / "configs" / "downstream.yaml"
LESION_CONFIG = REPO / "configs" / "lesion.yaml"
PHANTOM_SEED = 4242
CALIBRATION_TARGET = (0.65, 0.85)
FULL = {"subjects": 200, "gan_steps": 1500, "quick": False}
SMOKE = {"subjects": 40, "gan_steps": 20, "quick": True}


def make_synthetic(source: str, phantom: Path, root: Path, gan_steps: int) -> Path:
    """The enriched datalist of ``source`` (procedural, or gan after training a lesion run)."""
    config = EnrichConfig(datalist=phantom / "datalist.json", split="training", cases_per_source=1, out=root / source)
    if source == "gan":
        run = run_training(
            LESION_CONFIG,
            run_dir=root / "lesion_run",
            overrides=[
                f"data.datalist={phantom / 'datalist.json'}",
                "data.train_split=training",
                f"train.steps={gan_steps}",
                f"train.checkpoint_every={gan_steps}",
                "train.sample_every=0",
            ],
            quiet=True,
        )
        config = config.model_copy(update={"method": "lesion", "run": run})
    run_enrich(config, progress=False)
    return root / source / "datalist.json"


def calibration(cells: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The real-only classifier at 16 real cases against the target band."""
    cell = next((c for c in cells if c["task"] == "classify" and c["condition"] == "real" and c["n_real"] == 16), None)
    if cell is None:
        return None
    low, high = CALIBRATION_TARGET
    return {
        "real_only_auc_16": {k: cell[k] for k in ("estimate", "low", "high")},
        "target": list(CALIBRATION_TARGET),
        "met": low <= cell["estimate"] <= high,
    }


def measure(args: argparse.Namespace) -> dict[str, Any]:
    settings = SMOKE if args.smoke else FULL
    started = time.perf_counter()
    result: dict[str, Any] = {"environment": environment(), "sources": {}}
    with tempfile.TemporaryDirectory(prefix="medgan-downstream-") as scratch:
        root = Path(args.work_dir or scratch)
        phantom = root / "phantom"
        if not (phantom / "datalist.json").exists():
            make_sample_data(
                phantom,
                subjects=settings["subjects"],
                shape=(48, 48, 48),
                seed=PHANTOM_SEED,
                lesion_mix=args.lesions,
                progress=False,
            )
        result["phantom"] = {
            "subjects": settings["subjects"],
            "shape": 48,
            "seed": PHANTOM_SEED,
            "lesion_mix": args.lesions,
        }
        for source in args.sources:
            source_started = time.perf_counter()
            synthetic = make_synthetic(source, phantom, root / "enriched", settings["gan_steps"])
            overrides = [
                f"datalist={phantom / 'datalist.json'}",
                f"synthetic_datalist={synthetic}",
                f"out={root / 'study' / source}",
                f"tasks=[{','.join(args.tasks)}]",
            ]
            if args.repeats:
                overrides.append(f"repeats={args.repeats}")
            overrides += args.set
            config = load_config(CONFIG, DownstreamConfig, overrides)
            study_started = time.perf_counter()
            study = run_downstream(config, quick=settings["quick"], progress=not args.quiet)
            study_seconds = time.perf_counter() - study_started
            content = json.loads(study.result_path.read_text())
            plot_dir = args.plots / source
            plot_dir.mkdir(parents=True, exist_ok=True)
            for plot in study.plot_paths:
                shutil.copy2(plot, plot_dir / plot.name)
            result["sources"][source] = {
                "n_runs": study.n_runs,
                "n_failed": study.summary.n_failed,
                "study_seconds": round(study_seconds, 1),
                "source_seconds": round(time.perf_counter() - source_started, 1),
                "calibration": calibration(content["cells"]),
                "verdicts": [v["text"] for v in content["verdicts"]],
                "cells": [
                    {
                        k: c[k]
                        for k in (
                            "task",
                            "condition",
                            "n_real",
                            "ratio",
                            "n_real_cases",
                            "n_synthetic_cases",
                            "metric",
                            "estimate",
                            "low",
                            "high",
                            "per_seed",
                            "secondary_means",
                        )
                    }
                    for c in content["cells"]
                ],
                "comparisons": content["comparisons"],
                "settings": content["settings"],
            }
    result["wall_seconds"] = round(time.perf_counter() - started, 1)
    return result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="40 subjects, the --quick study: a minute")
    parser.add_argument("--sources", type=lambda s: s.split(","), default=["procedural"], help="procedural,gan")
    parser.add_argument("--tasks", type=lambda s: s.split(","), default=["classify"], help="classify,detect")
    parser.add_argument("--repeats", type=int, default=None, help="seeds per cell (default: the config's)")
    parser.add_argument(
        "--lesions", choices=sorted(LESION_MIXES), default="haemorrhage", help="phantom lesion mix (haemorrhage)"
    )
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="study config override")
    parser.add_argument("--work-dir", type=Path, default=None, help="keep the phantom, cases and studies here")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"results JSON ({RESULTS})")
    parser.add_argument("--plots", type=Path, default=PLOTS, help=f"plot folder ({PLOTS})")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    result = write_results(args.out, measure(args))
    for source, values in result["sources"].items():
        print(source, json.dumps(values["calibration"]), *values["verdicts"], sep="\n  ")
    return result


if __name__ == "__main__":
    main()
