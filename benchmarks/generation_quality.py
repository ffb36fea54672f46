"""cgan3d sample quality on the phantom, with and without ADA, at 16 and 64 training volumes.

Run by ``benchmarks/generation.py`` (``--part quality``), which writes the result
under ``quality`` in ``benchmarks/results/generation.json``; also runnable alone.

Data: a fresh phantom (``medgan sample-data``, 48^3 at 5 mm, the ``haemorrhage`` lesion mix:
large bright haemorrhages, the one phantom class a small classifier learns from a few dozen
heads, so conditioning can be judged at all), split into 64 training heads (32 per class; the
16-volume set is its first 8 + 8) and held-out heads (the rest, balanced).

Per cell (n_train x ADA on/off): ``configs/cgan3d.yaml`` generating an MRI + CT pair at the
native 48^3 / 5 mm grid (the class is learnable there, not at the config's 32^3 / 7.5 mm: measured
0.75-0.81 vs 0.54-0.60 held-out accuracy; nor on CT alone, where a haemorrhage is ~25 HU above
brain), trained for ``--steps`` steps with the real train job; then ``medgan generate``'s job
(``pipelines.generate.run_generate``) writes as many samples per class as there are held-out
heads of that class, read back from NIfTI (CT in HU, MRI on generate's 0-1000 scale).
Measured against the held-out heads (preprocessed exactly as cgan3d trains):

* tissue statistics per class (body / bone / soft tissue ml, mean HU in the body), and their
  standardised difference from the real ones and their spread ratio (sample sd / real sd: near 0
  = near-copies) (``medgan.evaluation.generation_quality``);
* conditioning accuracy: a ``densenet3d`` classifier trained on the MRI channel of the 64 real
  training heads, its accuracy on the held-out heads (the reference) and on the samples'
  MRI (labelled with the class they were asked for); target: samples within 0.1 of the
  reference, judged only when the reference is informative (>= 0.6); and its mean lesion
  probability per class asked for (real held-out heads: the same per true class);
* diversity: mean pairwise MS-SSIM of the CT channel within each class, samples vs held-out
  heads (samples more alike than reals = collapse);
* the run's last health verdict and ADA p.

    python benchmarks/generation_quality.py --steps 600      # ~45 min on 2 cores
    python benchmarks/generation_quality.py --smoke          # tiny nets and grid, a minute
    python benchmarks/generation_quality.py --cells n64_ada_on --steps 2000 --threads 1 &   # cells as
    python benchmarks/generation_quality.py --cells n64_ada_off --steps 2000 --threads 1 &  # parallel jobs

Cells run as separate processes merge into the stored section (same phantom and overrides; each cell
keeps its own steps and classifier accuracy). Two one-thread processes did ~1.16x the steps of one
two-thread process on a 2-core EPYC (40 steps at 48^3: 117 s for both vs 68 s for one).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
for folder in (REPO, REPO / "benchmarks"):  # the package, and sibling scripts (common)
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from common import write_results  # noqa: E402

from medgan.config.loader import load_config  # noqa: E402
from medgan.config.schema import ExperimentConfig  # noqa: E402
from medgan.data.presets import get_preset  # noqa: E402
from medgan.evaluation.classifier import (  # noqa: E402
    ClassifierSettings,
    accuracy,
    predict_probabilities,
    train_classifier,
)
from medgan.evaluation.generation_quality import (  # noqa: E402
    ct_tissue_statistics,
    mean_pairwise_ms_ssim,
    spread_ratios,
    standardised_differences,
    summarise_statistics,
)
from medgan.io.strict_json import strict_json  # noqa: E402
from medgan.methods import get_method  # noqa: E402
from pipelines.generate import from_physical, run_generate  # noqa: E402
from pipelines.sample_data import make_sample_data  # noqa: E402
from pipelines.train import run_training  # noqa: E402

CONFIG = REPO / "configs" / "cgan3d.yaml"
RESULTS = Path(__file__).parent / "results" / "generation.json"
PHANTOM_SEED = 41  # never the bundled sample data's seed (0)
CONDITIONING_TOLERANCE = 0.1
LESION_MIX = "haemorrhage"
PAIR = "model.images={mri: mri, ct: ct}"  # MRI carries the class, CT the HU statistics
FULL = {
    "subjects": 112,
    "shape": 48,
    "train_sizes": (16, 64),
    "steps": 600,
    "classifier_steps": 300,
    "overrides": [PAIR, "data.spacing=null", "data.patch_size=[48, 48, 48]"],
}
SMOKE = {
    "subjects": 16,
    "shape": 48,
    "train_sizes": (4, 8),
    "steps": 4,
    "classifier_steps": 4,
    "overrides": [
        PAIR,
        "data.spacing=[15.0, 15.0, 15.0]",
        "data.patch_size=[16, 16, 16]",
        "model.generator.channels=[16, 8, 4]",
        "model.generator.latent_dim=16",
        "model.generator.embedding_dim=8",
        "model.discriminator.channels=[4, 8]",
        "train.ema_start_step=0",
    ],
}
SMOKE_CLASSIFIER = {"name": "densenet3d", "init_features": 4, "growth_rate": 2, "block_config": [1]}


def write_splits(phantom: Path, train_sizes: tuple[int, ...]) -> tuple[Path, dict[str, int]]:
    """A datalist with nested balanced training sets ``train_<n>`` and a balanced ``heldout`` split."""
    content = json.loads((phantom / "datalist.json").read_text())
    entries = [e for split in ("training", "validation", "test") for e in content[split]]
    for entry in entries:
        for key in ("mri", "ct", "labels", "lesion_mask"):
            if key in entry:
                entry[key] = str(phantom / entry[key])
    by_class = [[e for e in entries if e["label"] == label] for label in (0, 1)]
    largest = max(train_sizes) // 2
    splits: dict[str, list[dict[str, Any]]] = {
        f"train_{n}": by_class[0][: n // 2] + by_class[1][: n // 2] for n in train_sizes
    }
    held = min(len(by_class[0]), len(by_class[1])) - largest
    if held < 2:
        raise ValueError(f"{len(entries)} subjects leave {held} held-out heads per class")
    splits["heldout"] = by_class[0][largest : largest + held] + by_class[1][largest : largest + held]
    path = phantom / "benchmark_datalist.json"
    path.write_text(json.dumps(splits, indent=1))
    return path, {name: len(split) for name, split in splits.items()}


def real_volumes(datalist: Path, split: str, overrides: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """The split's volumes exactly as cgan3d trains on them (network scale) and their classes."""
    config = load_config(
        CONFIG, ExperimentConfig, [f"data.datalist={datalist}", f"data.train_split={split}", *overrides]
    )
    method = get_method(config.method)(config)
    stream = method.training_stream(None)
    items = [stream.volume(index) for index in range(len(stream.subjects))]
    return torch.cat([method.images_of(item) for item in items]), torch.cat([item["class_label"] for item in items])


