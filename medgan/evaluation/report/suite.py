"""Every check of the report, from volumes on the report grid to graded :class:`Check` results.

Each ``*_checks`` function takes the prepared volumes and the config and returns its checks;
:func:`run_checks` runs them all. Checks that need something the inputs lack (a training set,
lesion masks, enough volumes) come back ``skipped`` with the reason. ``details`` carry what a
figure or a reader needs: per-volume values and the names of the worst cases.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import numpy as np

from medgan.config.report import Limits, ReportConfig
from medgan.evaluation.generation_quality import mean_pairwise_ms_ssim
from medgan.evaluation.lesion_realism import lesion_radiomics, seam_score
from medgan.evaluation.report import in_domain, intensity, realism, similarity
from medgan.evaluation.report.artifacts import blob_response
from medgan.evaluation.report.checks import Check, Threshold, graded, skipped
from medgan.evaluation.report.volumes import ReportGrid, ReportVolume, network, stack_network

LOG = logging.getLogger(__name__)
Progress = Callable[[str], None]


def _threshold(limits: Limits) -> Threshold:
    return Threshold(warn=limits.warn, fail=limits.fail)


def _unless_chance(check: Check, p_value: float, alpha: float) -> Check:
    """A distance that chance explains (permutation p >= alpha) passes: these set sizes cannot show it."""
    if p_value >= alpha and check.verdict in ("warn", "fail"):
        check.verdict = "pass"
        check.meaning += f" Not beyond chance at these set sizes (p >= {alpha:g}), so not graded against the limit."
    return check


def _worst(volumes: Sequence[ReportVolume], values: Sequence[float], k: int = 3) -> list[str]:
    order = np.argsort(-np.asarray(values, dtype=np.float64), kind="stable")[:k]
    return [volumes[i].name for i in order]


def _distance_checks(
    prefix: str,
    what: str,
    syn_rows: Sequence[dict[str, float]],
    real_rows: Sequence[dict[str, float]],
    limits: tuple[Limits, Limits],
    config: ReportConfig,
    **details: object,
) -> list[Check]:
    """Fréchet distance and MMD of two feature sets, each graded on its excess over a permutation null."""
    kinds = (
        ("frechet", "Fréchet distance", realism.normalised_frechet, limits[0], details),
        ("mmd", "feature MMD", realism.feature_mmd, limits[1], {}),
    )
    meanings = {
        "frechet": f"How far the synthetic set's {what.lower()} features are from the real set's, in real standard "
        "deviations per feature, beyond what chance gives at these set sizes",
        "mmd": f"Squared gap between the two sets' mean {what.lower()} features, per feature in real standard "
        "deviations, beyond chance",
    }
    checks = []
    for kind, title, statistic, kind_limits, extra in kinds:
        result = realism.permutation_null(statistic, syn_rows, real_rows, seed=config.seed)
        meaning = (
            f"{meanings[kind]} (value {result['statistic']:.3f}, chance {result['null_median']:.3f}, "
            f"p = {result['p_value']:.3f})."
        )
        check = graded(
            f"realism.{prefix}_{kind}",
            f"{what} {title}",
            result["excess"],
            _threshold(kind_limits),
            meaning,
            **result,
            **extra,
        )
        checks.append(_unless_chance(check, result["p_value"], config.significance))
    return checks


def _lesion_radiomics_checks(
    real: Sequence[ReportVolume], synthetic: Sequence[ReportVolume], grid: ReportGrid, config: ReportConfig
) -> list[Check]:
    """Radiomics distances per lesion (first order, contrast to the shell, GLCM, shape) when both sets have masks."""
    spacing = (grid.spacing,) * 3
    real_rows = [lesion_radiomics(v.values, v.mask, spacing) for v in real if v.mask is not None and v.mask.any()]
    syn_rows = [lesion_radiomics(v.values, v.mask, spacing) for v in synthetic if v.mask is not None and v.mask.any()]
    if len(real_rows) < 2 or len(syn_rows) < 2:
        reason = f"needs 2+ lesion masks in each set (real {len(real_rows)}, synthetic {len(syn_rows)})"
        return [skipped(f"realism.lesion_{k}", f"Lesion radiomics {k}", reason) for k in ("frechet", "mmd")]
    limits = (config.thresholds.radiomics_frechet, config.thresholds.radiomics_mmd)
    return _distance_checks(
        "lesion", "Lesion radiomics", syn_rows, real_rows, limits, config, features=list(real_rows[0])
    )


def _in_domain_checks(
    real: Sequence[ReportVolume],
    synthetic: Sequence[ReportVolume],
    training: Sequence[ReportVolume] | None,
    modality: str,
    config: ReportConfig,
) -> list[Check]:
    fit_on = training if training and len(training) >= 3 else real
    try:
        space = in_domain.fit_feature_space(
            stack_network(fit_on, modality), steps=config.in_domain_steps, edge=config.in_domain_edge, seed=config.seed
        )
    except ValueError as err:
        reason = str(err)
        return [skipped(f"realism.in_domain_{k}", f"In-domain {k}", reason) for k in ("frechet", "mmd")]
    real_rows = space.features(stack_network(real, modality), edge=config.in_domain_edge)
    syn_rows = space.features(stack_network(synthetic, modality), edge=config.in_domain_edge)
    limits = (config.thresholds.in_domain_frechet, config.thresholds.in_domain_mmd)
    return _distance_checks(
        "in_domain",
        "In-domain network",
        syn_rows,
        real_rows,
        limits,
        config,
        network_sha256=space.sha256,
        network_trained_on="training scans" if fit_on is training else "the real reference scans (in-sample)",
        n_components=int(space.components.shape[0]),
    )


def realism_checks(
    real: Sequence[ReportVolume],
    synthetic: Sequence[ReportVolume],
    training: Sequence[ReportVolume] | None,
    grid: ReportGrid,
    modality: str,
    config: ReportConfig,
) -> list[Check]:
    """Radiomics and in-domain feature distances (Fréchet, MMD) and the classifier two-sample test."""
    voxel_ml = grid.spacing**3 / 1000.0
    value_range = realism.texture_range([v.values for v in real], [v.body for v in real])
    real_rows = [realism.volume_features(v.values, v.body, voxel_ml, value_range) for v in real]
    syn_rows = [realism.volume_features(v.values, v.body, voxel_ml, value_range) for v in synthetic]
    means = {
        k: (float(np.mean([r[k] for r in real_rows])), float(np.mean([r[k] for r in syn_rows]))) for k in real_rows[0]
    }
    limits = (config.thresholds.radiomics_frechet, config.thresholds.radiomics_mmd)
    checks = _distance_checks(
        "radiomics",
        "Radiomics",
        syn_rows,
        real_rows,
        limits,
        config,
        features=list(real_rows[0]),
        feature_means_real_synthetic=means,
    )
    checks += _lesion_radiomics_checks(real, synthetic, grid, config)
    checks += _in_domain_checks(real, synthetic, training, modality, config)
    try:
        result = realism.two_sample_auc(
            stack_network(real, modality),
            stack_network(synthetic, modality),
            steps=config.two_sample_steps,
            max_edge=config.two_sample_edge,
            seed=config.seed,
        )
    except ValueError as err:
        checks.append(skipped("realism.two_sample_auc", "Real-vs-synthetic classifier", str(err)))
    else:
        check = graded(
            "realism.two_sample_auc",
            "Real-vs-synthetic classifier",
            result["auc"],
            _threshold(config.thresholds.two_sample_auc),
            f"A classifier trained to tell the sets apart scores AUC {result['auc']:.2f} "
            f"(95 % CI {result['low']:.2f}-{result['high']:.2f}) on volumes it did not see; 0.5 = it cannot.",
            **result,
        )
        if result["low"] <= 0.5 and check.verdict in ("warn", "fail"):  # the interval holds chance
            check.verdict = "pass"
            check.meaning += " Its 95 % interval includes 0.5, so these set sizes cannot tell them apart."
        checks.append(check)
    return checks


def intensity_checks(
    real: Sequence[ReportVolume], synthetic: Sequence[ReportVolume], modality: str, config: ReportConfig
) -> list[Check]:
    """Per-tissue Wasserstein distances and shares; for CT, values outside the physical range."""
    real_voxels = intensity.pooled_body_voxels(
        [v.values for v in real], [v.body for v in real], max_voxels=config.max_voxels, seed=config.seed
    )
    syn_voxels = intensity.pooled_body_voxels(
        [v.values for v in synthetic], [v.body for v in synthetic], max_voxels=config.max_voxels, seed=config.seed + 1
    )
    bands = intensity.tissue_bands(modality, real_voxels)
    rows = intensity.tissue_wasserstein(real_voxels, syn_voxels, bands)
    distances = {name: row["wasserstein"] for name, row in rows.items() if np.isfinite(row["wasserstein"])}
    worst_distance = max(distances.values()) if distances else 0.0
    shares = {name: abs(row["synthetic_share"] - row["real_share"]) for name, row in rows.items()}
    unit = "HU" if modality == "ct" else "window units"
    limits = config.thresholds.tissue_wasserstein_hu if modality == "ct" else config.thresholds.tissue_wasserstein_mri
    checks = [
        graded(
            "intensity.tissue_wasserstein",
            "Tissue intensity distributions",
            worst_distance,
            _threshold(limits),
            f"Largest Wasserstein distance between real and synthetic body-voxel values within one tissue band "
            f"({unit}); the worst band is {max(distances, key=distances.get) if distances else 'none'}.",
            bands={name: list(band) for name, band in bands.items()},
            per_band=rows,
            unit=unit,
        ),
        graded(
            "intensity.tissue_shares",
            "Tissue proportions",
            max(shares.values()),
            _threshold(config.thresholds.tissue_shares),
            "Largest difference in the share of body voxels in one tissue band "
            f"(worst: {max(shares, key=shares.get)}).",
            per_band=shares,
        ),
    ]
    if modality == "ct":
        outside = [v.outside_range_share for v in synthetic]
        checks.append(
            graded(
                "intensity.hu_range",
                "Physically possible HU",
                float(np.mean(outside)),
                _threshold(config.thresholds.hu_range),
                "Share of synthetic voxels outside -1024..3071 HU, values no CT scanner stores.",
                worst=_worst(synthetic, outside),
                real_share=float(np.mean([v.outside_range_share for v in real])),
            )
        )
    return checks


def diversity_checks(
    real: Sequence[ReportVolume], synthetic: Sequence[ReportVolume], modality: str, config: ReportConfig
) -> list[Check]:
    """Mode collapse (pairwise MS-SSIM, synthetic vs real) and near-duplicate synthetic pairs."""
    real_net, syn_net = stack_network(real, modality), stack_network(synthetic, modality)
    checks = []
    if len(real) < 2 or len(synthetic) < 2:
        checks.append(skipped("diversity.ms_ssim", "Sample diversity (MS-SSIM)", "needs 2+ volumes per set"))
    else:
        real_ssim = mean_pairwise_ms_ssim(real_net, max_pairs=300)
        syn_ssim = mean_pairwise_ms_ssim(syn_net, max_pairs=300)
        checks.append(
            graded(
                "diversity.ms_ssim",
                "Sample diversity (MS-SSIM)",
                syn_ssim - real_ssim,
                _threshold(config.thresholds.ms_ssim_excess),
                f"Synthetic samples are {syn_ssim:.3f} alike on average (pairwise MS-SSIM), "
                f"real scans {real_ssim:.3f}; "
                "a clearly higher synthetic value means the generator repeats itself (mode collapse).",
                synthetic=syn_ssim,
                real=real_ssim,
            )
        )
    duplicates = similarity.near_duplicates(
        syn_net, real_net, floor=config.near_duplicate_ncc, sources=[v.source for v in synthetic]
    )
    pairs = [(synthetic[a].name, synthetic[b].name, ncc) for a, b, ncc in duplicates["pairs"]]  # type: ignore[union-attr]
    checks.append(
        graded(
            "diversity.near_duplicates",
            "Near-duplicate samples",
            float(duplicates["share_flagged"]),  # type: ignore[arg-type]
            _threshold(config.thresholds.near_duplicates),
            f"Share of synthetic samples in a pair more alike (NCC >= {duplicates['limit_ncc']:.3f}) than the most "
            "alike two real scans.",
            limit_ncc=duplicates["limit_ncc"],
            most_alike_real_pair_ncc=duplicates["most_alike_real_pair_ncc"],
            pairs=pairs[:20],
            n_pairs=len(pairs),
        )
    )
    return checks


def memorisation_checks(
    real: Sequence[ReportVolume],
    synthetic: Sequence[ReportVolume],
    training: Sequence[ReportVolume] | None,
    modality: str,
    config: ReportConfig,
) -> list[Check]:
    """Nearest training case of each synthetic sample vs how close held-out real scans come."""
    title = "Memorised training cases"
    if not training:
        return [skipped("memorisation.nearest_training", title, "no training set given (--training)")]
    result = similarity.memorisation(
        stack_network(synthetic, modality),
        stack_network(training, modality),
        stack_network(real, modality),
        sources=[v.source for v in synthetic],
        training_names=[v.name.split(":", 1)[1] for v in training],
        margin=config.memorisation_margin,
    )
    closest = np.argsort(-np.asarray(result["nearest_ncc"]), kind="stable")[:4]
    pairs = [
        (synthetic[i].name, training[result["nearest_training"][i]].name, float(result["nearest_ncc"][i]))  # type: ignore[index]
        for i in closest
    ]
    return [
        graded(
            "memorisation.nearest_training",
            title,
            float(result["share_flagged"]),  # type: ignore[arg-type]
            _threshold(config.thresholds.memorisation),
            f"Share of synthetic samples within {config.memorisation_margin:g} x the distance (1 - NCC) to a "
            f"training case that the closest held-out real scan has (NCC {result['closest_held_out_ncc']:.3f}; "
            f"limit NCC {result['limit_ncc']:.3f}); such a sample may be a copy of a patient."
            + (
                f" {result['compared_without_own_source']} case(s) made from a training head on purpose (enrich) "
                "were compared with the other training cases."
                if result["compared_without_own_source"]
                else ""
            ),
            limit_ncc=result["limit_ncc"],
            flagged=[synthetic[i].name for i in result["flagged"]],  # type: ignore[union-attr]
            closest_pairs=pairs,
            held_out_nearest_ncc=result["held_out_nearest_ncc"],
            compared_without_own_source=result["compared_without_own_source"],
            synthetic_nearest_ncc=result["nearest_ncc"],
        )
    ]


def _median_ratio(synthetic_values: Sequence[float], real_values: Sequence[float]) -> float:
    return float(np.median(synthetic_values) / max(float(np.median(real_values)), 1e-12))


def _lesion_sigma(volumes: Sequence[ReportVolume]) -> float:
    """DoG scale from the masks: the median lesion's equivalent radius / sqrt(3) (voxels), at least 1."""
    sizes = [int(v.mask.sum()) for v in volumes if v.mask is not None and v.mask.any()]
    if not sizes:
        return 2.0
    radius = (3 * float(np.median(sizes)) / (4 * np.pi)) ** (1 / 3)
    return max(1.0, radius / np.sqrt(3))


