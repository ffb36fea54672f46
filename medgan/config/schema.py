"""The experiment config: one typed schema for every training method.

Why one schema: the engine, the CLI (`--set train.steps=20`) and the run folder
treat every method alike; a method reads the knobs it needs from ``model`` and
ignores the others (e.g. pix2pix ignores ``lambda_cycle``). Every key has a
description, so ``ExperimentConfig.model_json_schema()`` documents the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from medgan.config.loader import StrictModel

Triple = tuple[int, int, int]


class DataConfig(StrictModel):
    """Where the volumes come from and how training patches are drawn from them."""

    datalist: Path = Field(
        Path("sample_data/datalist.json"),
        description="MONAI-style datalist JSON (training/validation/test lists); paths in it are relative "
        "to its folder.",
    )
    source_key: str = Field("mri", description="Datalist key of the input image (the network's source).")
    target_key: str = Field("ct", description="Datalist key of the image to learn to produce (the target).")
    source_modality: str = Field("mri", description="Intensity preset of the source (medgan.data.presets name).")
    target_modality: str = Field("ct", description="Intensity preset of the target (medgan.data.presets name).")
    labels_key: str | None = Field(
        "labels",
        description="Datalist key of a label map whose non-zero voxels mark the body for the masked loss; "
        "null (or entries without it) derives the body mask from the source intensity.",
    )
    augment: bool = Field(False, description="Random left-right flips of the training patches.")
    train_split: str = Field("training", description="Datalist list used for training.")
    validation_split: str = Field("validation", description="Datalist list used for periodic validation.")
    spacing: tuple[float, float, float] | None = Field(
        None, description="Resample to this voxel spacing in mm before patching; null keeps the native spacing."
    )
    patch_size: Triple = Field((32, 32, 32), description="Training patch size in voxels (D, H, W).")
    samples_per_volume: int = Field(
        2, ge=1, description="Patches cut from each loaded volume; train.batch_size must be a multiple of it."
    )
    body_patch_fraction: float = Field(
        0.9, ge=0.0, le=1.0, description="Fraction of patches centred inside the body (the rest anywhere)."
    )
    body_threshold: float | None = Field(
        None,
        ge=-1.0,
        le=1.0,
        description="Source intensity (network units, [-1, 1]) above which a voxel counts as body for the "
        "masked loss when no label map is given; null uses the source preset's threshold.",
    )
    cache: Literal["memory", "disk", "none"] = Field(
        "memory", description="Cache the deterministic preprocessing: in memory, on disk (cache_dir) or not at all."
    )
    cache_dir: Path | None = Field(None, description="Folder for cache: disk; default <run dir>/cache.")
    divisible_by: int = Field(
        16, ge=1, description="Pad preprocessed volumes to a multiple of this (the generator's size multiple)."
    )
    num_workers: int = Field(0, ge=0, description="DataLoader worker processes (0 loads in the main process).")
    validation_volumes: int = Field(
        2, ge=0, description="How many validation volumes periodic validation uses (0 disables validation)."
    )


class LossConfig(StrictModel):
    """Loss weights and kinds shared by every method (each method uses the ones it needs)."""

    adversarial: Literal["lsgan", "hinge", "nonsaturating"] = Field(
        "lsgan", description="Adversarial loss: least squares (default), hinge or non-saturating BCE."
    )
    lambda_adv: float = Field(
        1.0, ge=0.0, description="Weight of the generator's adversarial loss; 0 trains an L1-only generator (no D)."
    )
    lambda_l1: float = Field(100.0, ge=0.0, description="Weight of the paired L1 loss (pix2pix).")
    body_only_l1: bool = Field(
        True, description="Weight the paired L1 by the body mask (voxels outside get background_l1_weight)."
    )
    background_l1_weight: float = Field(
        0.1,
        ge=0.0,
        le=1.0,
        description="With body_only_l1: relative L1 weight of voxels outside the body (0 = body only; a small "
        "weight still teaches the generator to output air around the head).",
    )
    lambda_cycle: float = Field(10.0, ge=0.0, description="Weight of the cycle-consistency L1 (cyclegan).")
    lambda_identity: float = Field(
        0.5, ge=0.0, description="Identity loss weight, as a fraction of lambda_cycle (cyclegan)."
    )
    pool_size: int = Field(50, ge=0, description="History pool of generated images shown to D (cyclegan; 0 = off).")


class ModelConfig(StrictModel):
    """The networks (as network-registry specs) and the losses."""

    generator: dict[str, Any] = Field(
        default_factory=lambda: {
            "name": "unet3d",
            "channels": [16, 32, 64, 128],
            "strides": [2, 2, 2],
            "num_res_units": 1,
        },
        description="Generator spec for medgan.models.build_network: {name: ..., constructor args}.",
    )
    discriminator: dict[str, Any] = Field(
        default_factory=lambda: {"name": "patchgan3d", "channels": 16, "num_layers_d": 3},
        description="Discriminator spec for medgan.models.build_network; input channels are set by the method.",
    )
    losses: LossConfig = Field(default_factory=LossConfig, description="Loss kinds and weights.")

    @field_validator("generator", "discriminator")
    @classmethod
    def _spec_has_name(cls, spec: dict[str, Any]) -> dict[str, Any]:
        if "name" not in spec:
            raise ValueError("a network spec needs a `name` key (a medgan.models registry name)")
        return spec


class TrainConfig(StrictModel):
    """The training loop: length, optimisation, precision, and how often to save / validate / log."""

    steps: int = Field(2000, ge=1, description="Total optimisation steps (one step runs every due phase once).")
    batch_size: int = Field(4, ge=1, description="Patches per step per process.")
    seed: int = Field(0, description="Seed of every random choice (init, patches, augmentation).")
    lr: dict[str, float] = Field(
        default_factory=lambda: {"G": 2e-4, "D": 2e-4},
        description="Learning rate per update phase (keys are the method's phase names, e.g. G and D).",
    )
    betas: tuple[float, float] = Field((0.5, 0.999), description="Adam betas for every optimizer.")
    weight_decay: float = Field(0.0, ge=0.0, description="AdamW weight decay for every optimizer.")
    lr_schedule: Literal["constant", "linear_decay"] = Field(
        "linear_decay", description="constant, or linear decay to 0 from lr_decay_start * steps (pix2pix style)."
    )
    lr_decay_start: float = Field(0.5, ge=0.0, le=1.0, description="Fraction of steps after which lr decays.")
    grad_clip_norm: float | None = Field(None, gt=0.0, description="Clip each phase's gradient norm; null = off.")
    ema_decay: float = Field(
        0.999, ge=0.0, lt=1.0, description="EMA decay of the method's EMA networks per step; 0 disables EMA."
    )
    ema_start_step: int = Field(0, ge=0, description="Before this step the EMA copy just follows the weights.")
    precision: Literal["fp32", "bf16", "fp16", "auto"] = Field(
        "auto",
        description="Autocast precision: fp32, bf16, fp16 (CUDA only, with a grad scaler) or auto "
        "(bf16 on CUDA with bf16 support, fp32 on CPU).",
    )
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto = CUDA when present, else CPU.")
    checkpoint_every: int = Field(500, ge=1, description="Save a checkpoint every N steps (and at the end).")
    keep_checkpoints: int = Field(3, ge=1, description="Keep the last K checkpoints.")
    validate_every: int = Field(500, ge=0, description="Validate every N steps (0 = only at the end).")
    log_every: int = Field(10, ge=1, description="Write metrics.jsonl / TensorBoard / log lines every N steps.")
    sample_every: int = Field(500, ge=0, description="Write a sample montage PNG every N steps (0 = only at the end).")
    max_nonfinite_in_row: int = Field(
        5, ge=1, description="Non-finite steps in a row (each is skipped) before nonfinite_action."
    )
    nonfinite_action: Literal["restore", "stop"] = Field(
        "restore",
        description="restore: reload the last good checkpoint with lr *= restore_lr_factor; stop: raise.",
    )
    restore_lr_factor: float = Field(0.5, gt=0.0, le=1.0, description="lr multiplier applied at each restore.")
    max_restores: int = Field(3, ge=0, description="Restores allowed before the run stops with an error.")

    @field_validator("lr")
    @classmethod
    def _positive_lrs(cls, lr: dict[str, float]) -> dict[str, float]:
        bad = {key: value for key, value in lr.items() if value <= 0}
        if bad:
            raise ValueError(f"learning rates must be > 0, got {bad}")
        return lr


class InferenceConfig(StrictModel):
    """Sliding-window inference over whole volumes (validation and the translate job)."""

    roi_size: Triple = Field((32, 32, 32), description="Sliding-window size in voxels; usually the patch size.")
    overlap: float = Field(0.5, ge=0.0, lt=1.0, description="Fractional overlap of neighbouring windows.")
    mode: Literal["gaussian", "constant"] = Field("gaussian", description="How overlapping windows are blended.")
    sw_batch_size: int = Field(2, ge=1, description="Windows run through the network at once.")


class ExperimentConfig(StrictModel):
    """A training experiment: which method, on which data, with which networks, trained how."""

    method: str = Field("pix2pix", description="Training method (registry name: pix2pix, cyclegan, ...).")
    data: DataConfig = Field(default_factory=DataConfig, description="Data and patch sampling.")
    model: ModelConfig = Field(default_factory=ModelConfig, description="Networks and losses.")
    train: TrainConfig = Field(default_factory=TrainConfig, description="The training loop.")
    inference: InferenceConfig = Field(default_factory=InferenceConfig, description="Sliding-window inference.")

    @model_validator(mode="after")
    def _batch_fits_patches(self) -> ExperimentConfig:
        if self.train.batch_size % self.data.samples_per_volume:
            raise ValueError(
                f"train.batch_size ({self.train.batch_size}) must be a multiple of data.samples_per_volume "
                f"({self.data.samples_per_volume})"
            )
        return self
