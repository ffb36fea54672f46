"""Translate-job speed: today's default inference path against the new default settings, side by side.

"Today's default path" is the inference the shipped configs used before window-invariant
inference: 32^3 windows, overlap 0.5, no context, fp32, contiguous memory, 2 windows per
forward pass (:data:`TODAYS_DEFAULT`). The new default is the run's own ``inference``
section (cores of at most 256^3 + 16 voxels of context, overlap 0, ``precision: auto``,
``channels_last: auto``). Both go through the real translate job
(``pipelines.translate.run_translate``: load the run, read the NIfTI, preprocess,
sliding windows, back to the input grid, body fill, NIfTI write, manifest), in one
process, with the same run, after one warm-up translation per path; ``seconds`` is the
wall time of each timed job (one volume), ``item_seconds`` the job's own per-item time
(without loading the run). ``network_path`` times the inference path alone (the same
preprocessed volume through each path's windows, memory format and precision), which is
what the two paths differ in; the rest of the job is the same work for both. Both paths
run under the allocator setting the CLI applies (:mod:`medgan.allocator`, recorded as
``allocator``; ``MEDGAN_ALLOCATOR=system`` times glibc's defaults).

Input: a phantom head MRI on a 256 x 256 x 200 grid at 0.9375 mm (240 x 240 x 187.5 mm,
``medgan.data.phantom``, head-shaped, not noise). The translate job resamples inputs to the
run's trained spacing, so a run trained on the 5 mm sample heads would shrink this input to
~48 x 48 x 38 voxels and time mostly the resampling. The timed run is therefore trained
(briefly: the cost of a forward pass does not depend on the weights) with the shipped
``unet_l1`` config (the pix2pix generator) on one phantom head of the same ~1 mm grid, so no
resampling happens and the network runs on the full 13 M-voxel grid a user's 1 mm scan has.

Quality under both paths is measured on the 5 mm test heads of the sample datalist with a
run trained on them (``--mae-run``, e.g. the translation benchmark's pix2pix run): mean MAE
(HU) inside the body under each path and their difference.

    python benchmarks/translate_speed.py --mae-run runs/pix2pix-...        # full size (~15 min on 2 cores)
    python benchmarks/translate_speed.py --smoke --out /tmp/speed.json     # tiny grid and network, seconds
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
for folder in (REPO, REPO / "benchmarks"):  # the package, and sibling scripts (common)
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
RESULTS = Path(__file__).parent / "results" / "translate_speed.json"
DATALIST = REPO / "sample_data" / "datalist.json"
SPEED_CONFIG = REPO / "configs" / "unet_l1_mri2ct.yaml"
TODAYS_DEFAULT = (
    "inference.roi_size=[32,32,32]",
    "inference.overlap=0.5",
    "inference.context=0",
    "inference.precision=fp32",
    "inference.channels_last=false",
    "inference.sw_batch_size=2",
)
PATHS = {"todays_default": TODAYS_DEFAULT, "default": ()}
SPEED_SEED = 4242  # never used for training data elsewhere (sample_data is seed 0)
FULL = {"shape": (256, 256, 200), "spacing_mm": 0.9375, "train_steps": 10, "repeats": 5}
SMOKE = {"shape": (64, 64, 48), "spacing_mm": 3.75, "train_steps": 3, "repeats": 1}
TINY_NETS = (
    "model.generator.channels=[4,8]",
    "model.generator.strides=[2]",
    "model.generator.num_res_units=0",
    "data.patch_size=[16,16,16]",
)
TARGET_SPEEDUP = 4.0
TARGET_MAE_DIFFERENCE_HU = 2.0


# ---- the translate job with inference overrides -----------------------------------------------------


def translate(
    run_dir: str | Path,
    inputs: Sequence[str | Path],
    out_dir: str | Path,
    overrides: Sequence[str] = (),
    *,
    split: str | None = None,
    overwrite: bool = False,
) -> Any:
    """``run_translate`` with ``--set inference.KEY=VALUE`` overrides; returns its job summary."""
    from pipelines.translate import run_translate

    return run_translate(
        run_dir, inputs, out_dir, split=split, overwrite=overwrite, progress=False, overrides=list(overrides)
    )


def config_with(config: Any, overrides: Sequence[str]) -> Any:
    """``config`` (an ExperimentConfig) with ``a.b=c`` overrides applied and validated."""
    from medgan.config.loader import apply_overrides, validate_config
    from medgan.config.schema import ExperimentConfig

    return validate_config(apply_overrides(config.model_dump(mode="json"), overrides), ExperimentConfig)


def plan_of(run_dir: str | Path, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """The resolved inference path (precision, layout, windows) of the run's config plus overrides, on the CPU."""
    import torch

    from medgan.config.loader import load_config
    from medgan.config.schema import ExperimentConfig
    from medgan.inference.plan import InferencePlan

    config = config_with(load_config(Path(run_dir) / "config.yaml", ExperimentConfig), overrides)
    plan = InferencePlan.from_config(config.inference, torch.device("cpu"), divisible_by=config.data.divisible_by)
    return {
        "precision": plan.precision,
        "channels_last": plan.channels_last,
        "roi_size": list(plan.window.roi_size),
        "overlap": plan.window.overlap,
        "context": plan.window.context,
        "sw_batch_size": plan.window.sw_batch_size,
        "describe": plan.describe(),
    }


