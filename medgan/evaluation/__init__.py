"""medgan.evaluation: paired translation metrics, metric summaries and slice montages."""

from medgan.evaluation.aggregate import aggregate_metrics
from medgan.evaluation.montage import display_slice, montage_layout, save_montage
from medgan.evaluation.translation_metrics import body_mask_from_ct, translation_metrics

__all__ = [
    "aggregate_metrics",
    "body_mask_from_ct",
    "display_slice",
    "montage_layout",
    "save_montage",
    "translation_metrics",
]
