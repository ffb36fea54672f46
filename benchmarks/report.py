"""Does `medgan report` fire on what it should and stay quiet otherwise? Its checks on planted faults.

Data: a fresh phantom (``medgan sample-data``, ``subjects`` heads at 48^3, 5 mm, seed 7) is the
real set (its validation + test lists the reference, its training list the generator's training
set). Each synthetic set holds ``n`` CT volumes written as NIfTI:

* ``independent``: heads of another phantom draw (seed 8): a "perfect generator"; nothing
  should fail (the false-alarm case);
* ``memorised``: training heads plus 5 HU noise: memorisation must fail;
* ``checkerboard``: independent heads plus a +-30 HU voxel checkerboard: the grid check;
* ``blurred``: independent heads smoothed (Gaussian, 1.5 voxels): realism / texture;
* ``collapsed``: one independent head repeated with 5 HU noise: diversity;
* ``bone_shifted``: independent heads with bone (> 300 HU) raised by 400 HU: intensity;
* ``out_of_range``: independent heads with the air set to -3024 HU (a padding value): HU range.

Reported per set: every check's verdict and value, whether the expected check fired (warn or
fail), the failing checks, and the report's wall time; overall the detection rate on planted
faults and the checks that failed on ``independent``.

    python benchmarks/report.py                 # ~6 min on 2 cores
    python benchmarks/report.py --smoke --out /tmp/report_bench.json
"""

from __future__ import annotations

import argparse
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

import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402
from common import environment, write_results  # noqa: E402
from scipy import ndimage  # noqa: E402

from medgan.config.report import ReportConfig  # noqa: E402
from pipelines.report import run_report  # noqa: E402
from pipelines.sample_data import make_sample_data  # noqa: E402

RESULTS = REPO / "benchmarks" / "results" / "report.json"
EXPECTED = {
    "independent": None,
    "memorised": "memorisation.nearest_training",
    "checkerboard": "artifacts.checkerboard",
    "blurred": "realism.",
    "collapsed": "diversity.",
    "bone_shifted": "intensity.",
    "out_of_range": "intensity.hu_range",
}


def _heads(datalist: Path, split: str) -> list[tuple[np.ndarray, np.ndarray]]:
    content = json.loads(datalist.read_text())
    images = [nib.load(str(datalist.parent / entry["ct"])) for entry in content[split]]
    return [(np.asarray(image.dataobj, dtype=np.float32), image.affine) for image in images]


def _faulty(kind: str, fresh: list, training: list, n: int, rng: np.random.Generator) -> list[np.ndarray]:
    """The set of ``kind``; values stay in the scanner's range except where that is the fault."""
    planted = _planted(kind, fresh, training, n, rng)
    return planted if kind == "out_of_range" else [np.clip(v, -1024.0, 3071.0) for v in planted]


def _planted(kind: str, fresh: list, training: list, n: int, rng: np.random.Generator) -> list[np.ndarray]:
    heads = [volume.copy() for volume, _ in fresh[:n]]
    if kind == "memorised":
        return [volume + rng.normal(0, 5, volume.shape).astype(np.float32) for volume, _ in training[:n]]
    if kind == "checkerboard":
        pattern = 30.0 * (2 * (np.indices(heads[0].shape).sum(axis=0) % 2) - 1)
        return [volume + pattern for volume in heads]
    if kind == "blurred":
        return [ndimage.gaussian_filter(volume, 1.5) for volume in heads]
    if kind == "collapsed":
        return [heads[0] + rng.normal(0, 5, heads[0].shape).astype(np.float32) for _ in heads]
    if kind == "bone_shifted":
        return [np.where(volume > 300, volume + 400, volume) for volume in heads]
    if kind == "out_of_range":
        return [np.where(volume < -900, -3024.0, volume).astype(np.float32) for volume in heads]
    return heads


def _write_set(folder: Path, volumes: list[np.ndarray], affine: np.ndarray) -> Path:
    for index, volume in enumerate(volumes):
        path = folder / f"sample_{index:03d}" / "ct.nii.gz"
        path.parent.mkdir(parents=True, exist_ok=True)
        nib.save(nib.Nifti1Image(volume.astype(np.float32), affine), str(path))
    return folder


def _fired(verdicts: dict[str, str], expected: str | None) -> bool | None:
    if expected is None:
        return None
    return any(v in ("warn", "fail") for k, v in verdicts.items() if k.startswith(expected))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subjects", type=int, default=40)
    parser.add_argument("--n", type=int, default=12, help="Volumes per synthetic set.")
    parser.add_argument("--smoke", action="store_true", help="Tiny sizes, two sets: a check that it runs.")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    subjects, n, kinds = args.subjects, args.n, list(EXPECTED)
    extra: dict[str, Any] = {}
    if args.smoke:
        subjects, n, kinds = 14, 4, ["independent", "memorised"]
        extra = {"two_sample_steps": 5, "in_domain_steps": 5}
    rng = np.random.default_rng(0)
    sets: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        make_sample_data(
            root / "real", subjects=subjects, shape=(48, 48, 48), lesion_fraction=0.5, seed=7, progress=False
        )
        make_sample_data(
            root / "fresh", subjects=max(n, 4) * 2, shape=(48, 48, 48), lesion_fraction=0.5, seed=8, progress=False
        )
        real = root / "real" / "datalist.json"
        fresh = _heads(root / "fresh" / "datalist.json", "training") + _heads(root / "fresh" / "datalist.json", "test")
        training = _heads(real, "training")
        for kind in kinds:
            folder = _write_set(root / kind, _faulty(kind, fresh, training, n, rng), fresh[0][1])
            config = ReportConfig(real=real, synthetic=folder, out=root / f"report_{kind}", **extra)
            started = time.perf_counter()
            result = run_report(config, progress=not args.quiet)
            seconds = time.perf_counter() - started
            verdicts = {c.check_id: c.verdict for c in result.checks}
            sets[kind] = {
                "expected": EXPECTED[kind],
                "expected_fired": _fired(verdicts, EXPECTED[kind]),
                "failing": sorted(k for k, v in verdicts.items() if v == "fail"),
                "warning": sorted(k for k, v in verdicts.items() if v == "warn"),
                "values": {c.check_id: c.value for c in result.checks},
                "overall": result.verdicts["overall"],
                "seconds": round(seconds, 1),
            }
    planted = [s for s in sets.values() if s["expected"] is not None]
    summary = {
        "planted_faults_detected": f"{sum(bool(s['expected_fired']) for s in planted)} / {len(planted)}",
        "false_alarms_on_independent": sets.get("independent", {}).get("failing", []),
        "warnings_on_independent": sets.get("independent", {}).get("warning", []),
    }
    result = {
        "environment": environment(),
        "settings": {"subjects": subjects, "n": n, "smoke": args.smoke},
        "summary": summary,
        "sets": sets,
    }
    written = write_results(args.out, result)
    print(json.dumps(summary, indent=2))
    return written


if __name__ == "__main__":
    main()
