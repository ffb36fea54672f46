"""The method protocol and the method registry.

A *method* (pix2pix, cyclegan, ...) says what a GAN is made of and how it learns;
the one training engine (``medgan.training``) says how learning is run. The split
follows the phase design of the StyleGAN2-ADA / EDM training loops:

* the method builds its networks (``name -> nn.Module``) from the config through
  the network registry, and says which of them keep an EMA copy;
* it declares named update **phases** (``Phase("D", trains=("D",))``,
  ``Phase("G", trains=("G",))``, a regulariser every 16 steps...). Each phase
  gets its own optimizer over the parameters of the networks it trains; the
  engine owns the optimizers, schedulers, devices, mixed precision, DDP,
  checkpoints and logging;
* ``phase_loss(phase_name, networks, batch)`` returns the scalar loss of one
  phase and a dict of floats to log. Loss functions are objects held by the
  method (``medgan.losses``), separate from the networks;
* ``translate(networks, source_net)`` is inference: source -> target, both in the
  network intensity range [-1, 1].

Batches handed to a method are dicts of tensors already on the device:
``source`` and ``target`` ``(B, 1, D, H, W)`` in [-1, 1] and ``body_mask``
``(B, 1, D, H, W)`` float {0, 1}. For paired methods the three are voxel-aligned;
for unpaired methods ``source`` and ``target`` come from different subjects and
``body_mask`` belongs to ``source`` (``target_body_mask`` to ``target``). The
engine builds a fresh dict every step and runs the phases in declared order on
it, so an earlier phase may leave derived tensors in it for a later one (e.g. the
generator phase stores ``batch["fake_target"] = fake.detach()`` so the
discriminator phase does not run the generator again).

Methods are found by name: ``@register_method("pix2pix")`` on the class,
``get_method("pix2pix")`` to find it. A name not yet registered is looked up as
the module ``medgan.methods.<name>`` before giving up, so new methods need no
central list.
"""

from __future__ import annotations

import contextlib
import importlib
import pkgutil
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

import torch
from torch import nn

from medgan.errors import ConfigError

if TYPE_CHECKING:
    from medgan.config.schema import ExperimentConfig

Pairing = Literal["paired", "unpaired"]
NetworkDict = dict[str, nn.Module]
Batch = dict[str, torch.Tensor]
PhaseLoss = tuple[torch.Tensor, dict[str, float]]


@dataclass(frozen=True)
class Phase:
    """One named optimisation phase of a training step.

    ``trains`` names the networks whose parameters this phase's optimizer updates
    (all other networks are frozen while it runs). The phase runs on steps where
    ``step % interval == 0``; regularisation phases (lazy R1, path length...) use
    ``interval > 1``. ``lr_key`` names the entry of ``train.lr`` that sets this
    phase's learning rate (defaults to the phase name).
    """

    name: str
    trains: tuple[str, ...]
    interval: int = 1
    lr_key: str | None = None

    def __post_init__(self) -> None:
        if not self.trains:
            raise ValueError(f"phase {self.name!r} trains no network")
        if self.interval < 1:
            raise ValueError(f"phase {self.name!r}: interval must be >= 1, got {self.interval}")

    def is_due(self, step: int) -> bool:
        """True when this phase runs at (0-based) training step ``step``."""
        return step % self.interval == 0

    @property
    def optimizer_key(self) -> str:
        """The key of ``train.lr`` / ``train.betas`` that configures this phase's optimizer."""
        return self.lr_key or self.name


class GanMethod(ABC):
    """Base class of every training method: networks, phases, losses and inference.

    Subclasses set ``pairing`` ("paired" or "unpaired") so the engine builds the
    right dataset, and implement the abstract methods below. A method is built
    from the whole experiment config (``method = cls(config)``) and reads its own
    knobs from ``config.model``; it holds no optimizer and no device state.
    """

    name: ClassVar[str] = ""
    pairing: ClassVar[Pairing] = "paired"

    def __init__(self, config: ExperimentConfig) -> None:
        self.config = config

    @abstractmethod
    def build_networks(self) -> NetworkDict:
        """Build every network of the method, freshly initialised, on the CPU."""

    @abstractmethod
    def phases(self) -> tuple[Phase, ...]:
        """The update phases of one training step, in the order they run."""

    @abstractmethod
    def phase_loss(self, phase_name: str, networks: Mapping[str, nn.Module], batch: Batch) -> PhaseLoss:
        """The scalar loss of phase ``phase_name`` on ``batch`` and the floats to log for it.

        Log keys are short (``"l1"``, ``"adv"``, ``"d_real"``); the engine prefixes
        them with the phase name. The loss must be differentiable w.r.t. the
        parameters of the networks the phase trains.
        """

    @abstractmethod
    def translate(self, networks: Mapping[str, nn.Module], source_net: torch.Tensor) -> torch.Tensor:
        """Map a source batch ``(B, 1, D, H, W)`` in [-1, 1] to the target domain, same shape."""

    def ema_networks(self) -> tuple[str, ...]:
        """Names of the networks that keep an exponential-moving-average copy (used at inference)."""
        return ()

    def inference_network_names(self) -> tuple[str, ...]:
        """Names of the networks ``translate`` needs (others need not be loaded to infer)."""
        return tuple(self.ema_networks())

    def sample_outputs(self, networks: Mapping[str, nn.Module], batch: Batch) -> dict[str, torch.Tensor]:
        """Named volumes for the sample montage: source, target and the translation of the source."""
        with torch.no_grad():
            prediction = self.translate(networks, batch["source"])
        return {"source": batch["source"], "prediction": prediction, "target": batch["target"]}


_METHODS: dict[str, type[GanMethod]] = {}


def register_method(name: str) -> Callable[[type[GanMethod]], type[GanMethod]]:
    """Class decorator registering a :class:`GanMethod` under ``name`` (the config's ``method``)."""

    def decorate(cls: type[GanMethod]) -> type[GanMethod]:
        existing = _METHODS.get(name)
        if existing is not None and existing is not cls and existing.__qualname__ != cls.__qualname__:
            raise ValueError(f"method name {name!r} is already registered by {existing.__qualname__}")
        cls.name = name
        _METHODS[name] = cls
        return cls

    return decorate


def known_methods() -> list[str]:
    """Sorted names of every method the package provides (imports the method modules to find them)."""
    package = importlib.import_module("medgan.methods")
    for module_info in pkgutil.iter_modules(package.__path__):
        if not module_info.name.startswith("_") and module_info.name != "base":
            with contextlib.suppress(ImportError):
                importlib.import_module(f"medgan.methods.{module_info.name}")
    return sorted(_METHODS)


def get_method(name: str) -> type[GanMethod]:
    """The method class registered as ``name``; imports ``medgan.methods.<name>`` on first use.

    Raises ConfigError listing the known methods when there is no such method.
    """
    if name not in _METHODS and name.isidentifier():
        try:
            importlib.import_module(f"medgan.methods.{name}")
        except ModuleNotFoundError as err:
            if err.name != f"medgan.methods.{name}":
                raise
    if name not in _METHODS:
        raise ConfigError(
            f"unknown method {name!r}; known methods: {', '.join(known_methods()) or '(none)'}",
            fix="set `method:` in the config to one of the known methods",
        )
    return _METHODS[name]
