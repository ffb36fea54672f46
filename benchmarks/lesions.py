"""Realism and cost of synthetic lesions: procedural (``medgan enrich``) vs real held-out lesions.

Data: a fresh phantom (``medgan sample-data``, 48^3 at 5 mm, default lesion mix, a seed never
used elsewhere). Its lesion cases are split in two halves: ``fit`` (the enrich job fits its
shape and appearance models on them) and ``heldout`` (the real lesions the synthetic ones are
compared with). Every healthy case receives one synthetic lesion (``configs/enrich.yaml``
settings, ``cases_per_source: 1``).

Per lesion and image (MRI, CT): radiomics-style features
(:func:`medgan.evaluation.lesion_realism.lesion_radiomics`) and the seam score. Reported:

* ``frechet_distance``: synthetic vs held-out real lesions, over all features of both images
  (standardised by the held-out set), next to the floor: the ``fit`` real lesions vs the
  held-out ones (two samples of the same distribution); with ~28 features and a few dozen
  lesions per set the covariances are barely estimable, so each feature's standardised mean
  difference is given too (``standardised_mean_difference``: (set mean - held-out mean) /
  held-out sd);
* ``two_sample_auc``: a ``densenet3d`` trained to tell synthetic from held-out real lesion-centred
  crops (MRI + CT, 16^3 = 80 mm), k-fold out-of-fold AUC (0.5 = indistinguishable), again with
  the real-vs-real control;
* ``seam``: mean seam score per set (synthetic vs real lesions' own borders);
* ``throughput``: enrich cases per second and the job's peak RSS growth.

The lesion GAN (method ``lesion``, ``configs/lesion.yaml``) is trained on the ``fit`` lesion cases
for ``gan_steps`` steps and used by the same enrich job (``method: lesion``): the ``lesion_gan`` set.

    python benchmarks/lesions.py                 # ~8 minutes on 2 cores
    python benchmarks/lesions.py --smoke --out /tmp/lesions.json
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
for folder in (REPO, REPO / "benchmarks"):  # the package, and sibling scripts (translate_memory)
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import translate_memory  # noqa: E402
from common import write_results  # noqa: E402

from medgan.config.enrich import EnrichConfig  # noqa: E402
from medgan.evaluation.classifier import ClassifierSettings, predict_probabilities, train_classifier  # noqa: E402
from medgan.evaluation.lesion_realism import (  # noqa: E402
    feature_frechet_distance,
    lesion_crop,
    lesion_radiomics,
    seam_score,
)
from medgan.evaluation.roc import roc_auc  # noqa: E402
from medgan.precision import cpu_features  # noqa: E402
from pipelines.enrich import run_enrich  # noqa: E402
from pipelines.sample_data import make_sample_data  # noqa: E402
from pipelines.train import run_training  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "lesions.json"
PHANTOM_SEED = 51
IMAGES = ("mri", "ct")
FULL = {"subjects": 96, "folds": 4, "classifier_steps": 200, "crop": 16, "gan_steps": 1500}
SMOKE = {"subjects": 16, "folds": 2, "classifier_steps": 3, "crop": 16, "gan_steps": 2}
LESION_CONFIG = REPO / "configs" / "lesion.yaml"
SMOKE_NETWORK = {"name": "densenet3d", "init_features": 4, "growth_rate": 2, "block_config": [1]}
CT_CROP_WINDOW = (-100.0, 200.0)  # brain window for the classifier's CT channel
MRI_CROP_SCALE = 500.0


def write_splits(phantom: Path) -> Path:
    """``fit`` = healthy cases + the first half of the lesion cases; ``heldout`` = the other lesion cases."""
    content = json.loads((phantom / "datalist.json").read_text())
    entries = [e for split in ("training", "validation", "test") for e in content[split]]
    for entry in entries:
        for key in ("mri", "ct", "labels", "lesion_mask"):
            if key in entry:
                entry[key] = str(phantom / entry[key])
    lesions = [e for e in entries if e["label"] == 1]
    half = len(lesions) // 2
    splits = {"fit": [e for e in entries if e["label"] == 0] + lesions[:half], "heldout": lesions[half:]}
    path = phantom / "benchmark_datalist.json"
    path.write_text(json.dumps(splits, indent=1))
    return path


def read_case(files: dict[str, str]) -> tuple[np.ndarray, np.ndarray, tuple[float, ...]]:
    """(images (2, X, Y, Z) in physical units, lesion mask, spacing) of one case."""
    images = np.stack([np.asarray(nib.load(files[key]).dataobj, dtype=np.float32) for key in IMAGES])
    mask_image = nib.load(files["lesion_mask"])
    return images, np.asarray(mask_image.dataobj) > 0, tuple(float(z) for z in mask_image.header.get_zooms()[:3])


def describe(cases: list[dict[str, str]], crop: int) -> dict[str, Any]:
    """Features, seam scores and classifier crops of every case's lesion."""
    rows, seams, crops = [], [], []
    for files in cases:
        images, mask, spacing = read_case(files)
        row = {}
        for index, key in enumerate(IMAGES):
            row |= {f"{key}_{name}": value for name, value in lesion_radiomics(images[index], mask, spacing).items()}
        rows.append(row)
        seams.append([seam_score(images[index], mask) for index in range(len(IMAGES))])
        cropped = lesion_crop(images, mask, crop)
        mri = cropped[0] / MRI_CROP_SCALE - 1.0
        low, high = CT_CROP_WINDOW
        ct = (np.clip(cropped[1], low, high) - low) / (high - low) * 2 - 1
        crops.append(np.stack([mri, ct]))
    return {"rows": rows, "seams": np.array(seams), "crops": torch.from_numpy(np.stack(crops)).float()}


