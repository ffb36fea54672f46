"""medgan.evaluation: paired translation metrics and metric summaries (montages live in medgan.viz)."""

from medgan.evaluation.aggregate import aggregate_metrics
from medgan.evaluation.translation_metrics import body_mask_from_ct, translation_metrics

__all__ = [
    "aggregate_metrics",
    "body_mask_from_ct",
    "translation_metrics",
]
