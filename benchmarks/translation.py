"""MRI -> CT translation quality and cost of every method under one fixed CPU time budget.

Trains pix2pix, the L1-only U-Net (pix2pix with lambda_adv 0), CycleGAN and the
bulk-density baseline on the training split of the bundled phantom heads
(``sample_data/datalist.json``) with the shipped configs, translates the held-out
test split with the real translate job (``pipelines.translate.run_translate``) and
scores it with ``pipelines.evaluate_translation`` (SynthRAD-style MAE / PSNR / SSIM,
per-tissue MAE, bone Dice; mean and seeded 95% bootstrap CI over the test heads).

Budget (default 300 s of training per method, ``--budget-seconds``), enforced by
calibrated step counts: each method first trains a throwaway run of a few steps;
the engine's ``time/step_s`` rows (loader wait + train step + EMA, per step) give
its seconds per step after the warm-up steps, and the real run is configured with
``steps = budget / seconds_per_step`` so its learning-rate schedule (linear decay)
completes. A pix2pix config with an L1 warm-up (``adversarial_start``) warms up for the same
fraction of the throwaway run, so its mean step time mixes both kinds of step (timed steps 4-18
of 18 at 0.5: 6 without the critic, 9 with it, a slightly conservative mix). Validation,
montages and checkpoints only run at the end of the real run;
their time and the start-up (memory cache fill) are outside the budget but reported
(``train.wall_seconds``), as is the optimisation time actually spent
(``train.optimisation_seconds``), so the reader sees how well the budget was met.

Memory: every method trains in its own child process (calibration + real run) and
translates + evaluates in another, so ``ru_maxrss`` of each child is that stage's
peak resident memory (``peak_rss_mb``), next to the child's RSS after imports.

Loader wait: the engine logs ``time/data_wait_s`` and ``time/step_s`` per logging
interval in ``metrics.jsonl``; the fraction is their ratio over the whole run
(``data_wait_fraction``, includes the memory-cache fill in the first step) and
without the first interval (``data_wait_fraction_steady``).

Every figure is also given as a ratio against the bulk-density baseline run in
the same benchmark (``<figure>_ratio_vs_bulk_density``).

Held-out fine-grid heads (``translation.fine_grid``): phantom heads of a seed never trained
on (:data:`FINE_SEED`), 96^3 at 2.5 mm, all scored like the test split by every method's
run (trained on the 5 mm heads). The same subjects (same seed: the phantom draws its anatomy
in millimetres, then renders it on the grid) are also rendered at the training grid, 48^3 at
5 mm (``translation.fine_grid.twin``). ``resolution_ratio`` = MAE on the 2.5 mm heads / MAE on
their 5 mm twins: the grid change alone, subjects held fixed. The fine heads' own CT resampled to
5 mm and back (``fine_grid_heads.ct_round_trip_mae_hu``) is the floor of any model that works at
5 mm; ``resolution_ratio.matched`` scores the 2.5 mm translations against that round-tripped CT
instead, so it measures what the translate job's resampling costs, not the detail no 5 mm grid holds.

Texture (``texture_ratio`` in every summary): fine texture of the pseudo-CT in soft tissue over the
CT's. MAE rewards a smooth prediction; a GAN that draws CT-like texture pays for it in MAE.

Window invariance (``translation.window_invariance``, neural methods): the 5 mm test heads
translated again with other inference settings (32^3 windows at overlap 0.5; fp32 instead of
the default precision) and compared voxel by voxel with the default translation inside the
body (labels > 0): mean |difference| in HU, averaged over the heads.

Translate-path speed (``speed``): ``benchmarks/translate_speed.py`` in its own child process
(today's default inference path vs the new default, on a ~1 mm 256 x 256 x 200 phantom
head; test-set MAE of the trained pix2pix run, else unet_l1, under both paths).

``targets`` lists every issue target (value, target, met) and ``cpu_features`` the
/proc/cpuinfo flags that decide the CPU inference path.

    python benchmarks/translation.py                                    # the full benchmark (~25 min)
    python benchmarks/translation.py --methods bulk_density pix2pix --budget-seconds 60
    python benchmarks/translation.py --smoke --out /tmp/smoke.json       # tiny nets, seconds
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results" / "translation.json"
DATALIST = REPO / "sample_data" / "datalist.json"
BASELINE = "bulk_density"
CONFIGS = {
    "pix2pix": "pix2pix_mri2ct.yaml",
    "unet_l1": "unet_l1_mri2ct.yaml",
    "cyclegan": "cyclegan_mri2ct.yaml",
    "bulk_density": "bulk_density_mri2ct.yaml",
}
METRICS = (  # = pipelines.evaluate_translation.HEADLINE_METRICS (a test keeps them equal)
    "mae_hu",
    "psnr_db",
    "ssim",
    "dice_bone",
    "mae_hu_bone",
    "mae_hu_soft_tissue",
    "mae_hu_air",  # air tissue inside the body (sinuses, airways)
    "mae_hu_outside_body",  # everything outside the body mask (the background)
    "texture_ratio",  # fine texture in soft tissue, pseudo-CT / CT: what the MAE does not reward
)
HIGHER_IS_BETTER = {"psnr_db", "ssim", "dice_bone"}
BEST_AT_ONE = {"texture_ratio"}  # ratios to the reference: closer to 1 is better
DEFAULT_BUDGET_S = 300.0
WARMUP_STEPS, CALIBRATION_STEPS, MIN_STEPS = 3, 15, 10
MAX_DATA_WAIT_FRACTION = 0.10
TINY_NETS = [
    "model.generator.channels=[4,8]",
    "model.generator.strides=[2]",
    "model.generator.num_res_units=0",
    "model.discriminator.channels=4",
    "model.discriminator.num_layers_d=2",
    "data.patch_size=[16,16,16]",  # inference keeps 32^3 windows: 8 per head instead of 125
    "data.validation_volumes=1",
]
SMOKE_OVERRIDES = {"pix2pix": TINY_NETS, "unet_l1": TINY_NETS, "cyclegan": TINY_NETS, "bulk_density": []}
NEURAL = ("pix2pix", "unet_l1", "cyclegan")
SPEED_RUN_PREFERENCE = ("pix2pix", "unet_l1")  # whose trained run gives the speed section's test-set MAE
FINE_SEED = 31337  # the sample heads are seed 0; this draw is never trained on
FINE_HEADS = {"subjects": 4, "shape": (96, 96, 96), "spacing_mm": 2.5}
SMOKE_FINE_HEADS = {"subjects": 2, "shape": (64, 64, 64), "spacing_mm": 3.75}
WINDOW_VARIANTS = {
    "small_windows": ("inference.roi_size=[32,32,32]", "inference.overlap=0.5"),
    "fp32": ("inference.precision=fp32",),
}
TARGET_RESOLUTION_RATIO = 1.15
TARGET_WINDOW_DIFFERENCE_HU = 5.0
TARGET_MAE_VS_BULK = 0.5  # best neural method's MAE / bulk density's
TARGET_BONE_DICE = 0.85
TARGET_OUTSIDE_BODY_HU = 50.0


# ---- child processes ------------------------------------------------------------------------------


def rss_mb() -> tuple[float, float]:
    """(current, peak) resident memory of this process in MiB."""
    with open("/proc/self/statm", encoding="ascii") as handle:
        current_pages = int(handle.read().split()[1])
    return current_pages * os.sysconf("SC_PAGE_SIZE") / 2**20, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """The training rows of a run's metrics.jsonl."""
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return [row for row in rows if row.get("kind") == "train"]


