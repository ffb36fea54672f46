"""The enrich job's config (``medgan enrich CONFIG``): which cases, which lesions, how many, where to.

Every key has a description; unknown keys are errors naming the key and the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from medgan.config.loader import StrictModel


class EnrichConfig(StrictModel):
    """Insert synthetic lesions into healthy cases and write a datalist with the new cases."""

    datalist: Path = Field(
        Path("sample_data/datalist.json"), description="Datalist JSON of the source cases (decathlon style)."
    )
    split: str = Field("training", description="Datalist list whose healthy cases receive lesions.")
    fit_split: str | None = Field(
        None,
        description="Datalist list whose lesion cases the shape and appearance models are fitted on "
        "(null: the same as split).",
    )
    images: dict[str, str] = Field(
        default_factory=lambda: {"mri": "mri", "ct": "ct"},
        description="Datalist key -> intensity preset of every image that gets the lesion; several keys are "
        "a co-registered set (e.g. an MRI + CT pair), which receives one consistent lesion.",
    )
    label_key: str = Field("label", description="Datalist key of the integer class of a case.")
    healthy_label: int = Field(0, description="Class of the cases that count as healthy (lesion recipients).")
    lesion_label: int = Field(1, description="Class of the real lesion cases, and of the new synthetic cases.")
    lesion_mask_key: str = Field("lesion_mask", description="Datalist key of the lesion masks of lesion cases.")
    labels_key: str | None = Field(
        "labels",
        description="Datalist key of tissue label maps (the body and the host tissues of lesions); null: "
        "the body is found from the first image's intensity and lesions may go anywhere inside it.",
    )
    lesion_type_key: str | None = Field(
        "lesion_type", description="Datalist key of a lesion case's type (appearances are kept per type)."
    )
    method: Literal["procedural", "lesion"] = Field(
        "procedural",
        description="How lesions are painted: procedural (measured appearances of the real lesions, smooth "
        "boundary, noise matched to the local tissue) or lesion (a trained inpainting GAN run, `run`).",
    )
    run: Path | None = Field(
        None, description="With method lesion: the trained run folder (medgan train configs/lesion.yaml)."
    )
    cases_per_source: int = Field(1, ge=1, description="Synthetic cases made from each healthy case.")
    lesions_per_case: int = Field(1, ge=1, description="Lesions inserted into each synthetic case.")
    lesion_type: str | None = Field(
        None, description="Only lesions of this type (null: drawn from all fitted lesions)."
    )
    volume_range_ml: tuple[float, float] | None = Field(
        None, description="[min, max] lesion volume in ml (null: the fitted lesions' range)."
    )
    allowed_labels: list[int] | None = Field(
        None,
        description="Tissue labels a lesion may occupy (null: those that make up >= 5 % of the fitted "
        "lesions' surroundings, background excluded).",
    )
    min_depth_mm: float | None = Field(
        None,
        ge=0,
        description="Minimum distance of lesion voxels from the body surface (null: the fitted "
        "lesions' smallest centroid depth, halved).",
    )
    contrast_scale: float = Field(1.0, gt=0, description="Multiplier of the measured lesion contrast.")
    seed: int = Field(0, ge=0, description="Seed; case i's lesions come from (seed, i).")
    output_format: Literal["nifti", "dicom"] = Field("nifti", description="nifti or dicom (de-identified series).")
    out: Path = Field(Path("enriched"), description="Output folder (cases, models, datalist, manifest).")

    @field_validator("images")
    @classmethod
    def _some_images(cls, images: dict[str, str]) -> dict[str, str]:
        if not images:
            raise ValueError("name at least one image, e.g. {ct: ct}")
        return images

    @model_validator(mode="after")
    def _labels_differ(self) -> EnrichConfig:
        if self.method == "lesion" and self.run is None:
            raise ValueError("method lesion needs run: the folder of a trained lesion run")
        if self.healthy_label == self.lesion_label:
            raise ValueError("healthy_label and lesion_label must differ")
        if self.volume_range_ml is not None and not 0 < self.volume_range_ml[0] <= self.volume_range_ml[1]:
            raise ValueError("volume_range_ml must be [min, max] with 0 < min <= max")
        return self