def image_channels(overrides: list[str]) -> dict[str, int]:
    """Which channel of the method's images each datalist key is (``model.images`` order)."""
    config = load_config(CONFIG, ExperimentConfig, overrides)
    return {name: index for index, name in enumerate(config.model.images)}


def read_samples(out_dir: Path, image: str = "ct") -> tuple[list[np.ndarray], float]:
    """Every generated ``image`` channel (sorted by item; CT in HU) and its voxel volume in ml."""
    volumes, voxel_ml = [], 0.0
    for path in sorted(out_dir.glob(f"sample_*/{image}.nii.gz")):
        image = nib.load(path)
        volumes.append(np.asarray(image.dataobj, dtype=np.float32))
        voxel_ml = float(np.prod(image.header.get_zooms()[:3])) / 1000.0
    return volumes, voxel_ml


def mean_lesion_probability(probabilities: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """Per class asked for: the classifier's mean probability of class 1 (a graded view of conditioning:
    samples of both classes at ~0 read as healthy, whatever their accuracy of 0.5 says)."""
    return {str(label): float(probabilities[labels == label, 1].mean()) for label in (0, 1)}


def phantom_voxel_ml(phantom: Path) -> float:
    """Voxel volume (ml) of the phantom's own grid (what a ``data.spacing: null`` run trains on)."""
    entry = json.loads((phantom / "datalist.json").read_text())["training"][0]
    return float(np.prod(nib.load(phantom / entry["ct"]).header.get_zooms()[:3])) / 1000.0


def last_health(run_dir: Path) -> dict[str, Any]:
    report = json.loads((run_dir / "health.json").read_text())
    last = report.get("last", {})
    return {
        "verdict": report["verdict"],
        "ada_p": last.get("health/ada_p"),
        "d_accuracy": last.get("health/d_accuracy"),
        "diversity_fake": last.get("health/diversity_fake"),
        "diversity_real": last.get("health/diversity_real"),
    }


def class_statistics(hu_volumes: list[np.ndarray], voxel_ml: float) -> dict[str, dict[str, float]]:
    return summarise_statistics([ct_tissue_statistics(volume, voxel_ml) for volume in hu_volumes])


def cell_name(n_train: int, ada: bool) -> str:
    return f"n{n_train}_ada_{'on' if ada else 'off'}"


def cell_names(smoke: bool = False) -> list[str]:
    """Every cell of the table, in run order: training-set size x ADA on / off."""
    settings = SMOKE if smoke else FULL
    return [cell_name(n_train, ada) for n_train in settings["train_sizes"] for ada in (True, False)]


def measure_quality(
    smoke: bool = False, steps: int | None = None, work_dir: Path | None = None, cells_wanted: list[str] | None = None
) -> dict[str, Any]:
    """Train the cells (all, or ``cells_wanted``), sample, and score them against the held-out heads."""
    settings = SMOKE if smoke else FULL
    steps = steps or settings["steps"]
    unknown = sorted(set(cells_wanted or ()) - set(cell_names(smoke)))
    if unknown:
        raise ValueError(f"unknown cells {unknown}; choose from {cell_names(smoke)}")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="medgan-genq-") as scratch:
        root = Path(work_dir or scratch)
        phantom = root / "phantom"
        make_sample_data(
            phantom,
            subjects=settings["subjects"],
            shape=(settings["shape"],) * 3,
            seed=PHANTOM_SEED,
            lesion_mix=LESION_MIX,
            progress=False,
        )
        datalist, split_sizes = write_splits(phantom, settings["train_sizes"])
        overrides = list(settings["overrides"])
        channels = image_channels(overrides)
        mri_channel, ct_channel = [channels["mri"]], [channels["ct"]]
        ct = get_preset("ct")
        held_images, held_labels = real_volumes(datalist, "heldout", overrides)
        train_images, train_labels = real_volumes(datalist, f"train_{max(settings['train_sizes'])}", overrides)
        spacing = load_config(CONFIG, ExperimentConfig, overrides).data.spacing
        voxel_ml = float(np.prod(spacing)) / 1000.0 if spacing else phantom_voxel_ml(phantom)
        held_hu = [ct.from_network(volume[ct_channel[0]]).numpy() for volume in held_images]

        classifier_settings = ClassifierSettings(
            steps=settings["classifier_steps"], **({"network": SMOKE_CLASSIFIER} if smoke else {})
        )
        classifier = train_classifier(
            train_images[:, mri_channel], train_labels, num_classes=2, settings=classifier_settings
        )
        held_probabilities = predict_probabilities(classifier, held_images[:, mri_channel])
        reference_accuracy = accuracy(held_probabilities, held_labels)

        real_by_class = {}
        for label in (0, 1):
            chosen = held_labels == label
            real_by_class[label] = {
                "statistics": class_statistics([h for h, c in zip(held_hu, chosen, strict=True) if c], voxel_ml),
                "ms_ssim": mean_pairwise_ms_ssim(held_images[chosen][:, ct_channel]),
            }

        cells = {}
        for n_train in settings["train_sizes"]:
            for ada in (True, False):
                name = cell_name(n_train, ada)
                if cells_wanted and name not in cells_wanted:
                    continue
                run_dir = root / "runs" / name
                cell_started = time.perf_counter()
                run_training(
                    CONFIG,
                    run_dir=run_dir,
                    overrides=[
                        f"data.datalist={datalist}",
                        f"data.train_split=train_{n_train}",
                        f"model.ada.enabled={str(ada).lower()}",
                        f"train.steps={steps}",
                        f"train.checkpoint_every={steps}",
                        f"train.sample_every={steps}",
                        *overrides,
                    ],
                    quiet=True,
                )
                train_seconds = time.perf_counter() - cell_started
                per_class: dict[str, Any] = {}
                sample_images, sample_labels = [], []
                for label in (0, 1):
                    out_dir = root / "samples" / name / f"class{label}"
                    count = int((held_labels == label).sum())
                    run_generate(run_dir, out_dir, count, label=label, seed=label, progress=False)
                    hu_volumes, sample_voxel_ml = read_samples(out_dir, "ct")
                    images = torch.stack([from_physical(v, "ct") for v in hu_volumes])[:, None]
                    mri_volumes, _ = read_samples(out_dir, "mri")
                    sample_images.append(torch.stack([from_physical(v, "mri") for v in mri_volumes])[:, None])
                    sample_labels.append(torch.full((len(hu_volumes),), label))
                    statistics = class_statistics(hu_volumes, sample_voxel_ml)
                    per_class[str(label)] = {
                        "samples": len(hu_volumes),
                        "statistics": statistics,
                        "standardised_difference_vs_real": standardised_differences(
                            statistics, real_by_class[label]["statistics"]
                        ),
                        "spread_ratio_vs_real": spread_ratios(statistics, real_by_class[label]["statistics"]),
                        "ms_ssim": mean_pairwise_ms_ssim(images),
                        "ms_ssim_real": real_by_class[label]["ms_ssim"],
                    }
                all_images, all_labels = torch.cat(sample_images), torch.cat(sample_labels)
                sample_probabilities = predict_probabilities(classifier, all_images)
                conditioning = accuracy(sample_probabilities, all_labels)
                cells[name] = {
                    "n_train": n_train,
                    "ada": ada,
                    "steps": steps,
                    "train_seconds": train_seconds,
                    "conditioning_accuracy": conditioning,
                    "mean_lesion_probability": mean_lesion_probability(sample_probabilities, all_labels),
                    "classifier_heldout_accuracy": reference_accuracy,
                    "conditioning_gap_vs_real": reference_accuracy - conditioning,
                    "per_class": per_class,
                    "health": last_health(run_dir),
                    "discriminator": load_config(run_dir / "config.yaml", ExperimentConfig).model.discriminator,
                }
        informative = reference_accuracy >= 0.6
        return {
            "smoke": smoke,
            "phantom": {
                "subjects": settings["subjects"],
                "shape": settings["shape"],
                "seed": PHANTOM_SEED,
                "lesion_mix": LESION_MIX,
                "splits": split_sizes,
            },
            "overrides": overrides,
            "classifier": {
                "input": "the MRI channel",
                "network": classifier_settings.network,
                "steps": classifier_settings.steps,
                "trained_on": f"train_{max(settings['train_sizes'])}",
                "heldout_real_accuracy": reference_accuracy,
                "heldout_real_mean_lesion_probability": mean_lesion_probability(held_probabilities, held_labels),
                "informative": informative,
            },
            "real": {str(label): values for label, values in real_by_class.items()},
            "cells": cells,
            "targets": {
                name: {
                    "value": cell["conditioning_gap_vs_real"],
                    "target": CONDITIONING_TOLERANCE,
                    "comparison": "<=",
                    "met": bool(informative and cell["conditioning_gap_vs_real"] <= CONDITIONING_TOLERANCE),
                }
                for name, cell in cells.items()
            },
            "wall_seconds": time.perf_counter() - started,
        }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny grid and networks, a minute")
    parser.add_argument("--steps", type=int, default=None, help="training steps per cell (default 600)")
    parser.add_argument("--work-dir", type=Path, default=None, help="keep the phantom, runs and samples here")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"results JSON to update ({RESULTS})")
    parser.add_argument(
        "--cells",
        nargs="+",
        default=None,
        help="run only these cells (e.g. n64_ada_on n64_ada_off); their results replace the stored ones of the "
        "same name and the other stored cells are kept (so cells can run as parallel processes, see --threads)",
    )
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    result = strict_json(measure_quality(args.smoke, args.steps, args.work_dir, args.cells))
    written = write_section(args.out, "quality", result, merge_cells=bool(args.cells))
    print(json.dumps({"classifier": written["classifier"], "targets": written["targets"]}, indent=2))
    return result


def write_section(path: Path, key: str, section: dict[str, Any], merge_cells: bool = False) -> dict[str, Any]:
    """Replace one top-level section of a results JSON, keeping the others (atomic); returns the section written.

    With ``merge_cells`` the section's ``cells`` and ``targets`` are added to the stored ones of the same
    phantom and overrides (a cell of the same name is replaced), under a lock, so processes that each run
    some cells can share one file.
    """
    with locked(path):
        content = json.loads(path.read_text()) if path.is_file() else {}
        stored = content.get(key, {})
        same_setup = all(stored.get(field) == section.get(field) for field in ("smoke", "phantom", "overrides"))
        if merge_cells and not same_setup and stored.get("cells"):
            print(f"{path}: the stored quality cells {sorted(stored['cells'])} used another phantom or overrides; "
                  "they are replaced, not merged", file=sys.stderr)  # fmt: skip
        if merge_cells and same_setup:
            section = {
                **section,
                "cells": {**stored.get("cells", {}), **section["cells"]},
                "targets": {**stored.get("targets", {}), **section["targets"]},
            }
        content[key] = section
        write_results(path, content)
    return section


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive advisory lock on ``<path>.lock`` while a read-modify-write of ``path`` runs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


if __name__ == "__main__":
    main()
