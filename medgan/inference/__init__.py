"""medgan.inference: window-invariant translation of whole volumes, back on the input's own grid."""

from medgan.inference.plan import InferencePlan
from medgan.inference.sliding_window import SlidingWindowSettings, Translator, translate_volume
from medgan.inference.volume import VolumeTranslator

__all__ = ["InferencePlan", "SlidingWindowSettings", "Translator", "VolumeTranslator", "translate_volume"]
