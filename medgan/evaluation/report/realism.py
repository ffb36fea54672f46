"""Realism without downloaded weights: radiomics-style features, their Fréchet distance and MMD,
and a classifier two-sample test.

Why not ImageNet FID: Inception weights are neither available offline nor meaningful on CT.
Instead each volume is described by radiomics-style features, in the spirit of the Fréchet
Radiomic Distance (Konz et al., 2024): first-order statistics of the body voxels (mean, sd,
skewness, kurtosis, 10th / 50th / 90th percentile), the body volume, and grey-level
co-occurrence texture (scikit-image GLCM contrast, homogeneity, energy, correlation; 16 levels
over the real set's 1st-99th body percentile, distance 1, four angles) on the central axial,
coronal and sagittal slices, averaged. Features are standardised by the real set; the Fréchet
distance (MONAI's) is divided by the number of features, so 0 = same Gaussian statistics and
about 1 = the means differ by one real standard deviation in every feature. With few scans both
distances are mostly noise, so :func:`permutation_null` measures what chance alone gives at the
same set sizes and the report grades the excess over it (with the permutation p-value).

The two-sample test trains a small classifier (the downstream study's DenseNet) to tell real
from synthetic volumes by 2-fold cross-fitting on balanced classes: each volume is scored by the
network that did not see it, so the AUC is held out (a synthetic volume that copies a real one
is put in that real one's fold, so a copy is never scored by a network trained on its twin);
its 95 % interval is a stratified bootstrap over volumes. AUC near 0.5 = indistinguishable,
near 1 = trivially told apart.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import numpy as np
import torch
from monai.metrics import MMDMetric
from scipy import stats
from scipy.linalg import LinAlgWarning
from skimage.feature import graycomatrix, graycoprops

from medgan.evaluation.bootstrap import auc_metric, bootstrap_interval
from medgan.evaluation.classifier import ClassifierSettings, predict_probabilities, train_classifier
from medgan.evaluation.lesion_realism import feature_frechet_distance
from medgan.evaluation.report.similarity import ncc_matrix
from medgan.evaluation.report.volumes import downsampled
from medgan.evaluation.roc import roc_auc

COPY_NCC = 0.999
GLCM_LEVELS = 16
GLCM_PROPERTIES = ("contrast", "homogeneity", "energy", "correlation")
FIRST_ORDER = ("mean", "sd", "skewness", "kurtosis", "p10", "p50", "p90")


def _glcm(plane: np.ndarray, low: float, high: float) -> np.ndarray:
    levels = np.clip(((plane - low) / max(high - low, 1e-6) * (GLCM_LEVELS - 1)).round(), 0, GLCM_LEVELS - 1)
    matrix = graycomatrix(
        levels.astype(np.uint8), [1], [0, np.pi / 4, np.pi / 2, 3 * np.pi / 4], levels=GLCM_LEVELS, symmetric=True
    )
    matrix = matrix.astype(np.float64)
    matrix /= max(matrix.sum(axis=(0, 1), keepdims=True).max(), 1.0)
    return np.array([np.nan_to_num(graycoprops(matrix, name).mean()) for name in GLCM_PROPERTIES])


def volume_features(
    values: np.ndarray, body: np.ndarray, voxel_ml: float, intensity_range: tuple[float, float]
) -> dict[str, float]:
    """The radiomics-style features of one volume (see the module docstring)."""
    inside = values[body].astype(np.float64) if body.any() else values.ravel().astype(np.float64)
    p10, p50, p90 = np.percentile(inside, [10, 50, 90])
    features = {
        "mean": float(inside.mean()),
        "sd": float(inside.std()),
        "skewness": float(np.nan_to_num(stats.skew(inside))),
        "kurtosis": float(np.nan_to_num(stats.kurtosis(inside))),
        "p10": float(p10),
        "p50": float(p50),
        "p90": float(p90),
        "body_ml": float(body.sum() * voxel_ml),
    }
    centre = np.argwhere(body).mean(axis=0).round().astype(int) if body.any() else np.array(values.shape) // 2
    planes = [values[centre[0], :, :], values[:, centre[1], :], values[:, :, centre[2]]]
    texture = np.mean([_glcm(plane, *intensity_range) for plane in planes], axis=0)
    features.update({f"glcm_{name}": float(v) for name, v in zip(GLCM_PROPERTIES, texture, strict=True)})
    return features


def texture_range(real_values: Sequence[np.ndarray], real_bodies: Sequence[np.ndarray]) -> tuple[float, float]:
    """The GLCM quantisation range: the real set's 1st-99th percentile of body voxels."""
    pooled = np.concatenate([v[b] for v, b in zip(real_values, real_bodies, strict=True) if b.any()])
    low, high = np.percentile(pooled, [1, 99])
    return float(low), float(high)