def synthetic_cases(out_dir: Path) -> list[dict[str, str]]:
    """Image and mask paths of every synthetic case an enrich job wrote."""
    content = json.loads((out_dir / "datalist.json").read_text())
    return [
        {key: str(out_dir / e[key]) for key in (*IMAGES, "lesion_mask")} for e in content["fit"] if e.get("synthetic")
    ]


def two_sample_auc(first: torch.Tensor, second: torch.Tensor, settings: dict[str, Any], smoke: bool) -> float:
    """Out-of-fold AUC of a classifier telling ``first`` (label 1) from ``second`` (label 0)."""
    images = torch.cat([first, second])
    labels = torch.cat([torch.ones(len(first)), torch.zeros(len(second))]).long()
    folds = np.random.default_rng(0).permutation(len(labels)) % settings["folds"]
    scores = np.zeros(len(labels))
    classifier = ClassifierSettings(
        steps=settings["classifier_steps"], flip_axes=(0,), **({"network": SMOKE_NETWORK} if smoke else {})
    )
    for fold in range(settings["folds"]):
        train, test = torch.from_numpy(folds != fold), torch.from_numpy(folds == fold)
        network = train_classifier(images[train], labels[train], num_classes=2, settings=classifier)
        scores[test.numpy()] = predict_probabilities(network, images[test])[:, 1].numpy()
    return roc_auc(scores, labels.numpy())