def seconds_per_step(run_dir: Path, warmup_steps: int) -> float:
    """Mean engine step time (loader wait + train step + EMA) after the warm-up steps of a run logged every step."""
    times = [row["time/step_s"] for row in read_metrics(run_dir) if row["step"] > warmup_steps]
    if not times:
        raise RuntimeError(f"no timed steps after step {warmup_steps} in {run_dir / 'metrics.jsonl'}")
    return sum(times) / len(times)


def train_stage(spec: dict[str, Any]) -> dict[str, Any]:
    """Calibrate the step time, then train ``budget / seconds_per_step`` steps; timings from metrics.jsonl."""
    from pipelines.train import run_training

    base_rss, _ = rss_mb()
    config, overrides, work = spec["config"], spec["overrides"], Path(spec["work_dir"])
    calibration_dir = work / "calibration"
    calibration = [
        f"train.steps={spec['warmup_steps'] + spec['calibration_steps']}",
        "train.log_every=1",
        "data.validation_volumes=0",
        "train.sample_every=0",
        "train.checkpoint_every=100000",
    ]
    run_training(config, run_dir=calibration_dir, overrides=[*overrides, *calibration], quiet=True)
    step_s = seconds_per_step(calibration_dir, spec["warmup_steps"])
    steps = max(spec["min_steps"], int(spec["budget_seconds"] / step_s))
    if spec["max_steps"]:
        steps = min(steps, spec["max_steps"])
    schedule = [
        f"train.steps={steps}",
        f"train.log_every={max(10, steps // 200)}",
        "train.validate_every=0",
        "train.sample_every=0",
        f"train.checkpoint_every={steps}",
    ]
    started = time.perf_counter()
    run_dir = run_training(config, run_dir=work / "run", overrides=[*overrides, *schedule], quiet=True)
    wall = time.perf_counter() - started
    _, peak = rss_mb()
    return {
        "run_dir": str(run_dir),
        "calibration_seconds_per_step": step_s,
        "steps": steps,
        "wall_seconds": wall,
        "rss_after_imports_mb": base_rss,
        "peak_rss_mb": peak,
        "threads": torch_threads(),
    }


