"""Training methods (pix2pix, cyclegan, ...): networks, update phases, losses and inference.

Each method lives in its own module and registers itself with
``@register_method(name)``; ``get_method(name)`` finds it (importing the module
``medgan.methods.<name>`` on first use).
"""

from medgan.methods.base import (
    Batch,
    GanMethod,
    NetworkDict,
    Pairing,
    Phase,
    PhaseLoss,
    get_method,
    known_methods,
    register_method,
)

__all__ = [
    "Batch",
    "GanMethod",
    "NetworkDict",
    "Pairing",
    "Phase",
    "PhaseLoss",
    "get_method",
    "known_methods",
    "register_method",
]