def run_spacing(run_dir: str | Path) -> Any:
    """What the run's config says about spacing (``data.spacing``: null = the training data's native one)."""
    import yaml

    data = yaml.safe_load((Path(run_dir) / "config.yaml").read_text()).get("data", {})
    return {key: value for key, value in data.items() if "spacing" in key}


def cpu_report() -> dict[str, Any]:
    """The /proc/cpuinfo flags that decide the CPU inference path, and the precision ``auto`` resolves to."""
    import torch

    from medgan.precision import CPU_FEATURE_FLAGS, cpu_features, resolve_inference_precision

    return {
        "flags_read": list(CPU_FEATURE_FLAGS),
        "features": cpu_features(),
        "inference_precision_auto": resolve_inference_precision("auto", torch.device("cpu")),
    }


# ---- the measurement ------------------------------------------------------------------------------


def make_speed_heads(out_dir: Path, shape: Sequence[int], spacing_mm: float) -> tuple[Path, Path]:
    """Two phantom heads on the speed grid: one to train on, one to time; returns (datalist, timed MRI)."""
    from medgan.data.phantom import PhantomDatasetConfig, write_phantom_dataset

    config = PhantomDatasetConfig(
        subjects=2, shape=tuple(shape), spacing_mm=spacing_mm, lesion_fraction=0.0, seed=SPEED_SEED
    )
    result = write_phantom_dataset(out_dir, config, montage_subjects=1)
    content = json.loads(result.datalist_path.read_text())
    entries = sorted((e for split in ("training", "validation", "test") for e in content[split]), key=_subject)
    content |= {"training": entries[:1], "validation": [], "test": entries[1:]}
    result.datalist_path.write_text(json.dumps(content, indent=2) + "\n")
    return result.datalist_path, out_dir / entries[1]["mri"]


def _subject(entry: dict[str, Any]) -> str:
    return entry["subject"]


def train_speed_run(datalist: Path, work: Path, steps: int, smoke: bool) -> Path:
    """A briefly trained unet_l1 run on the speed grid's spacing (weights do not change the cost)."""
    from pipelines.train import run_training

    overrides = [
        f"data.datalist={datalist}",
        "data.validation_volumes=0",
        f"train.steps={steps}",
        "train.log_every=1",
        "train.validate_every=0",
        "train.sample_every=0",
        f"train.checkpoint_every={steps}",
        *(TINY_NETS if smoke else ()),
    ]
    return Path(run_training(SPEED_CONFIG, run_dir=work / "speed_run", overrides=overrides, quiet=True))


