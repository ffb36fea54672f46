"""Undersampled MRI reconstruction: zero-filled vs L1 + SSIM baseline vs GAN, at 4x and 8x, same budget.

Per acceleration (``configs/recon_4x.yaml``, ``configs/recon_8x.yaml``): the baseline
(``model.losses.lambda_adv=0``) and the GAN (the config's small adversarial weight) train for
the same number of steps on the bundled sample heads' training split; the real reconstruct
job (``pipelines.reconstruct.run_reconstruct``) then undersamples and reconstructs the held-out
test heads (same masks for every method: seed 0) and its ``recon.json`` gives fastMRI's
per-volume NMSE / PSNR / SSIM and the hallucination report for zero-filled and reconstructed
volumes. Reported: mean over heads per method, the learned-minus-zero-filled SSIM (target at
4x: >= 0.10), GAN minus baseline, reconstruction volumes per second and peak RSS growth.

    python benchmarks/reconstruction.py                 # ~70 minutes on 2 cores (2,000 steps per run)
    python benchmarks/reconstruction.py --smoke --out /tmp/recon.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
for folder in (REPO, REPO / "benchmarks"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import translate_memory  # noqa: E402
from common import write_results  # noqa: E402

from medgan.data.datalist import load_datalist  # noqa: E402
from medgan.precision import cpu_features  # noqa: E402
from pipelines.reconstruct import run_reconstruct, save_error_map  # noqa: E402
from pipelines.train import run_training  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "reconstruction.json"
DATALIST = REPO / "sample_data" / "datalist.json"
TARGET_SSIM_GAIN_4X = 0.10
FULL = {"accelerations": (4, 8), "steps": 2000, "overrides": []}
MONTAGE = Path(__file__).parent / "results" / "reconstruction_{acceleration}.png"
SMOKE = {
    "accelerations": (4,),
    "steps": 2,
    "overrides": [
        "model.generator.cascades=1",
        "model.generator.block.channels=[4, 8]",
        "data.patch_size=[16, 16, 16]",
        "model.discriminator.num_layers_d=2",
        "model.discriminator.channels=4",
    ],
}
METHODS = {"baseline": ["model.losses.lambda_adv=0", "train.lr={G: 0.001}"], "gan": []}


def mean_of(reports: list[dict[str, Any]], image: str) -> dict[str, float]:
    """Mean over heads of the metrics and hallucination numbers of one output image."""
    rows = [{**r["metrics"][image], **r["hallucination"][image]} for r in reports]
    keys = ("nmse", "psnr", "ssim", "unsampled_error_energy", "invented_regions", "invented_volume_fraction")
    return {key: float(np.mean([row[key] for row in rows])) for key in keys}


def training_health(run_dir: Path) -> dict[str, Any]:
    """The run's final health verdict and how its log intervals were judged (health.json)."""
    health = json.loads((run_dir / "health.json").read_text())
    return {"verdict": health["verdict"], "intervals": health["intervals"], "last": health["last"]}


def save_comparison(outputs: dict[str, Path], path: Path, acceleration: int) -> Path:
    """One test head: reference, zero-filled, baseline and GAN, and their error maps (invented regions outlined)."""
    first = {method: sorted(folder.glob("*/recon.json"))[0].parent for method, folder in outputs.items()}
    report = json.loads((first["baseline"] / "recon.json").read_text())
    reference = np.asarray(nib.load(report["input"]).get_fdata(), np.float32)
    images = {"zero-filled": nib.load(first["baseline"] / "zero_filled.nii.gz").get_fdata()}
    images |= {method: nib.load(folder / "reconstruction.nii.gz").get_fdata() for method, folder in first.items()}
    peak = float(np.percentile(reference, 99.5))
    scaled = {name: np.asarray(image, np.float32) / peak for name, image in images.items()}
    title = f"{first['baseline'].name}, {acceleration}x: zero-filled vs L1 + SSIM vs GAN"
    return save_error_map(reference / peak, scaled, path, title=title)


