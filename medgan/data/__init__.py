"""medgan.data: modality presets, intensity mappings, transform chains, datalists and datasets."""

from medgan.data.datalist import DEFAULT_PATH_KEYS, SPLITS, load_datalist, make_unpaired, save_datalist
from medgan.data.datasets import (
    CACHE_POLICIES,
    UnpairedDataset,
    build_dataset,
    build_paired_dataset,
    build_unpaired_dataset,
)
from medgan.data.intensity import (
    CT_HU_WINDOW,
    MRI_PERCENTILES,
    CTWindowd,
    IntensityWindow,
    MRIPercentileScaled,
    ScaleToNetworkd,
    percentile_window,
)
from medgan.data.presets import PRESETS, ModalityPreset, canonical_modality, get_preset
from medgan.data.transforms import (
    BODY_MASK_KEY,
    BodyCropd,
    build_inference_transforms,
    build_transforms,
    invert_to_source,
)

__all__ = [
    "BODY_MASK_KEY",
    "CACHE_POLICIES",
    "CT_HU_WINDOW",
    "DEFAULT_PATH_KEYS",
    "MRI_PERCENTILES",
    "PRESETS",
    "SPLITS",
    "BodyCropd",
    "CTWindowd",
    "IntensityWindow",
    "MRIPercentileScaled",
    "ModalityPreset",
    "ScaleToNetworkd",
    "UnpairedDataset",
    "build_dataset",
    "build_inference_transforms",
    "build_paired_dataset",
    "build_transforms",
    "build_unpaired_dataset",
    "canonical_modality",
    "get_preset",
    "invert_to_source",
    "load_datalist",
    "make_unpaired",
    "percentile_window",
    "save_datalist",
]
