"""Training methods (pix2pix, cyclegan, ...): options, data stream, networks, phases, validation, capabilities.

Each method lives in its own module and registers itself with
``@register_method(name)``; ``get_method(name)`` finds it (importing the module
``medgan.methods.<name>`` on first use). The protocol is in
:mod:`medgan.methods.base`, the capabilities jobs look for in
:mod:`medgan.methods.capabilities`.
"""

from medgan.methods.base import (
    Batch,
    GanMethod,
    InferenceContext,
    MethodOptions,
    NetworkDict,
    Phase,
    PhaseContext,
    PhaseLoss,
    SampleVolume,
    Stateful,
    StepContext,
    get_method,
    known_methods,
    register_method,
)
from medgan.methods.capabilities import Inpainter, Reconstructor, Sampler, Translator, capabilities_of

__all__ = [
    "Batch",
    "GanMethod",
    "InferenceContext",
    "Inpainter",
    "MethodOptions",
    "NetworkDict",
    "Phase",
    "PhaseContext",
    "PhaseLoss",
    "Reconstructor",
    "SampleVolume",
    "Sampler",
    "Stateful",
    "StepContext",
    "Translator",
    "capabilities_of",
    "get_method",
    "known_methods",
    "register_method",
]