def artifact_checks(
    real: Sequence[ReportVolume], synthetic: Sequence[ReportVolume], modality: str, config: ReportConfig
) -> list[Check]:
    """Non-finite values, grid artifacts, content outside the body, seams and hallucinated blobs."""
    thresholds = config.thresholds
    nonfinite = [v.nonfinite for v in synthetic]
    peaks = [v.checkerboard_peak for v in synthetic]
    outside = [v.outside_body_share for v in synthetic]
    real_peaks = [v.checkerboard_peak for v in real]
    peak_limit = config.checkerboard_factor * max(real_peaks)
    real_outside = float(np.mean([v.outside_body_share for v in real]))
    checks = [
        graded(
            "artifacts.nonfinite",
            "Non-finite values",
            float(sum(nonfinite)),
            _threshold(thresholds.nonfinite),
            "NaN / Inf voxels in the synthetic files (replaced by air for the other checks).",
            worst=[v.name for v in synthetic if v.nonfinite][:5],
        ),
        graded(
            "artifacts.checkerboard",
            "Grid / checkerboard artifacts",
            float(np.mean(np.asarray(peaks) > peak_limit)),
            _threshold(thresholds.checkerboard),
            "Share of synthetic samples whose spectrum peaks at the generator's upsampling frequencies (half / "
            f"quarter of the sampling rate) more than {config.checkerboard_factor:g} x the strongest real scan's: "
            "a periodic grid pattern real scans do not have.",
            synthetic_median=float(np.median(peaks)),
            real_max=float(max(real_peaks)),
            limit=peak_limit,
            worst=_worst(synthetic, peaks),
        ),
        graded(
            "artifacts.outside_body",
            "Content outside the body",
            float(np.mean(outside)) - real_outside,
            _threshold(thresholds.outside_body),
            "Share of air voxels (beyond 2 voxels around the body) above the body threshold, synthetic minus real: "
            "speckle or ghost structures in the air.",
            synthetic=float(np.mean(outside)),
            real=real_outside,
            worst=_worst(synthetic, outside),
        ),
    ]
    checks.extend(_lesion_checks(real, synthetic, modality, config))
    return checks