def measure(smoke: bool, work_dir: Path | None, steps: int | None = None) -> dict[str, Any]:
    settings = {**(SMOKE if smoke else FULL)}
    if steps is not None:
        settings["steps"] = steps
    test_mris = [Path(entry["mri"]) for entry in load_datalist(DATALIST, "test", require_keys=("mri",))]
    started = time.perf_counter()
    result: dict[str, Any] = {"accelerations": {}}
    with tempfile.TemporaryDirectory(prefix="medgan-recon-") as scratch:
        root = Path(work_dir or scratch)
        for acceleration in settings["accelerations"]:
            config = REPO / "configs" / f"recon_{acceleration}x.yaml"
            cell: dict[str, Any] = {"methods": {}}
            zero_filled = None
            outputs: dict[str, Path] = {}
            for method, extra in METHODS.items():
                run_dir = root / f"{method}_{acceleration}x"
                train_started = time.perf_counter()
                overrides = [f"train.steps={settings['steps']}", f"train.checkpoint_every={settings['steps']}"]
                overrides += ["train.sample_every=0", *settings["overrides"], *extra]
                run_training(config, run_dir=run_dir, overrides=overrides, quiet=True)
                train_seconds = time.perf_counter() - train_started
                out = root / f"out_{method}_{acceleration}x"
                outputs[method] = out
                before = translate_memory.reset_peak_rss()
                recon_started = time.perf_counter()
                summary = run_reconstruct(run_dir, test_mris, out, seed=0, progress=False, device="cpu")
                recon_seconds = time.perf_counter() - recon_started
                reports = [json.loads(path.read_text()) for path in sorted(out.glob("*/recon.json"))]
                zero_filled = mean_of(reports, "zero_filled")
                cell["methods"][method] = {
                    **mean_of(reports, "reconstruction"),
                    "steps": settings["steps"],
                    "train_seconds": train_seconds,
                    "volumes": summary.n_done,
                    "volumes_per_second": summary.n_done / recon_seconds,
                    "peak_rss_growth_mb": round(translate_memory.peak_rss_mb() - before, 1),
                    "acceleration_achieved": float(np.mean([r["acceleration_achieved"] for r in reports])),
                    "training_health": training_health(run_dir),
                }
            assert zero_filled is not None
            cell["zero_filled"] = zero_filled
            if not smoke:
                montage_path = Path(str(MONTAGE).format(acceleration=f"{acceleration}x"))
                montage = save_comparison(outputs, montage_path, acceleration)
                cell["montage"] = str(montage.relative_to(REPO))
            for values in cell["methods"].values():
                values["ssim_gain_vs_zero_filled"] = values["ssim"] - zero_filled["ssim"]
            cell["gan_minus_baseline"] = {
                key: cell["methods"]["gan"][key] - cell["methods"]["baseline"][key]
                for key in ("nmse", "psnr", "ssim", "unsampled_error_energy", "invented_regions")
            }
            result["accelerations"][f"{acceleration}x"] = cell
    four = result["accelerations"].get("4x")
    best_gain = max(m["ssim_gain_vs_zero_filled"] for m in four["methods"].values()) if four else float("nan")
    return {
        "benchmark": "reconstruction",
        "smoke": smoke,
        "test_heads": len(test_mris),
        **result,
        "targets": {
            "ssim_gain_vs_zero_filled_4x": {
                "value": best_gain,
                "target": TARGET_SSIM_GAIN_4X,
                "comparison": ">=",
                "met": bool(best_gain >= TARGET_SSIM_GAIN_4X),
            }
        },
        "cpu_features": dict(cpu_features()),
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "wall_seconds": time.perf_counter() - started,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="4x only, tiny networks, 2 steps")
    parser.add_argument("--steps", type=int, default=None, help=f"training steps per run (default {FULL['steps']})")
    parser.add_argument("--work-dir", type=Path, default=None, help="keep the runs and outputs here")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"results JSON ({RESULTS})")
    args = parser.parse_args(argv)
    result = write_results(args.out, measure(args.smoke, args.work_dir, args.steps))
    print(json.dumps(result["targets"], indent=2))
    return result


if __name__ == "__main__":
    main()