def time_paths(run_dir: Path, mri: Path, work: Path, repeats: int) -> dict[str, dict[str, Any]]:
    """Warm up each path once, then time ``repeats`` translate jobs per path, alternating the paths."""
    timings: dict[str, dict[str, Any]] = {
        name: {"overrides": list(overrides), "seconds": [], "item_seconds": []} for name, overrides in PATHS.items()
    }
    for name, overrides in PATHS.items():  # warm-up: oneDNN kernels, allocator, file cache
        summary = translate(run_dir, [mri], work / f"warmup_{name}", overrides, overwrite=True)
        if summary.exit_code:
            raise RuntimeError(f"warm-up translation ({name}) failed: {summary.failures}")
    for repeat in range(repeats):
        for name, overrides in PATHS.items():
            started = time.perf_counter()
            summary = translate(run_dir, [mri], work / f"timed_{name}", overrides, overwrite=True)
            seconds = time.perf_counter() - started
            if summary.exit_code:
                raise RuntimeError(f"timed translation ({name}, repeat {repeat}) failed: {summary.failures}")
            timings[name]["seconds"].append(seconds)
            timings[name]["item_seconds"].append(sum(record.seconds for record in summary.records))
    for name, timing in timings.items():
        timing["seconds_median"] = statistics.median(timing["seconds"])
        timing["item_seconds_median"] = statistics.median(timing["item_seconds"])
        timing["plan"] = plan_of(run_dir, PATHS[name])
    return timings


def time_network_paths(run_dir: Path, mri: Path, repeats: int) -> dict[str, dict[str, Any]]:
    """The inference path alone: the preprocessed input through each path's windows and network.

    The same preprocessed volume (read, oriented, scaled, cropped to the body box) goes
    through ``InferencePlan.translate`` (windows, memory format, precision) under each
    path, after one warm-up pass each; reading, preprocessing, the air mask, the way back
    to the input grid and the write are the same for both paths and left out here.
    """
    from medgan.inference import InferencePlan, VolumeTranslator
    from medgan.io import read_volume
    from medgan.training import load_trained_run

    run = load_trained_run(run_dir, device="cpu")
    source = None
    timings: dict[str, dict[str, Any]] = {}
    for name, overrides in PATHS.items():
        config = config_with(run.config, overrides)
        plan = InferencePlan.from_config(config.inference, "cpu", divisible_by=config.data.divisible_by)
        if source is None:
            volume = VolumeTranslator.from_config(run.translate, config, plan=plan)
            read = read_volume(mri, options=volume.read_options)
            source = volume.preprocess({volume.source_key: read})[volume.source_key]
        plan.prepare(run.networks.values())
        plan.translate(source, run.translate)  # warm-up
        seconds = []
        for _ in range(repeats):
            started = time.perf_counter()
            plan.translate(source, run.translate)
            seconds.append(time.perf_counter() - started)
        timings[name] = {"seconds": seconds, "seconds_median": statistics.median(seconds)}
    timings["network_grid"] = {"shape": list(source.shape[1:])}
    return timings


def mae_under_both_paths(mae_run: Path, datalist: Path, work: Path) -> dict[str, Any]:
    """Mean MAE (HU, inside the body) of the 5 mm test heads translated under each path, and the difference."""
    from pipelines.evaluate_translation import evaluate_translation

    maes = {}
    for name, overrides in PATHS.items():
        out_dir = work / f"test_heads_{name}"
        summary = translate(mae_run, [datalist], out_dir, overrides, split="test")
        if summary.exit_code:
            raise RuntimeError(f"test-head translation ({name}) failed: {summary.failures}")
        maes[name] = evaluate_translation(out_dir, datalist, split="test").summary["mae_hu"]["mean"]
    return {
        "run": str(mae_run),
        "datalist": str(datalist),
        "mae_hu": maes,
        "abs_difference_hu": abs(maes["default"] - maes["todays_default"]),
    }


