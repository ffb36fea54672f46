"""The report's config (``medgan report``): inputs, the comparison grid, and every check's threshold.

The paths can come from the command line (``--real``, ``--synthetic``, ``--out`` ...) or the
config file; every key can be overridden with ``--set``. Unknown keys are errors naming the key
and the file. Thresholds are ``{warn, fail}``: a value beyond ``warn`` warns, beyond ``fail``
fails (for every check here a higher value is worse).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from medgan.config.loader import StrictModel


class Limits(StrictModel):
    """A check's warn and fail limits (higher = worse)."""

    warn: float = Field(description="Values above this warn.")
    fail: float = Field(description="Values above this fail.")

    @model_validator(mode="after")
    def _ordered(self) -> Limits:
        if self.fail < self.warn:
            raise ValueError(f"fail ({self.fail}) must not be below warn ({self.warn})")
        return self


def _limits(warn: float, fail: float, what: str):
    return Field(default_factory=lambda: Limits(warn=warn, fail=fail), description=what)


class ReportThresholds(StrictModel):
    """One entry per graded check (README: `medgan report` lists what each value means)."""

    radiomics_frechet: Limits = _limits(0.5, 2.0, "Fréchet distance of standardised features / number of features.")
    radiomics_mmd: Limits = _limits(0.25, 1.0, "Linear-kernel MMD of standardised features / number of features.")
    in_domain_frechet: Limits = _limits(0.5, 2.0, "Fréchet distance of the in-domain network's features / feature.")
    in_domain_mmd: Limits = _limits(0.25, 1.0, "Linear MMD of the in-domain network's features / feature.")
    two_sample_auc: Limits = _limits(0.7, 0.9, "Held-out AUC of a real-vs-synthetic classifier (0.5 = can't tell).")
    tissue_wasserstein_hu: Limits = _limits(25.0, 75.0, "CT: largest per-tissue Wasserstein distance (HU).")
    tissue_wasserstein_mri: Limits = _limits(0.05, 0.15, "MRI: largest per-tissue Wasserstein distance (window scale).")
    tissue_shares: Limits = _limits(0.05, 0.15, "Largest difference in the share of body voxels of a tissue band.")
    hu_range: Limits = _limits(0.001, 0.01, "CT: share of synthetic voxels outside -1024..3071 HU.")
    ms_ssim_excess: Limits = _limits(0.05, 0.15, "Mean pairwise MS-SSIM of synthetic minus that of real scans.")
    near_duplicates: Limits = _limits(0.0, 0.1, "Share of synthetic samples in a near-duplicate pair.")
    memorisation: Limits = _limits(0.0, 0.05, "Share of synthetic samples closer to a training case than any held-out.")
    nonfinite: Limits = _limits(0.0, 0.0, "Non-finite voxels in the synthetic files.")
    checkerboard: Limits = _limits(0.0, 0.1, "Share of synthetic samples with a grid-frequency peak (see below).")
    outside_body: Limits = _limits(0.005, 0.02, "Share of air voxels with content, synthetic minus real.")
    seam: Limits = _limits(1.5, 2.5, "Median lesion seam score of synthetic / that of real lesions.")
    hallucinated_blobs: Limits = _limits(
        0.1, 0.25, "Share of synthetic cases with a lesion-like blob outside the mask."
    )


class ReportConfig(StrictModel):
    """Compare a synthetic set with real scans; write report.json and a self-contained report.html."""

    real: Path | None = Field(
        None, description="Real scans: a datalist JSON, or a folder of NIfTI files / DICOM series."
    )
    synthetic: Path | None = Field(
        None, description="Synthetic scans: a generate / enrich output folder, its datalist.json, or a folder of NIfTI."
    )
    out: Path | None = Field(None, description="Output folder (report.json, report.html, figures/).")
    training: Path | None = Field(
        None,
        description="Datalist the generator was trained on (memorisation); null: the `training` list of `real` "
        "when it is a datalist that has one.",
    )
    translation: Path | None = Field(None, description="A translate job's output folder (its evaluation.json).")
    downstream: Path | None = Field(None, description="A downstream study's downstream.json.")
    image_key: str | None = Field(
        None, description="Datalist key of the image compared (null: `ct` if the entries have it, else `mri`)."
    )
    modality: str | None = Field(None, description="Intensity preset of that image (null: the image key's name).")
    mask_key: str = Field("lesion_mask", description="Datalist key of lesion masks (seam and blob checks).")
    real_splits: list[str] = Field(
        ["validation", "test"],
        description="Lists of a real datalist used as the held-out reference (missing ones are skipped; none "
        "present: every list).",
    )
    training_split: str = Field("training", description="List of the training datalist.")
    max_volumes: int = Field(64, ge=4, description="At most this many volumes per set (a seeded subsample).")
    max_edge: int = Field(96, ge=16, description="Largest edge of the comparison grid (voxels).")
    spacing: float | None = Field(None, gt=0, description="Comparison grid spacing in mm (null: from the real scans).")
    max_voxels: int = Field(200_000, ge=1000, description="Body voxels per set for the histograms (subsampled).")
    two_sample_steps: int = Field(150, ge=1, description="Training steps of each two-sample classifier.")
    two_sample_edge: int = Field(32, ge=8, description="Volumes are downsampled to this edge for the two-sample test.")
    in_domain_steps: int = Field(200, ge=1, description="Training steps of the in-domain feature network.")
    in_domain_edge: int = Field(32, ge=8, description="Volumes are downsampled to this edge for that network.")
    memorisation_margin: float = Field(
        0.5,
        gt=0,
        le=1,
        description="A sample is memorised when its distance (1 - NCC) to a training case is below this x the "
        "closest held-out real scan's.",
    )
    near_duplicate_ncc: float = Field(0.98, gt=0, le=1, description="Lowest NCC a near-duplicate pair can have.")
    significance: float = Field(
        0.05, gt=0, lt=1, description="Permutation p-value below which a feature distance is graded (else pass)."
    )
    checkerboard_factor: float = Field(
        3.0, gt=0, description="A sample's grid-frequency peak is an artifact above this x the strongest real scan's."
    )
    montage_volumes: int = Field(4, ge=1, description="Samples of each set shown in the slice montages.")
    seed: int = Field(0, ge=0, description="Seed of every subsample, fold split and classifier.")
    thresholds: ReportThresholds = Field(default_factory=ReportThresholds, description="Warn / fail limits per check.")