def normalised_frechet(synthetic: Sequence[dict[str, float]], real: Sequence[dict[str, float]]) -> float:
    """Fréchet distance of standardised features divided by the number of features.

    With fewer volumes than features the covariances are singular; scipy's matrix square root
    warns about it on every call, but the distance stays defined, so the warning is silenced.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LinAlgWarning)
        return feature_frechet_distance(synthetic, real) / len(real[0])


def _standardised(rows: Sequence[dict[str, float]], reference: Sequence[dict[str, float]]) -> np.ndarray:
    keys = list(reference[0])
    ref = np.array([[r[k] for k in keys] for r in reference])
    sd = ref.std(axis=0)
    sd[sd == 0] = 1.0
    return (np.array([[r[k] for k in keys] for r in rows]) - ref.mean(axis=0)) / sd


def feature_mmd(synthetic: Sequence[dict[str, float]], real: Sequence[dict[str, float]]) -> float:
    """Unbiased linear-kernel MMD (MONAI's ``MMDMetric``) of standardised features / number of features.

    With a linear kernel MMD is the squared distance of the two mean feature vectors, so the value
    is the mean squared standardised mean difference (0.25 = half a real sd per feature). MONAI's
    metric needs equal-sized sets: the first ``min(len)`` rows of each are used.
    """
    n = min(len(synthetic), len(real))
    if n < 2:
        raise ValueError("MMD needs at least two volumes in each set")
    a = torch.from_numpy(_standardised(real[:n], real))[:, None]
    b = torch.from_numpy(_standardised(synthetic[:n], real))[:, None]
    return float(MMDMetric()(a, b)) / len(real[0])


def permutation_null(
    statistic: Callable[[Sequence[dict[str, float]], Sequence[dict[str, float]]], float],
    synthetic: Sequence[dict[str, float]],
    real: Sequence[dict[str, float]],
    *,
    permutations: int = 200,
    seed: int = 0,
) -> dict[str, float]:
    """The statistic, its median under random relabelling of the pooled rows, the excess and the p-value.

    Why: with the few scans a medical set has, these distances are mostly estimation noise (8 real
    vs 24 synthetic rows from *one* distribution give a Fréchet distance of about 1.5 per feature).
    Pooling both sets and splitting them at random into sets of the same sizes shows what chance
    alone gives; ``excess`` = statistic - that median (at least 0) is what the report grades.
    """
    observed = statistic(synthetic, real)
    pooled = [*synthetic, *real]
    rng = np.random.default_rng(seed)
    null = []
    for _ in range(permutations):
        order = rng.permutation(len(pooled))
        null.append(
            statistic([pooled[i] for i in order[: len(synthetic)]], [pooled[i] for i in order[len(synthetic) :]])
        )
    null_array = np.asarray(null)
    return {
        "statistic": float(observed),
        "null_median": float(np.median(null_array)),
        "excess": float(max(0.0, observed - np.median(null_array))),
        "p_value": float((np.sum(null_array >= observed) + 1) / (permutations + 1)),
    }


def two_sample_auc(
    real: torch.Tensor,
    synthetic: torch.Tensor,
    *,
    steps: int = 150,
    max_edge: int = 32,
    seed: int = 0,
    n_boot: int = 1000,
) -> dict[str, float]:
    """Held-out AUC of a real-vs-synthetic classifier (2-fold cross-fitting, balanced classes) and its 95 % CI.

    ``real`` / ``synthetic``: ``(N, 1, X, Y, Z)`` in [-1, 1]. The larger set is subsampled (seeded).
    """
    n = min(real.shape[0], synthetic.shape[0])
    if n < 4:
        raise ValueError(
            f"the two-sample test needs at least 4 volumes per set; got {real.shape[0]} / {synthetic.shape[0]}"
        )
    rng = np.random.default_rng(seed)
    real = real[np.sort(rng.permutation(real.shape[0])[:n])]
    synthetic = synthetic[np.sort(rng.permutation(synthetic.shape[0])[:n])]
    images = downsampled(torch.cat([real, synthetic]).float(), max_edge)
    labels = torch.cat([torch.zeros(n, dtype=torch.int64), torch.ones(n, dtype=torch.int64)])
    folds = np.concatenate([rng.permutation(n) % 2, rng.permutation(n) % 2])  # each fold holds both classes
    # A synthetic volume (nearly) identical to a real one joins that real one's fold: split across folds,
    # the pair would teach the classifier the held-out volume under the other label (AUC far below 0.5).
    copies = ncc_matrix(synthetic, real)
    for index, nearest in enumerate(copies.argmax(axis=1)):
        if copies[index, nearest] > COPY_NCC:
            folds[n + index] = folds[nearest]
    scores = np.zeros(2 * n)
    for fold in (0, 1):
        train, held_out = np.flatnonzero(folds != fold), np.flatnonzero(folds == fold)
        settings = ClassifierSettings(steps=steps, batch_size=min(8, train.size), flip_axes=(0,), seed=seed + fold)
        network = train_classifier(images[train], labels[train], num_classes=2, settings=settings)
        scores[held_out] = predict_probabilities(network, images[held_out])[:, 1].numpy()
    label_array = labels.numpy()
    interval = bootstrap_interval(auc_metric(scores[None], label_array), 1, label_array, n_boot=n_boot, seed=seed)
    return {
        "auc": roc_auc(scores, label_array),
        "low": interval.low,
        "high": interval.high,
        "volumes_per_set": n,
        "grid": list(images.shape[2:]),
    }
