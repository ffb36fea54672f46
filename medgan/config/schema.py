"""The experiment config: shared sections (data, train, inference) and the method's own ``model`` options.

Why split this way: the engine, the CLI (`--set train.steps=20`) and the run
folder treat every method alike through ``data`` / ``train`` / ``inference``,
while ``model`` belongs to the method named by ``method`` and is validated
against that method's options model, so a knob of another method is an error
rather than a silently ignored key. Every key has a description.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SerializeAsAny, ValidationError, field_validator, model_validator

from medgan.config.loader import StrictModel, describe_validation_error
from medgan.errors import ConfigError
from medgan.methods.base import MethodOptions, get_method, methods_with_option

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


class HealthConfig(StrictModel):
    """Thresholds of the training-health verdicts (medgan.training.health), checked per log interval."""

    d_accuracy_max: float = Field(
        0.95, gt=0.5, le=1.0, description="D accuracy above this (real vs generated) counts as D dominating."
    )
    d_loss_ratio_min: float = Field(
        0.1,
        ge=0.0,
        lt=1.0,
        description="D loss below this fraction of its chance level (D guessing) counts as D dominating.",
    )
    diversity_ratio_min: float = Field(
        0.25,
        ge=0.0,
        le=1.0,
        description="Generated batch diversity below this fraction of the real batch's counts as collapsing.",
    )
    patience: int = Field(
        3, ge=1, description="Log intervals in a row a condition must hold before its verdict is given."
    )


class TrainConfig(StrictModel):
    """The training loop: length, optimisation, precision, and how often to save / validate / log."""

    steps: int = Field(2000, ge=1, description="Total optimisation steps (one step runs every due phase once).")
    batch_size: int = Field(4, ge=1, description="Patches per step per process.")
    seed: int = Field(0, description="Seed of every random choice (init, patches, augmentation).")
    lr: dict[str, float] | None = Field(
        None,
        description="Learning rate per optimizer: exactly the method's optimizer names (e.g. G and D); "
        "null gives every optimizer the method's default.",
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
    ema_rampup: float | None = Field(
        None,
        gt=0.0,
        le=1.0,
        description="EMA ramp-up (StyleGAN2-ADA): the EMA half-life is at most this fraction of the steps "
        "taken so far, so a short run's EMA is not dominated by its untrained first steps; null: off "
        "(constant ema_decay).",
    )
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
    health: HealthConfig = Field(default_factory=HealthConfig, description="Training-health verdict thresholds.")

    @field_validator("lr")
    @classmethod
    def _positive_lrs(cls, lr: dict[str, float] | None) -> dict[str, float] | None:
        bad = {key: value for key, value in (lr or {}).items() if value <= 0}
        if bad:
            raise ValueError(f"learning rates must be > 0, got {bad}")
        return lr


class InferenceConfig(StrictModel):
    """Sliding-window inference over whole volumes (validation and the translate job).

    The network sees each window with ``context`` voxels of the real neighbourhood
    on every side and only the window's core is kept, and the generator normalises
    with fixed statistics (batch norm in eval mode), so the translated volume does
    not depend on ``roi_size``, ``overlap`` or ``sw_batch_size`` beyond blending
    noise: those are speed settings (docs/decisions.md, "window-invariant inference").
    """

    roi_size: Triple = Field(
        (256, 256, 256),
        description="Largest window core in voxels: a longer axis is split into equal cores; a speed (and "
        "memory) setting, not a quality one. The default takes a typical head in one window.",
    )
    overlap: float = Field(
        0.0,
        ge=0.0,
        lt=1.0,
        description="Fractional overlap of neighbouring window cores (context makes seams vanish at 0).",
    )
    mode: Literal["gaussian", "constant"] = Field("gaussian", description="How overlapping window cores are blended.")
    sw_batch_size: int = Field(1, ge=1, description="Windows run through the network at once.")
    context: int = Field(
        16,
        ge=0,
        description="Voxels of neighbourhood the network sees around each window core on every side, where the "
        "volume has them (only the core is kept); roi_size + 2 * context must suit the generator (a multiple "
        "of its size multiple).",
    )
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto",
        description="Inference autocast: auto = bf16 on CUDA with bf16 support and on CPUs with AMX "
        "(measured several times faster), fp32 elsewhere.",
    )
    channels_last: bool | Literal["auto"] = Field(
        "auto", description="channels-last 3D memory format for the network: auto = with bf16 on CPU."
    )
    air_outside_body: bool = Field(
        True,
        description="Set the output to the target's background (CT: -1000 HU) outside the body mask of the "
        "source (threshold, largest component, holes filled).",
    )


class ExperimentConfig(StrictModel):
    """A training experiment: which method, on which data, with which networks, trained how.

    ``model`` is validated against the options model of the method named by
    ``method`` (each method declares its own), so a key that method does not read
    is an error naming the key and the method, and the saved ``config.yaml`` holds
    only what the method reads. The config check then builds the method, which
    refuses combinations it cannot train (e.g. a patch smaller than a network
    accepts), and fills or checks ``train.lr`` against the method's optimizers.
    """

    method: str = Field("pix2pix", description="Training method (registry name: pix2pix, cyclegan, ...).")
    data: DataConfig = Field(default_factory=DataConfig, description="Data and patch sampling.")
    model: SerializeAsAny[MethodOptions] = Field(
        default_factory=MethodOptions,
        description="The method's options (networks, losses): see the method's options model.",
    )
    train: TrainConfig = Field(default_factory=TrainConfig, description="The training loop.")
    inference: InferenceConfig = Field(default_factory=InferenceConfig, description="Sliding-window inference.")

    @model_validator(mode="before")
    @classmethod
    def _method_options(cls, raw: Any) -> Any:
        if not isinstance(raw, Mapping):
            return raw
        raw = dict(raw)
        method_name = raw.get("method", cls.model_fields["method"].default)
        if not isinstance(method_name, str):
            return raw  # the field's own validation reports the type
        options_model = get_method(method_name).options_model
        model = raw.get("model")
        if isinstance(model, options_model):
            return raw
        if model is not None and not isinstance(model, Mapping | MethodOptions):
            raise ConfigError(
                f"the model section must be a mapping, got {type(model).__name__}",
                fix="write model: {generator: {...}, ...}",
            )
        if isinstance(model, MethodOptions):
            model = model.model_dump()
        try:
            raw["model"] = options_model.model_validate(dict(model or {}))
        except ValidationError as err:
            raise describe_validation_error(
                err, None, prefix="model", unknown_key_hint=lambda key: _foreign_option_hint(key, method_name)
            ) from None
        return raw

    @model_validator(mode="after")
    def _method_accepts_config(self) -> ExperimentConfig:
        if self.train.batch_size % self.data.samples_per_volume:
            raise ValueError(
                f"train.batch_size ({self.train.batch_size}) must be a multiple of data.samples_per_volume "
                f"({self.data.samples_per_volume})"
            )
        method = get_method(self.method)(self)
        optimizers = method.optimizer_names()
        if self.train.lr is None:
            self.train.lr = {name: method.default_lr for name in optimizers}
        elif set(self.train.lr) != set(optimizers):
            missing = sorted(set(optimizers) - set(self.train.lr))
            extra = sorted(set(self.train.lr) - set(optimizers))
            problem = f"train.lr must name exactly the optimizers of method {self.method!r}: {list(optimizers)}"
            details = ([f"missing {missing}"] if missing else []) + ([f"not an optimizer: {extra}"] if extra else [])
            raise ConfigError(
                f"{problem} ({'; '.join(details)})",
                fix="set train.lr to {" + ", ".join(f"{name}: {method.default_lr:g}" for name in optimizers) + "}",
            )
        method.check_config()
        return self


def _foreign_option_hint(key: str, method_name: str) -> str:
    """`(method pix2pix has no such option; it is an option of cyclegan)`, or the first half alone."""
    owners = [name for name in methods_with_option(key) if name != method_name]
    hint = f"(method {method_name!r} has no such option"
    return hint + (f"; it is an option of {', '.join(owners)})" if owners else ")")