def _lesion_checks(
    real: Sequence[ReportVolume], synthetic: Sequence[ReportVolume], modality: str, config: ReportConfig
) -> list[Check]:
    with_masks = [v for v in synthetic if v.mask is not None and v.mask.any()]
    if not with_masks:
        reason = "the synthetic cases carry no lesion masks"
        return [
            skipped("artifacts.seam", "Lesion seams", reason),
            skipped("artifacts.hallucinated_blobs", "Lesion-like blobs outside the mask", reason),
        ]
    thresholds = config.thresholds
    syn_seams = [seam_score(v.values, v.mask) for v in with_masks]  # type: ignore[arg-type]
    real_lesions = [v for v in real if v.mask is not None and v.mask.any()]
    real_seams = [seam_score(v.values, v.mask) for v in real_lesions]  # type: ignore[arg-type]
    reference = "real lesions" if real_seams else "the surrounding tissue (no real lesion masks given)"
    seam_value = _median_ratio(syn_seams, real_seams) if real_seams else float(np.median(syn_seams))
    sigma = _lesion_sigma(with_masks)
    real_blobs = [blob_response(network(v.values, modality), v.body, sigma=sigma, exclude=v.mask) for v in real]
    syn_blobs = [blob_response(network(v.values, modality), v.body, sigma=sigma, exclude=v.mask) for v in with_masks]
    limit = max(real_blobs)
    flagged = [v.name for v, b in zip(with_masks, syn_blobs, strict=True) if b > limit]
    return [
        graded(
            "artifacts.seam",
            "Lesion seams",
            seam_value,
            _threshold(thresholds.seam),
            f"Gradient just outside each synthetic lesion relative to the tissue around it, median, over that of "
            f"{reference}; a high value is a visible seam where the lesion was pasted.",
            synthetic_median=float(np.median(syn_seams)),
            real_median=float(np.median(real_seams)) if real_seams else None,
            worst=_worst(with_masks, syn_seams),
        ),
        graded(
            "artifacts.hallucinated_blobs",
            "Lesion-like blobs outside the mask",
            len(flagged) / len(with_masks),
            _threshold(thresholds.hallucinated_blobs),
            f"Share of synthetic cases with a blob at lesion scale (DoG sigma {sigma:.1f} voxels) outside the mask "
            "stronger than any in the real scans: a lesion the mask does not mark would teach a detector wrong.",
            limit=limit,
            flagged=flagged,
            worst=_worst(with_masks, syn_blobs),
        ),
    ]


def run_checks(
    real: Sequence[ReportVolume],
    synthetic: Sequence[ReportVolume],
    training: Sequence[ReportVolume] | None,
    grid: ReportGrid,
    modality: str,
    config: ReportConfig,
    progress: Progress | None = None,
) -> list[Check]:
    """All checks, in the report's order."""
    steps: list[tuple[str, Callable[[], list[Check]]]] = [
        ("intensity", lambda: intensity_checks(real, synthetic, modality, config)),
        ("diversity", lambda: diversity_checks(real, synthetic, modality, config)),
        ("memorisation", lambda: memorisation_checks(real, synthetic, training, modality, config)),
        ("artifacts", lambda: artifact_checks(real, synthetic, modality, config)),
        (
            "realism (trains an autoencoder and two small classifiers)",
            lambda: realism_checks(real, synthetic, training, grid, modality, config),
        ),
    ]
    checks: list[Check] = []
    for name, step in steps:
        if progress:
            progress(name)
        checks.extend(step())
    order = ["realism", "intensity", "diversity", "memorisation", "artifacts"]
    return sorted(checks, key=lambda c: order.index(c.check_id.split(".")[0]))
