"""Peak memory and speed of the translate job on one large MRI volume (CPU by default).

Writes a synthetic head-like MRI of ``--shape`` voxels (``--input-spacing`` mm) to a
temporary folder, then runs the real translate job (read, preprocess, sliding
window, Invertd back to the input grid, NIfTI write, manifest) with a randomly
initialised generator of the default config (weights do not change the cost).
Reports absolute numbers: peak RSS of the process, its growth over the baseline
after imports and network construction, seconds and voxels per second. The job runs
under the allocator setting the CLI applies (:mod:`medgan.allocator`);
``MEDGAN_ALLOCATOR=system`` measures glibc's defaults.

    python benchmarks/translate_memory.py                       # 256 x 256 x 200, default generator
    python benchmarks/translate_memory.py --shape 128 128 100 --tiny --json /tmp/m.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import torch

from medgan.allocator import keep_freed_memory
from medgan.config.schema import ExperimentConfig
from medgan.jobs import JobFingerprint
from medgan.models import build_network
from medgan.precision import resolve_inference_precision
from pipelines.translate import translate_inputs

RESULTS = Path(__file__).parent / "results" / "translate_memory.json"
TINY_GENERATOR = {"name": "unet3d", "channels": [4, 8], "strides": [2], "num_res_units": 0}


def _proc_status_mb(field: str) -> float | None:
    """A memory field (VmRSS, VmHWM) of /proc/self/status in MiB, or None off Linux."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def reset_peak_rss() -> float:
    """Reset the kernel's peak-RSS mark to the current RSS and return it, in MiB.

    Without the reset, ru_maxrss keeps the peak of the imports (which later
    allocations reuse), so a small job's growth would read as zero.
    """
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")
    current = _proc_status_mb("VmRSS")
    return current if current is not None else peak_rss_mb()


def peak_rss_mb() -> float:
    """This process's peak resident memory since the last reset, in MiB."""
    peak = _proc_status_mb("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def write_head_mri(path: Path, shape: tuple[int, int, int], spacing: tuple[float, float, float]) -> None:
    """Write a head-like T1 MRI: an ellipsoid filling ~80 % of the field of view, dark core, noise.

    Runs in a child process (see :func:`measure`) so that making the input does not
    raise the measured process's memory high-water mark.
    """
    rng = np.random.default_rng(0)
    axes = [np.linspace(-1, 1, size, dtype=np.float32) for size in shape]
    radius = np.sqrt(axes[0][:, None, None] ** 2 + axes[1][None, :, None] ** 2 + axes[2][None, None, :] ** 2)
    mri = np.where(radius < 0.8, 500.0, 10.0).astype(np.float32)
    mri[radius < 0.3] = 150.0
    mri += rng.normal(0.0, 8.0, shape).astype(np.float32)
    nib.save(nib.Nifti1Image(np.abs(mri, out=mri), np.diag([*spacing, 1.0])), str(path))


def measure(args: argparse.Namespace) -> dict:
    """Run the job once on a fresh volume and return the measurements."""
    torch.set_num_threads(args.threads or torch.get_num_threads())
    allocator = keep_freed_memory()  # as the CLI does; MEDGAN_ALLOCATOR=system measures the default
    load_at_start = os.getloadavg()[0]  # other processes on the machine slow the timing down
    config = ExperimentConfig.model_validate(
        {
            "data": {"spacing": args.target_spacing},
            "model": {"generator": TINY_GENERATOR} if args.tiny else {},
            "inference": {
                key: value
                for key, value in (
                    ("roi_size", args.roi),
                    ("overlap", args.overlap),
                    ("sw_batch_size", args.sw_batch_size),
                )
                if value is not None  # not given: the config's default (what users get)
            },
        }
    )
    torch.manual_seed(0)
    generator = build_network(config.model.generator).eval()
    with tempfile.TemporaryDirectory() as scratch:
        source = Path(scratch) / "large_mri.nii.gz"
        maker = multiprocessing.get_context("spawn").Process(
            target=write_head_mri, args=(source, tuple(args.shape), tuple(args.input_spacing))
        )
        maker.start()
        maker.join()
        if maker.exitcode:
            raise SystemExit(f"writing the input volume failed (exit code {maker.exitcode})")
        baseline_mb = reset_peak_rss()
        started = time.perf_counter()
        summary = translate_inputs(
            generator,
            config,
            [source],
            Path(scratch) / "out",
            fingerprint=JobFingerprint(None, None),
            progress=False,
        )
        seconds = time.perf_counter() - started
        if summary.exit_code:
            raise SystemExit(f"translation failed: {summary.failures}")
    peak_mb = peak_rss_mb()
    voxels = int(np.prod(args.shape))
    return {
        "shape": list(args.shape),
        "input_spacing_mm": list(args.input_spacing),
        "target_spacing_mm": args.target_spacing,
        "generator": config.model.generator,
        "roi_size": list(config.inference.roi_size),
        "overlap": config.inference.overlap,
        "sw_batch_size": config.inference.sw_batch_size,
        "context": config.inference.context,
        "precision": resolve_inference_precision(config.inference.precision, torch.device("cpu")),
        "device": "cpu",
        "allocator": allocator,
        "threads": torch.get_num_threads(),
        "load_average_1min_at_start": round(load_at_start, 2),
        "baseline_rss_mb": round(baseline_mb, 1),
        "peak_rss_mb": round(peak_mb, 1),
        "peak_growth_mb": round(peak_mb - baseline_mb, 1),
        "seconds": round(seconds, 2),
        "voxels_per_second": round(voxels / seconds),
        "input_float32_mb": round(voxels * 4 / 2**20, 1),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
    }


def main(argv: list[str] | None = None) -> dict:
    """Parse options, measure, print and save the JSON."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", type=int, nargs=3, default=[256, 256, 200])
    parser.add_argument("--input-spacing", type=float, nargs=3, default=[0.9, 0.9, 1.2])
    parser.add_argument("--target-spacing", type=float, nargs=3, default=[1.0, 1.0, 1.0])
    parser.add_argument("--roi", type=int, nargs=3, default=None, help="window core (default: the config's)")
    parser.add_argument("--overlap", type=float, default=None, help="core overlap (default: the config's)")
    parser.add_argument("--sw-batch-size", type=int, default=None, help="windows per pass (default: the config's)")
    parser.add_argument("--tiny", action="store_true", help="a 2-level, 4-channel generator (tests)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--json", type=Path, default=RESULTS, help=f"where to write the result ({RESULTS})")
    args = parser.parse_args(argv)
    result = measure(args)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