def measure(smoke: bool, work_dir: Path | None) -> dict[str, Any]:
    settings = SMOKE if smoke else FULL
    memory = translate_memory
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="medgan-lesions-") as scratch:
        root = Path(work_dir or scratch)
        phantom = root / "phantom"
        make_sample_data(phantom, subjects=settings["subjects"], shape=(48, 48, 48), seed=PHANTOM_SEED, progress=False)
        datalist = write_splits(phantom)
        config = EnrichConfig(
            datalist=datalist, split="fit", fit_split="fit", cases_per_source=1, out=root / "enriched", seed=0
        )
        rss_before = memory.reset_peak_rss()
        enrich_started = time.perf_counter()
        summary = run_enrich(config, progress=False)
        enrich_seconds = time.perf_counter() - enrich_started
        peak_growth = memory.peak_rss_mb() - rss_before
        train_started = time.perf_counter()
        run = run_training(
            LESION_CONFIG,
            run_dir=root / "lesion_run",
            overrides=[
                f"data.datalist={datalist}",
                "data.train_split=fit",
                f"train.steps={settings['gan_steps']}",
                f"train.checkpoint_every={settings['gan_steps']}",
                "train.sample_every=0",
            ],
            quiet=True,
        )
        gan_train_seconds = time.perf_counter() - train_started
        gan_config = config.model_copy(update={"method": "lesion", "run": run, "out": root / "enriched_gan"})
        gan_started = time.perf_counter()
        gan_summary = run_enrich(gan_config, progress=False)
        gan_seconds = time.perf_counter() - gan_started
        synthetic = synthetic_cases(root / "enriched")
        synthetic_gan = synthetic_cases(root / "enriched_gan")
        splits = json.loads(datalist.read_text())
        real = {
            name: [{key: e[key] for key in (*IMAGES, "lesion_mask")} for e in splits[name] if e["label"] == 1]
            for name in ("fit", "heldout")
        }
        sets = {
            "procedural": describe(synthetic, settings["crop"]),
            "lesion_gan": describe(synthetic_gan, settings["crop"]),
            "real_fit": describe(real["fit"], settings["crop"]),
            "real_heldout": describe(real["heldout"], settings["crop"]),
        }
        reference = sets["real_heldout"]
        result_sets = {}
        for name in ("procedural", "lesion_gan", "real_fit"):
            described = sets[name]
            result_sets[name] = {
                "lesions": len(described["rows"]),
                "frechet_distance_vs_heldout": feature_frechet_distance(described["rows"], reference["rows"]),
                "two_sample_auc_vs_heldout": two_sample_auc(described["crops"], reference["crops"], settings, smoke),
                "seam_score": dict(zip(IMAGES, described["seams"].mean(axis=0).tolist(), strict=True)),
                "feature_means": {k: float(np.mean([r[k] for r in described["rows"]])) for k in described["rows"][0]},
                "standardised_mean_difference": {
                    key: (np.mean([r[key] for r in described["rows"]]) - np.mean(values)) / (np.std(values) or 1.0)
                    for key in reference["rows"][0]
                    for values in [[r[key] for r in reference["rows"]]]
                },
            }
        return {
            "benchmark": "lesions",
            "smoke": smoke,
            "phantom": {"subjects": settings["subjects"], "shape": 48, "seed": PHANTOM_SEED},
            "heldout": {
                "lesions": len(reference["rows"]),
                "seam_score": dict(zip(IMAGES, reference["seams"].mean(axis=0).tolist(), strict=True)),
                "feature_means": {k: float(np.mean([r[k] for r in reference["rows"]])) for k in reference["rows"][0]},
            },
            "sets": result_sets,
            "throughput": {
                "cases": summary.n_done,
                "seconds": enrich_seconds,
                "cases_per_second": summary.n_done / enrich_seconds,
                "peak_rss_growth_mb": round(peak_growth, 1),
                "gan_cases": gan_summary.n_done,
                "gan_cases_per_second": gan_summary.n_done / gan_seconds,
                "note": "includes fitting the models on the fit split's lesion cases",
            },
            "lesion_gan": {"steps": settings["gan_steps"], "train_seconds": gan_train_seconds},
            "cpu_features": dict(cpu_features()),
            "torch_threads": torch.get_num_threads(),
            "cpu_count": os.cpu_count(),
            "wall_seconds": time.perf_counter() - started,
        }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="16 subjects, tiny classifier, seconds")
    parser.add_argument("--work-dir", type=Path, default=None, help="keep the phantom and the enriched cases here")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"results JSON ({RESULTS})")
    args = parser.parse_args(argv)
    result = write_results(args.out, measure(args.smoke, args.work_dir))
    print(
        json.dumps(
            {name: {k: v for k, v in s.items() if k != "feature_means"} for name, s in result["sets"].items()}, indent=2
        )
    )
    return result


if __name__ == "__main__":
    main()