def speed_module() -> ModuleType:
    """benchmarks/translate_speed.py (benchmarks/ is not a package)."""
    path = Path(__file__).resolve().parent / "translate_speed.py"
    module_spec = importlib.util.spec_from_file_location("translate_speed", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def translate_stage(spec: dict[str, Any]) -> dict[str, Any]:
    """Translate the test split with the trained run, then evaluate it; times the translate job.

    Then, outside the timing and the peak-RSS figure: the fine-grid held-out heads, and for
    neural methods the window-invariance translations.
    """
    import nibabel as nib

    from pipelines.evaluate_translation import evaluate_translation
    from pipelines.translate import run_translate

    base_rss, _ = rss_mb()
    out_dir = Path(spec["work_dir"]) / "translated"
    started = time.perf_counter()
    summary = run_translate(spec["run_dir"], [spec["datalist"]], out_dir, split=spec["split"], progress=False)
    seconds = time.perf_counter() - started
    if summary.exit_code:
        raise RuntimeError(f"translation failed: {summary.failures}")
    voxels = sum(int(math.prod(nib.load(record.input).shape)) for record in summary.records)
    _, peak = rss_mb()
    report = evaluate_translation(out_dir, spec["datalist"], split=spec["split"])
    fine = fine_grid(spec) if spec.get("fine_datalist") else None
    invariance = window_invariance(spec, report) if spec.get("neural") else None
    return {
        "seconds": seconds,
        "item_seconds": sum(record.seconds for record in summary.records),  # without loading the run
        "volumes": len(summary.records),
        "voxels": voxels,
        "rss_after_imports_mb": base_rss,
        "peak_rss_mb": peak,
        "summary": {name: report.summary[name] for name in METRICS if name in report.summary},
        "per_subject": [{key: row[key] for key in ("subject", *METRICS) if key in row} for row in report.per_subject],
        "report_path": str(report.report_path),
        "fine_grid": fine,
        "window_invariance": invariance,
    }


def scored(report: Any) -> dict[str, Any]:
    """Summary and per-subject rows of an evaluation report, METRICS only."""
    return {
        "summary": {name: report.summary[name] for name in METRICS if name in report.summary},
        "per_subject": [{key: row[key] for key in ("subject", *METRICS) if key in row} for row in report.per_subject],
    }


def fine_grid(spec: dict[str, Any]) -> dict[str, Any]:
    """The held-out fine-grid heads (every entry in their datalist's test split), scored with the run."""
    from pipelines.evaluate_translation import evaluate_translation

    speed = speed_module()
    out_dir = Path(spec["work_dir"]) / "translated_fine"
    summary = speed.translate(spec["run_dir"], [spec["fine_datalist"]], out_dir, split="test")
    if summary.exit_code:
        raise RuntimeError(f"fine-grid translation failed: {summary.failures}")
    report = evaluate_translation(out_dir, spec["fine_datalist"], split="test")
    matched = None
    entries = json.loads(Path(spec["fine_datalist"]).read_text())["test"]
    if all(ROUND_TRIP_KEY in entry for entry in entries):  # written by resampling_floor
        matched = scored(
            evaluate_translation(
                out_dir,
                spec["fine_datalist"],
                split="test",
                target_key=ROUND_TRIP_KEY,
                report_path=out_dir / "evaluation_round_trip.json",
            )
        )
    twin = None
    if spec.get("twin_datalist"):
        twin_dir = Path(spec["work_dir"]) / "translated_twin"
        twin_summary = speed.translate(spec["run_dir"], [spec["twin_datalist"]], twin_dir, split="test")
        if twin_summary.exit_code:
            raise RuntimeError(f"twin-head translation failed: {twin_summary.failures}")
        twin = {
            "datalist": spec["twin_datalist"],
            **scored(evaluate_translation(twin_dir, spec["twin_datalist"], split="test")),
        }
    return {
        "datalist": spec["fine_datalist"],
        "volumes": len(summary.records),
        "run_spacing": speed.run_spacing(spec["run_dir"]),  # null: the training data's native 5 mm
        **scored(report),
        "vs_round_trip_reference": matched,
        "twin": twin,
    }


def window_invariance(spec: dict[str, Any], default_report: Any) -> dict[str, Any]:
    """Per variant: mean |variant - default| (HU) inside the body (labels > 0), averaged over the test heads."""
    import numpy as np

    from medgan.data.datalist import load_datalist
    from medgan.io import read_volume
    from pipelines.evaluate_translation import evaluate_translation

    speed = speed_module()
    entries = {str(entry.get("subject")): entry for entry in load_datalist(spec["datalist"], spec["split"])}
    default_outputs = {row["subject"]: row["output"] for row in default_report.per_subject}
    variants = {}
    for name, overrides in WINDOW_VARIANTS.items():
        out_dir = Path(spec["work_dir"]) / f"translated_{name}"
        summary = speed.translate(spec["run_dir"], [spec["datalist"]], out_dir, overrides, split=spec["split"])
        if summary.exit_code:
            raise RuntimeError(f"{name} translation failed: {summary.failures}")
        report = evaluate_translation(out_dir, spec["datalist"], split=spec["split"])
        per_head = []
        for row in report.per_subject:
            body = read_volume(entries[row["subject"]]["labels"]).numpy()[0] > 0
            variant = read_volume(row["output"]).numpy()[0].astype(np.float64)
            default = read_volume(default_outputs[row["subject"]]).numpy()[0].astype(np.float64)
            difference = np.abs(variant - default)[body]
            per_head.append(
                {
                    "subject": row["subject"],
                    "mean_abs_hu": float(difference.mean()),
                    "max_abs_hu": float(difference.max()),
                }
            )
        variants[name] = {
            "overrides": list(overrides),
            "plan": speed.plan_of(spec["run_dir"], overrides)["describe"],
            "mean_abs_difference_in_body_hu": float(np.mean([head["mean_abs_hu"] for head in per_head])),
            "max_abs_difference_in_body_hu": float(np.max([head["max_abs_hu"] for head in per_head])),
            "mae_hu": report.summary["mae_hu"]["mean"],
            "per_subject": per_head,
        }
    return {
        "reference": "the default inference settings of the run",
        "default_plan": speed.plan_of(spec["run_dir"])["describe"],
        "variants": variants,
    }


def speed_stage(spec: dict[str, Any]) -> dict[str, Any]:
    """benchmarks/translate_speed.py's measurement, in this child process."""
    speed = speed_module()
    mae_run = Path(spec["mae_run"]) if spec.get("mae_run") else None
    result = speed.measure(
        Path(spec["work_dir"]), smoke=spec["smoke"], mae_run=mae_run, datalist=Path(spec["datalist"])
    )
    result["mae_run_method"] = spec.get("mae_run_method")
    from medgan.io.strict_json import strict_json

    return strict_json(result)


def torch_threads(threads: int = 0) -> int:
    """Set torch's intra-op threads when ``threads`` > 0; return the number in use."""
    import torch

    if threads > 0:
        torch.set_num_threads(threads)
    return torch.get_num_threads()


STAGES = {"train": train_stage, "translate": translate_stage, "speed": speed_stage}


def run_child(stage: str, spec: dict[str, Any], work_dir: Path) -> dict[str, Any]:
    """Run one stage in a fresh Python process (its own peak RSS); raise with the log tail if it fails."""
    work_dir.mkdir(parents=True, exist_ok=True)
    spec_path, result_path = work_dir / f"{stage}_spec.json", work_dir / f"{stage}_result.json"
    log_path = work_dir / f"{stage}.log"
    spec_path.write_text(json.dumps({**spec, "result_path": str(result_path)}, indent=2))
    with open(log_path, "w", encoding="utf-8") as log:
        code = subprocess.call(
            [sys.executable, str(Path(__file__).resolve()), "--worker", stage, str(spec_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
    if code:
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-30:])
        raise RuntimeError(f"{stage} stage failed (exit {code}), log {log_path}:\n{tail}")
    return json.loads(result_path.read_text())


def worker_main(stage: str, spec_path: Path) -> None:
    """Entry point of a child process: run the stage, write its result JSON."""
    spec = json.loads(spec_path.read_text())
    torch_threads(spec["threads"])
    result = STAGES[stage](spec)
    Path(spec["result_path"]).write_text(json.dumps(result, indent=2))


# ---- one method ------------------------------------------------------------------------------------


def data_wait(run_dir: Path) -> dict[str, float]:
    """Loader wait as a fraction of step time over the whole run and without the first log interval."""
    rows = read_metrics(run_dir)
    wait, step = sum(r["time/data_wait_s"] for r in rows), sum(r["time/step_s"] for r in rows)
    steady_wait, steady_step = sum(r["time/data_wait_s"] for r in rows[1:]), sum(r["time/step_s"] for r in rows[1:])
    return {
        "data_wait_fraction": wait / step,
        "data_wait_fraction_steady": steady_wait / steady_step if steady_step else float("nan"),
        "data_wait_ms_per_step": 1000 * wait / rows[-1]["step"],
        "first_interval_data_wait_s": rows[0]["time/data_wait_s"],
        "optimisation_seconds": step,
    }


def final_validation(run_dir: Path) -> dict[str, float]:
    """The run's last validation row (val/... metrics on validation volumes), if any."""
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    rows = [row for row in rows if row.get("kind") == "validation"]
    return {k: v for k, v in rows[-1].items() if k.startswith("val/")} if rows else {}


def bench_method(name: str, args: argparse.Namespace, work_root: Path) -> dict[str, Any]:
    """Train, translate and evaluate one method in child processes; gather its figures."""
    overrides = [f"data.datalist={args.datalist}", *(SMOKE_OVERRIDES[name] if args.smoke else [])]
    work = work_root / name
    train_spec = {
        "config": str(REPO / "configs" / CONFIGS[name]),
        "overrides": overrides,
        "work_dir": str(work),
        "budget_seconds": args.budget_seconds,
        "warmup_steps": args.warmup_steps,
        "calibration_steps": args.calibration_steps,
        "min_steps": MIN_STEPS,
        "max_steps": args.max_steps,
        "threads": args.threads,
    }
    print(f"[{name}] calibrating and training ({args.budget_seconds:g} s budget)", flush=True)
    train = run_child("train", train_spec, work)
    run_dir = Path(train["run_dir"])
    train |= data_wait(run_dir)
    train["steps_per_second"] = train["steps"] / train["optimisation_seconds"]
    train["final_validation"] = final_validation(run_dir)
    print(f"[{name}] {train['steps']} steps in {train['wall_seconds']:.0f} s; translating the test split", flush=True)
    spec = {
        "run_dir": str(run_dir),
        "datalist": str(args.datalist),
        "split": "test",
        "work_dir": str(work),
        "threads": args.threads,
        "fine_datalist": str(args.fine_datalist) if args.fine_datalist else None,
        "twin_datalist": str(args.twin_datalist) if getattr(args, "twin_datalist", None) else None,
        "neural": name in NEURAL,
    }
    translation = run_child("translate", spec, work)
    translation["voxels_per_second"] = translation["voxels"] / translation["seconds"]
    result = {"config": f"configs/{CONFIGS[name]}", "overrides": overrides, "train": train, "translation": translation}
    result["resolution_ratio"] = resolution_ratio(translation)
    return result


def resolution_ratio(translation: dict[str, Any]) -> dict[str, Any] | None:
    """MAE on the 2.5 mm held-out heads / MAE on the same subjects at 5 mm (the grid change alone).

    ``matched`` scores the 2.5 mm translations against their CT resampled to 5 mm and back
    (:func:`resampling_floor`) instead: what the resolution handling costs once the detail
    that no 5 mm grid holds is taken out of the reference, i.e. whether the resample in /
    translate / resample back of the translate job keeps the model's 5 mm accuracy.

    ``vs_test_heads`` keeps the earlier figure: fine-grid MAE / the 5 mm test heads' MAE
    (different subjects, so it mixes the grid change with subject variation).
    """
    fine = translation.get("fine_grid")
    if not fine:
        return None
    test_mae, fine_mae = translation["summary"]["mae_hu"]["mean"], fine["summary"]["mae_hu"]["mean"]
    twin_mae = (fine.get("twin") or {}).get("summary", {}).get("mae_hu", {}).get("mean")
    matched_mae = (fine.get("vs_round_trip_reference") or {}).get("summary", {}).get("mae_hu", {}).get("mean")
    return {
        "value": fine_mae / twin_mae if twin_mae else None,
        "matched": matched_mae / twin_mae if matched_mae is not None and twin_mae else None,
        "mae_hu_fine_vs_round_trip_reference": matched_mae,
        "mae_hu_fine": fine_mae,
        "mae_hu_same_subjects_5mm": twin_mae,
        "mae_hu_test": test_mae,
        "vs_test_heads": fine_mae / test_mae if test_mae else None,
        "note": f"same phantom subjects (seed {FINE_SEED}) rendered at 2.5 mm and at the training grid's 5 mm",
    }


ROUND_TRIP_KEY = "ct_round_trip"  # fine datalist key of each head's CT resampled to the training grid and back


def resampling_floor(fine_datalist: Path, coarse_mm: float) -> dict[str, Any]:
    """MAE (HU, inside labels > 0) of the fine heads' own CT resampled to ``coarse_mm`` and back (bilinear).

    What a perfect model working at the training grid would still miss at the fine grid:
    the detail the coarse grid cannot hold (thin bone, sharp edges). The resolution
    ratio can only approach 1 where this floor is small against the coarse MAE.
    Each round-tripped CT is also written beside its head (NIfTI, the fine grid) and added
    to the datalist's test entries as ``ct_round_trip``: the reference that holds exactly what
    a 5 mm grid can, which the fine-grid translations are scored against as well
    (``resolution_ratio.matched``).
    """
    import nibabel as nib
    import numpy as np
    import torch
    from monai.data import MetaTensor
    from monai.transforms import Spacing

    content = json.loads(Path(fine_datalist).read_text())
    root = Path(fine_datalist).parent
    per_subject = []
    for entry in content["test"]:
        image = nib.load(root / entry["ct"])
        fine = np.asarray(image.dataobj, dtype=np.float32)
        body = np.asarray(nib.load(root / entry["labels"]).dataobj) > 0
        volume = MetaTensor(torch.from_numpy(fine)[None], affine=torch.as_tensor(image.affine))
        coarse = Spacing(pixdim=(coarse_mm,) * 3, mode="bilinear", padding_mode="border")(volume)
        back = Spacing(pixdim=tuple(float(v) for v in image.header.get_zooms()[:3]), mode="bilinear",
                       padding_mode="border")(coarse)[0].numpy()  # fmt: skip
        box = tuple(slice(0, min(a, b)) for a, b in zip(back.shape, fine.shape, strict=True))
        per_subject.append(float(np.abs(back[box] - fine[box])[body[box]].mean()))
        # on the fine grid: the round trip's voxels where it has them, edge values beyond (a voxel at most)
        pad = [(0, max(0, f - b)) for f, b in zip(fine.shape, back.shape, strict=True)]
        round_trip = np.pad(back[box], pad, mode="edge")
        round_trip_path = (root / entry["ct"]).with_name("ct_round_trip.nii.gz").resolve()
        nib.save(nib.Nifti1Image(round_trip.astype(np.float32), image.affine), round_trip_path)
        entry[ROUND_TRIP_KEY] = str(round_trip_path)  # absolute: the datalist resolves only its image keys
    Path(fine_datalist).write_text(json.dumps(content, indent=2) + "\n")
    return {
        "coarse_spacing_mm": coarse_mm,
        "mean": float(np.mean(per_subject)),
        "per_subject": per_subject,
        "note": "the fine CT itself, resampled to the training grid and back: the error no 5 mm model can avoid",
    }


def make_fine_heads(out_dir: Path, smoke: bool, *, twin: bool = False) -> Path:
    """Held-out phantom heads on a finer grid, every one in the datalist's test split; returns the datalist.

    ``twin``: the same subjects on the training grid (48^3 at 5 mm; smoke: half the fine grid).
    """
    from medgan.data.phantom import PhantomDatasetConfig, write_phantom_dataset

    settings = dict(SMOKE_FINE_HEADS if smoke else FINE_HEADS)
    if twin:
        settings |= {"shape": tuple(size // 2 for size in settings["shape"]), "spacing_mm": settings["spacing_mm"] * 2}
    config = PhantomDatasetConfig(
        subjects=settings["subjects"], shape=settings["shape"], spacing_mm=settings["spacing_mm"], seed=FINE_SEED
    )
    result = write_phantom_dataset(out_dir, config, montage_subjects=1)
    content = json.loads(result.datalist_path.read_text())
    everyone = sorted(
        (entry for split in ("training", "validation", "test") for entry in content[split]),
        key=lambda entry: entry["subject"],
    )
    content |= {"training": [], "validation": [], "test": everyone, "num_test": len(everyone)}
    content |= {"num_training": 0, "num_validation": 0}
    result.datalist_path.write_text(json.dumps(content, indent=2) + "\n")
    return result.datalist_path


# ---- the comparison ---------------------------------------------------------------------------------


def headline_figures(result: dict[str, Any]) -> dict[str, float]:
    """The figures compared against the baseline: metric means, speeds, memory, data wait."""
    figures = {name: stats["mean"] for name, stats in result["translation"]["summary"].items()}
    figures |= {
        "steps_per_second": result["train"]["steps_per_second"],
        "voxels_per_second": result["translation"]["voxels_per_second"],
        "train_peak_rss_mb": result["train"]["peak_rss_mb"],
        "translate_peak_rss_mb": result["translation"]["peak_rss_mb"],
    }
    return figures


def add_ratios(results: dict[str, dict[str, Any]]) -> None:
    """Add ``<figure>_ratio_vs_bulk_density`` for every method when the baseline ran."""
    if BASELINE not in results:
        return
    reference = headline_figures(results[BASELINE])
    for result in results.values():
        ratios = {}
        for key, value in headline_figures(result).items():
            base = reference.get(key)
            ok = base not in (None, 0) and value is not None and math.isfinite(base) and math.isfinite(value)
            ratios[f"{key}_ratio_vs_{BASELINE}"] = value / base if ok else None
        result["ratios"] = ratios


def paired_comparison(a: dict[str, Any], b: dict[str, Any], metric: str) -> dict[str, Any]:
    """Method a vs b on one metric over the same test subjects: mean difference and per-subject wins of a."""
    rows_b = {row["subject"]: row.get(metric) for row in b["translation"]["per_subject"]}
    pairs = [(row.get(metric), rows_b.get(row["subject"])) for row in a["translation"]["per_subject"]]
    pairs = [(x, y) for x, y in pairs if x is not None and y is not None and math.isfinite(x) and math.isfinite(y)]

    def goodness(value: float) -> float:
        if metric in BEST_AT_ONE:
            return -abs(value - 1.0)
        return value if metric in HIGHER_IS_BETTER else -value

    wins = sum(1 for x, y in pairs if goodness(x) > goodness(y))
    mean_a = a["translation"]["summary"][metric]["mean"]
    mean_b = b["translation"]["summary"][metric]["mean"]
    return {
        "mean_a": mean_a,
        "mean_b": mean_b,
        "a_better": bool(goodness(mean_a) > goodness(mean_b)),
        "subjects_a_better": f"{wins}/{len(pairs)}",
        "cis_overlap": _cis_overlap(a["translation"]["summary"][metric], b["translation"]["summary"][metric]),
    }


def _cis_overlap(a: dict[str, float], b: dict[str, float]) -> bool:
    return not (a["ci_high"] < b["ci_low"] or b["ci_high"] < a["ci_low"])


def bench_speed(args: argparse.Namespace, results: dict[str, dict[str, Any]], work_root: Path) -> dict[str, Any]:
    """The translate-path speed section in its own child (its test MAE from the trained pix2pix or unet_l1 run)."""
    mae_method = next((name for name in SPEED_RUN_PREFERENCE if name in results), None)
    spec = {
        "work_dir": str(work_root / "speed"),
        "smoke": args.smoke,
        "mae_run": results[mae_method]["train"]["run_dir"] if mae_method else None,
        "mae_run_method": mae_method,
        "datalist": str(args.datalist),
        "threads": args.threads,
    }
    print(f"[speed] timing the translate job (test MAE from {mae_method or 'no trained run'})", flush=True)
    return run_child("speed", spec, work_root / "speed")


def cpu_features() -> dict[str, bool]:
    """The /proc/cpuinfo flags (amx_bf16, avx512_bf16, avx512f, avx2) that decide the CPU inference path."""
    from medgan.precision import cpu_features as read_flags

    return dict(read_flags())


def _target(value: float | None, limit: float, comparison: str, **extra: Any) -> dict[str, Any]:
    """One issue target: value, target, whether met (a missing / non-finite value is not met)."""
    finite = value is not None and math.isfinite(value)
    met = finite and (value >= limit if comparison == ">=" else value <= limit)
    return {"value": value if finite else None, "target": limit, "comparison": comparison, "met": bool(met), **extra}


def targets(results: dict[str, dict[str, Any]], speed: dict[str, Any] | None) -> dict[str, Any]:
    """Every issue target with its value and whether it is met (the speed ones from the speed section)."""
    found: dict[str, Any] = {}
    for name, result in results.items():
        ratio = result.get("resolution_ratio")
        if ratio:
            found[f"resolution_ratio.{name}"] = _target(
                ratio["value"], TARGET_RESOLUTION_RATIO, "<=", note="same subjects at 2.5 mm vs 5 mm"
            )
            if ratio.get("matched") is not None:
                found[f"resolution_ratio_matched.{name}"] = _target(
                    ratio["matched"],
                    TARGET_RESOLUTION_RATIO,
                    "<=",
                    note="2.5 mm output vs its CT resampled to 5 mm and back (the detail no 5 mm grid holds taken out)",
                )
        invariance = result["translation"].get("window_invariance")
        if invariance:
            small = invariance["variants"]["small_windows"]["mean_abs_difference_in_body_hu"]
            found[f"window_invariance_hu.{name}"] = _target(small, TARGET_WINDOW_DIFFERENCE_HU, "<=")
    found |= quality_targets(results)
    if speed:
        for key, value in speed["targets"].items():
            found[f"speed.{key}"] = value
    return found


def _mean(result: dict[str, Any], metric: str) -> float | None:
    stats = result["translation"]["summary"].get(metric)
    return None if stats is None else stats["mean"]


def quality_targets(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The issue's quality targets: best neural MAE vs bulk density, its bone Dice, air outside the body, and
    the GANs against their baselines (pix2pix vs the L1 U-Net, CycleGAN vs bulk density)."""
    found: dict[str, Any] = {}
    neural = {name: _mean(results[name], "mae_hu") for name in NEURAL if name in results}
    neural = {name: mae for name, mae in neural.items() if mae is not None and math.isfinite(mae)}
    bulk = _mean(results[BASELINE], "mae_hu") if BASELINE in results else None
    if neural:
        best = min(neural, key=neural.__getitem__)
        if bulk:
            ratio = neural[best] / bulk
            found["mae_vs_bulk_density.best_neural"] = _target(ratio, TARGET_MAE_VS_BULK, "<=", method=best)
        found["bone_dice.best_neural"] = _target(_mean(results[best], "dice_bone"), TARGET_BONE_DICE, ">=", method=best)
    for name, result in results.items():
        outside = _mean(result, "mae_hu_outside_body")
        found[f"outside_body_hu.{name}"] = _target(outside, TARGET_OUTSIDE_BODY_HU, "<=")
    pairs = {"pix2pix_vs_unet_l1": ("pix2pix", "unet_l1"), "cyclegan_vs_bulk_density": ("cyclegan", BASELINE)}
    for key, (gan, baseline) in pairs.items():
        if gan in results and baseline in results:
            gan_mae, base_mae = _mean(results[gan], "mae_hu"), _mean(results[baseline], "mae_hu")
            ratio = gan_mae / base_mae if gan_mae is not None and base_mae else None
            found[f"mae_ratio.{key}"] = _target(ratio, 1.0, "<=", note=f"{gan} MAE / {baseline} MAE")
    return found


def checks(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The issue's requirements: pix2pix vs bulk density (MAE, bone Dice), vs the L1 U-Net; data wait < 10%."""
    found: dict[str, Any] = {
        "data_wait_below_10_percent": {
            name: r["train"]["data_wait_fraction"] < MAX_DATA_WAIT_FRACTION for name, r in results.items()
        }
    }
    for other in (BASELINE, "unet_l1"):
        if "pix2pix" in results and other in results:
            found[f"pix2pix_vs_{other}"] = {
                metric: paired_comparison(results["pix2pix"], results[other], metric) for metric in METRICS
            }
    if "pix2pix" in results and BASELINE in results:
        versus = found[f"pix2pix_vs_{BASELINE}"]
        found["pix2pix_beats_bulk_density_on_mae_and_bone_dice"] = (
            versus["mae_hu"]["a_better"] and versus["dice_bone"]["a_better"]
        )
    return found


def environment(load_at_start: tuple[float, float, float]) -> dict[str, Any]:
    """Versions, threads and machine load."""
    import monai
    import torch

    return {
        "load_average_at_start": [round(x, 2) for x in load_at_start],
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "torch": torch.__version__,
        "monai": monai.__version__,
        "python": sys.version.split()[0],
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "device": "cpu",
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
    }


# ---- output -------------------------------------------------------------------------------------------


def _fmt(stats: dict[str, Any] | None, digits: int) -> str:
    if not stats or stats.get("mean") is None or not math.isfinite(stats["mean"]):
        return "n/a"
    return f"{stats['mean']:.{digits}f} ({stats['ci_low']:.{digits}f}-{stats['ci_high']:.{digits}f})"


def markdown_table(report: dict[str, Any]) -> str:
    """A short markdown summary: one row per method."""
    lines = [
        f"# Translation benchmark ({report['budget_seconds']:g} s training budget per method, CPU)",
        "",
        f"Phantom heads, test split (n={report['test_subjects']}); mean (95% bootstrap CI). "
        f"Load average at start {report['environment']['load_average_at_start'][0]}, "
        f"torch {report['environment']['torch']}, {report['environment']['torch_threads']} threads.",
        "",
        "| method | MAE HU | PSNR dB | SSIM | bone Dice | MAE bone / soft / air HU | MAE outside body HU | texture "
        "| steps | steps/s | voxels/s | peak RSS train / translate MB | data wait | MAE vs bulk |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, result in report["methods"].items():
        summary, train = result["translation"]["summary"], result["train"]
        tissue = " / ".join(
            _fmt(summary.get(m), 0).split(" ")[0] for m in ("mae_hu_bone", "mae_hu_soft_tissue", "mae_hu_air")
        )
        ratio = result.get("ratios", {}).get(f"mae_hu_ratio_vs_{BASELINE}")
        lines.append(
            f"| {name} | {_fmt(summary.get('mae_hu'), 1)} | {_fmt(summary.get('psnr_db'), 2)} "
            f"| {_fmt(summary.get('ssim'), 3)} | {_fmt(summary.get('dice_bone'), 3)} | {tissue} "
            f"| {_fmt(summary.get('mae_hu_outside_body'), 1)} | {_fmt(summary.get('texture_ratio'), 2)} "
            f"| {train['steps']} "
            f"| {train['steps_per_second']:.2f} | {result['translation']['voxels_per_second']:,.0f} "
            f"| {train['peak_rss_mb']:.0f} / {result['translation']['peak_rss_mb']:.0f} "
            f"| {100 * train['data_wait_fraction']:.1f}% | {'n/a' if ratio is None else f'{ratio:.2f}'} |"
        )
    verdict = report["checks"].get("pix2pix_beats_bulk_density_on_mae_and_bone_dice")
    if verdict is not None:
        lines += ["", f"pix2pix beats bulk density on MAE and bone Dice: **{'yes' if verdict else 'no'}**"]
    lines += robustness_table(report) + speed_lines(report.get("speed")) + target_lines(report.get("targets", {}))
    return "\n".join(lines) + "\n"


def _number(value: float | None, digits: int) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def robustness_table(report: dict[str, Any]) -> list[str]:
    """Fine-grid held-out heads and window invariance, one row per method."""
    heads = report.get("fine_grid_heads") or {}
    lines = [
        "",
        f"Held-out fine-grid heads: {heads.get('subjects')} new phantom subjects (seed {heads.get('seed')}) at "
        f"{heads.get('spacing_mm')} mm and the same subjects at the training grid's 5 mm (their own CT resampled "
        f"to 5 mm and back already has MAE {_number((heads.get('ct_round_trip_mae_hu') or {}).get('mean'), 1)} HU: "
        "the floor of any model working at 5 mm); resolution ratio = "
        "MAE at 2.5 mm / MAE of the same subjects at 5 mm (vs test heads: / the 5 mm test heads' MAE, other "
        "subjects); matched ratio = MAE at 2.5 mm against that round-tripped CT / MAE at 5 mm: what the "
        "translate job's resample in and back costs beyond the detail no 5 mm grid holds. Window / fp32 diff: "
        "mean |difference| inside the body vs the default settings (HU, mean "
        "over the test heads).",
        "",
        "| method | MAE 2.5 mm HU | MAE same subjects 5 mm HU | resolution ratio | ratio vs test heads "
        "| MAE 2.5 mm vs round-trip CT HU | matched ratio | window diff HU (32^3, overlap 0.5) | fp32 diff HU |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, result in report["methods"].items():
        fine = result["translation"].get("fine_grid") or {}
        resolution = result.get("resolution_ratio") or {}
        ratio = resolution.get("value")
        twin = (fine.get("twin") or {}).get("summary", {}).get("mae_hu")
        variants = (result["translation"].get("window_invariance") or {}).get("variants", {})
        small = variants.get("small_windows", {}).get("mean_abs_difference_in_body_hu")
        fp32 = variants.get("fp32", {}).get("mean_abs_difference_in_body_hu")
        lines.append(
            f"| {name} | {_fmt(fine.get('summary', {}).get('mae_hu'), 1)} | {_fmt(twin, 1)} | {_number(ratio, 2)} "
            f"| {_number(resolution.get('vs_test_heads'), 2)} "
            f"| {_fmt((fine.get('vs_round_trip_reference') or {}).get('summary', {}).get('mae_hu'), 1)} "
            f"| {_number(resolution.get('matched'), 2)} | {_number(small, 2)} | {_number(fp32, 2)} |"
        )
    return lines


def speed_lines(speed: dict[str, Any] | None) -> list[str]:
    """The translate-path speed section in two lines."""
    if not speed:
        return []
    paths, quality = speed["paths"], speed.get("test_mae") or {}
    network = speed.get("network_path") or {}
    shape = "x".join(map(str, speed["input"]["shape"]))
    mae = quality.get("mae_hu", {})
    features = ", ".join(name for name, present in speed["cpu"]["features"].items() if present) or "none"
    speedup = speed["speedup_default_vs_todays_default"]
    return [
        "",
        f"Translate job on a {shape} phantom head at {speed['input']['spacing_mm'][0]} mm: today's default path "
        f"{_number(paths['todays_default']['seconds_median'], 1)} s, new default "
        f"{_number(paths['default']['seconds_median'], 1)} s (**{_number(speedup, 2)}x**, "
        f"default precision {speed['default_precision']}; CPU flags: {features}). Test MAE "
        f"({speed.get('mae_run_method') or 'n/a'}): {_number(mae.get('todays_default'), 1)} vs "
        f"{_number(mae.get('default'), 1)} HU (|diff| {_number(quality.get('abs_difference_hu'), 2)} HU). "
        f"Inference path alone (windows + network on the {_grid(speed)} preprocessed grid): "
        f"{_number(network.get('todays_default', {}).get('seconds_median'), 2)} s vs "
        f"{_number(network.get('default', {}).get('seconds_median'), 2)} s "
        f"(**{_number(speed.get('network_speedup_default_vs_todays_default'), 2)}x**).",
    ]


def _grid(speed: dict[str, Any]) -> str:
    shape = (speed.get("network_path") or {}).get("network_grid", {}).get("shape")
    return "x".join(map(str, shape)) if shape else "n/a"


def target_lines(found: dict[str, Any]) -> list[str]:
    """One line per issue target."""
    if not found:
        return []
    lines = ["", "| target | value | goal | met |", "| --- | --- | --- | --- |"]
    for name, item in found.items():
        lines.append(
            f"| {name} | {_number(item['value'], 2)} | {item['comparison']} {item['target']:g} "
            f"| {'yes' if item['met'] else 'no'} |"
        )
    return lines


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    """Benchmark every requested method (baseline first) and assemble the report."""
    load_at_start = os.getloadavg()
    started = time.perf_counter()
    methods = sorted(args.methods, key=lambda name: name != BASELINE)
    with tempfile.TemporaryDirectory(prefix="medgan-bench-") as scratch:
        work_root = args.work_dir or Path(scratch)
        print(f"generating the fine-grid held-out heads (seed {FINE_SEED})", flush=True)
        args.fine_datalist = make_fine_heads(work_root / "fine_heads", args.smoke)
        args.twin_datalist = make_fine_heads(work_root / "twin_heads", args.smoke, twin=True)
        floor = resampling_floor(args.fine_datalist, 2 * (SMOKE_FINE_HEADS if args.smoke else FINE_HEADS)["spacing_mm"])
        results = {name: bench_method(name, args, work_root) for name in methods}
        speed = None if args.skip_speed else bench_speed(args, results, work_root)
    add_ratios(results)
    test_subjects = len(json.loads(Path(args.datalist).read_text())["test"])
    return {
        "benchmark": "translation",
        "smoke": args.smoke,
        "budget_seconds": args.budget_seconds,
        "budget_scheme": (
            f"fixed time budget per method: steps = budget / seconds_per_step, seconds_per_step = mean engine "
            f"step time (loader wait + train step + EMA) over {args.calibration_steps} calibration steps after "
            f"{args.warmup_steps} warm-up steps of a throwaway run of the same config; at least {MIN_STEPS} steps. "
            "The lr schedule runs to completion; validation, montages and checkpoints only at the end, their "
            "time and the start-up (cache fill) outside the budget (see train.wall_seconds)."
            + (f" Steps capped at {args.max_steps}." if args.max_steps else "")
        ),
        "max_steps": args.max_steps or None,
        "memory_measurement": (
            "each method trains (calibration + real run) in one child process and translates + evaluates in "
            "another; peak_rss_mb is that child's ru_maxrss, rss_after_imports_mb its RSS before any work"
        ),
        "datalist": str(args.datalist),
        "test_subjects": test_subjects,
        "baseline": BASELINE,
        "environment": environment(load_at_start),
        "total_seconds": time.perf_counter() - started,
        "fine_grid_heads": {
            **(SMOKE_FINE_HEADS if args.smoke else FINE_HEADS),
            "seed": FINE_SEED,
            "note": "phantom heads never trained on (a different seed from sample_data), all scored as test",
            "ct_round_trip_mae_hu": floor,
        },
        "methods": results,
        "speed": speed,
        "checks": checks(results),
        "targets": targets(results, speed),
        "cpu_features": cpu_features(),
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--budget-seconds", type=float, default=None, help=f"training budget per method ({DEFAULT_BUDGET_S:g}; smoke 8)"
    )
    parser.add_argument("--methods", nargs="+", choices=sorted(CONFIGS), default=list(CONFIGS))
    parser.add_argument(
        "--out", type=Path, default=RESULTS, help=f"results JSON ({RESULTS}); a .md table goes beside it"
    )
    parser.add_argument("--work-dir", type=Path, default=None, help="keep runs and outputs here (default: a temp dir)")
    parser.add_argument("--datalist", type=Path, default=DATALIST, help="datalist with training and test splits")
    parser.add_argument("--smoke", action="store_true", help="tiny networks and budget, for tests")
    parser.add_argument("--warmup-steps", type=int, default=None, help=f"steps not timed ({WARMUP_STEPS}; smoke 2)")
    parser.add_argument(
        "--calibration-steps", type=int, default=None, help=f"timed steps ({CALIBRATION_STEPS}; smoke 5)"
    )
    parser.add_argument("--max-steps", type=int, default=None, help="cap on the calibrated steps (none; smoke 30)")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads per child (0: torch's default; smoke 1)"
    )
    parser.add_argument(
        "--skip-speed", action="store_true", help="leave out the translate-path speed section (translate_speed.py)"
    )
    parser.add_argument("--worker", nargs=2, metavar=("STAGE", "SPEC"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    smoke_defaults = {"budget_seconds": 8.0, "warmup_steps": 2, "calibration_steps": 5, "max_steps": 30, "threads": 1}
    full_defaults = {
        "budget_seconds": DEFAULT_BUDGET_S,
        "warmup_steps": WARMUP_STEPS,
        "calibration_steps": CALIBRATION_STEPS,
        "max_steps": 0,
        "threads": 0,
    }
    for key, value in (smoke_defaults if args.smoke else full_defaults).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.datalist = args.datalist.resolve()
    args.fine_datalist = None  # written by run_benchmark
    args.twin_datalist = None
    return args


def main(argv: list[str] | None = None) -> dict[str, Any] | None:
    """Run the benchmark (or one child stage) and write the JSON and markdown results."""
    from medgan.io.strict_json import strict_json

    args = parse_args(argv)
    if args.worker:
        worker_main(args.worker[0], Path(args.worker[1]))
        return None
    report = strict_json(run_benchmark(args))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    table = markdown_table(report)
    args.out.with_suffix(".md").write_text(table)
    print(table, flush=True)
    return report


if __name__ == "__main__":
    main()