def measure(
    work: Path,
    *,
    smoke: bool,
    mae_run: Path | None = None,
    datalist: Path = DATALIST,
    repeats: int | None = None,
) -> dict[str, Any]:
    """The whole speed section: heads, the ~1 mm run, timings, the precision path and the test-set MAEs."""
    import nibabel as nib
    from common import environment

    settings = SMOKE if smoke else FULL
    repeats = repeats or settings["repeats"]
    speed_datalist, mri = make_speed_heads(work / "speed_heads", settings["shape"], settings["spacing_mm"])
    run_dir = train_speed_run(speed_datalist, work, settings["train_steps"], smoke)
    timings = time_paths(run_dir, mri, work, repeats)
    network = time_network_paths(run_dir, mri, repeats)
    image = nib.load(mri)
    speedup = timings["todays_default"]["seconds_median"] / timings["default"]["seconds_median"]
    quality = mae_under_both_paths(mae_run, datalist, work) if mae_run else None
    cpu = cpu_report()
    result = {
        "benchmark": "translate_speed",
        "smoke": smoke,
        "input": {
            "what": "phantom head MRI (medgan.data.phantom, T1w), the timed subject of a 2-head set",
            "shape": list(image.shape),
            "spacing_mm": [round(float(s), 4) for s in image.header.get_zooms()[:3]],
            "voxels": int(math.prod(image.shape)),
            "phantom_seed": SPEED_SEED,
        },
        "note": (
            "The translate job resamples inputs to the run's trained spacing; a run trained on the 5 mm sample "
            "heads would shrink this ~1 mm input ~5x per axis and the timing would be mostly resampling. The "
            f"timed run is the shipped unet_l1 config (the pix2pix generator{', tiny in smoke mode' if smoke else ''})"
            f" trained for {settings['train_steps']} steps on the other head of the same grid (speed does not "
            "depend on the weights), so the network runs on the input's full grid. Test-set MAE is from "
            "mae_run (trained on the 5 mm heads) on the 5 mm test heads under both paths."
        ),
        "run": {
            "run_dir": str(run_dir),
            "spacing_config": run_spacing(run_dir),
            "train_steps": settings["train_steps"],
        },
        "warmup": "one translate job per path on the same input before timing",
        "repeats": repeats,
        "paths": timings,
        "speedup_default_vs_todays_default": speedup,
        "network_path": network,
        "network_speedup_default_vs_todays_default": (
            network["todays_default"]["seconds_median"] / network["default"]["seconds_median"]
        ),
        "default_precision": timings["default"]["plan"]["precision"],
        "cpu": cpu,
        "test_mae": quality,
        "environment": environment(),
    }
    result["targets"] = targets(result)
    return result


def target(value: float | None, limit: float, comparison: str) -> dict[str, Any]:
    """One issue target: the value, the limit, and whether it is met (null value: not measured, not met)."""
    finite = value is not None and math.isfinite(value)
    met = finite and (value >= limit if comparison == ">=" else value <= limit)
    return {"value": value if finite else None, "target": limit, "comparison": comparison, "met": bool(met)}


def targets(result: dict[str, Any]) -> dict[str, Any]:
    """The speed section's targets: >= 4x faster than today's default path, <= 2 HU test MAE change."""
    quality = result.get("test_mae") or {}
    return {
        "translate_speedup": target(result["speedup_default_vs_todays_default"], TARGET_SPEEDUP, ">="),
        "network_path_speedup": target(result["network_speedup_default_vs_todays_default"], TARGET_SPEEDUP, ">="),
        "test_mae_difference_hu": target(quality.get("abs_difference_hu"), TARGET_MAE_DIFFERENCE_HU, "<="),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Measure and write the JSON (see the module docstring)."""
    from medgan.io.strict_json import strict_json

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny grid and network, seconds")
    parser.add_argument("--mae-run", type=Path, default=None, help="run trained on the 5 mm heads for the test MAE")
    parser.add_argument("--datalist", type=Path, default=DATALIST, help="datalist whose test split scores mae-run")
    parser.add_argument(
        "--repeats", type=int, default=None, help="timed jobs per path (5; smoke 1): single jobs vary by ~15 %%"
    )
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--work-dir", type=Path, default=None, help="keep heads, run and outputs here")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"results JSON ({RESULTS})")
    args = parser.parse_args(argv)
    import torch

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    from medgan.allocator import keep_freed_memory

    allocator = keep_freed_memory()  # what the CLI runs under, for both paths
    with tempfile.TemporaryDirectory(prefix="medgan-speed-") as scratch:
        work = args.work_dir or Path(scratch)
        measured = measure(
            work, smoke=args.smoke, mae_run=args.mae_run, datalist=args.datalist.resolve(), repeats=args.repeats
        )
        result = strict_json({**measured, "allocator": allocator})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(
        json.dumps(
            {k: result[k] for k in ("speedup_default_vs_todays_default", "default_precision", "targets")}, indent=2
        ),
        flush=True,
    )
    return result


if __name__ == "__main__":
    main()
