"""The method protocol and the method registry.

A *method* (pix2pix, cyclegan, ...) says what a GAN is made of and how it learns;
the one training engine (``medgan.training``) says how learning is run and knows
no task. The split follows the phase design of the StyleGAN2-ADA training loop.
A method declares:

* its **options**: a pydantic model (``options_model``) that the config's
  ``model:`` section is validated against, so a key the method does not read is
  an error; the method reads them as ``self.options``;
* its **training stream** (:meth:`GanMethod.training_stream`): a map-style dataset
  whose item ``i`` is one *draw*, a dict of stacked tensors whose dtypes are kept
  (float images, integer labels, complex k-space); the engine only batches and
  moves it;
* its **networks** (``name -> nn.Module``) and which of them keep an EMA copy;
* its update **phases**, each naming the networks it trains, its own loss
  function, how often it runs and which optimizer it steps. Phases that name the
  same optimizer share it (a lazy regulariser sharing its main phase's Adam);
* its non-network **state** (:meth:`GanMethod.build_state`: image pools, an ADA
  probability...), checkpointed and restored exactly by the engine but never
  treated as a network, and an :meth:`GanMethod.end_of_step` hook that may
  update it from the statistics the phases reported;
* its **validation**: a set of items (:meth:`GanMethod.validation_set`), the named
  volumes it computes for one item (:meth:`GanMethod.infer_outputs`), the metrics
  to score them with (names in :mod:`medgan.evaluation.metric_registry`), and the
  volumes to show in the sample montage (:meth:`GanMethod.sample_volumes`);
* its **capabilities**: what a trained run can do for a job (translate, sample,
  inpaint, reconstruct), as the small protocols of :mod:`medgan.methods.capabilities`.

Loss functions return ``(loss, stats)``: ``stats`` maps short names to detached
tensors (``"l1"``, ``"adv"``); the engine prefixes them with the phase name and
reduces them only at log time, so a CUDA step does not synchronise on every
number. Keys starting with ``health/`` are training-health statistics
(:mod:`medgan.training.health`) and are kept unprefixed.

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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, Protocol, runtime_checkable

import torch
from torch import nn
from torch.utils.data import Dataset

from medgan.config.loader import StrictModel
from medgan.errors import ConfigError

if TYPE_CHECKING:
    from medgan.config.schema import ExperimentConfig

NetworkDict = dict[str, nn.Module]
Batch = dict[str, torch.Tensor]
Stats = dict[str, torch.Tensor]
PhaseLoss = tuple[torch.Tensor, Stats]


class MethodOptions(StrictModel):
    """Base of every method's options model (the config's ``model:`` section)."""


@runtime_checkable
class Stateful(Protocol):
    """Non-network method state: anything with ``state_dict`` / ``load_state_dict`` of tensors and plain values."""

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: Mapping[str, Any]) -> Any: ...


@dataclass(frozen=True)
class PhaseContext:
    """What a phase's loss function knows besides networks and batch.

    ``gain`` multiplies a lazily evaluated regulariser (StyleGAN2: a penalty computed
    every ``interval`` steps is weighted by ``interval`` so its average strength is
    unchanged); it equals the phase's interval. ``state`` is the method's state slot.
    """

    step: int
    phase: Phase
    gain: float
    state: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StepContext:
    """What the end-of-step hook knows: the step just run and the method's state slot."""

    step: int
    state: Mapping[str, Any]


LossFunction = Callable[[PhaseContext, Mapping[str, nn.Module], Batch], PhaseLoss]


@dataclass(frozen=True)
class Phase:
    """One named optimisation phase of a training step.

    ``trains`` names the networks whose parameters this phase updates (all other
    networks are frozen while it runs); ``loss`` computes its loss. The phase runs
    on steps where ``step >= start_step`` and ``(step - start_step) % interval == 0``
    (``start_step`` > 0: a critic that joins after a warm-up, e.g. pix2pix's
    ``adversarial_start``). ``optimizer`` names the optimizer it
    steps (and the ``train.lr`` entry that sets it; default: the phase name):
    phases naming the same optimizer share one, e.g. ``Phase("D_reg", ("D",),
    loss=r1, interval=16, optimizer="D")`` regularises D lazily with D's own Adam,
    whose lr and betas the engine then corrects by ``c = interval / (interval + 1)``
    (Karras et al. 2020).
    """

    name: str
    trains: tuple[str, ...]
    loss: LossFunction
    interval: int = 1
    optimizer: str | None = None
    double_backward: bool = False
    """The loss differentiates through a gradient (R1's ``autograd.grad(..., create_graph=True)``).
    DistributedDataParallel's reducer cannot follow that, so under DDP such a phase runs on the
    plain networks and the engine averages their gradients over the ranks itself."""
    start_step: int = 0
    """The first step this phase runs at (e.g. a critic that joins after an L1 warm-up)."""

    def __post_init__(self) -> None:
        if not self.trains:
            raise ValueError(f"phase {self.name!r} trains no network")
        if self.interval < 1:
            raise ValueError(f"phase {self.name!r}: interval must be >= 1, got {self.interval}")
        if self.start_step < 0:
            raise ValueError(f"phase {self.name!r}: start_step must be >= 0, got {self.start_step}")

    def is_due(self, step: int) -> bool:
        """True when this phase runs at (0-based) training step ``step``."""
        return step >= self.start_step and (step - self.start_step) % self.interval == 0

    @property
    def optimizer_key(self) -> str:
        """The optimizer this phase steps, which is also its key in ``train.lr``."""
        return self.optimizer or self.name


class SampleVolume(NamedTuple):
    """One row of a sample montage: a ``(D, H, W)`` volume and the display window for it."""

    volume: torch.Tensor
    window: tuple[float, float]


@dataclass(frozen=True)
class InferenceContext:
    """Where and how a method runs inference during validation: device and autocast precision."""

    device: torch.device
    precision: str


class GanMethod(ABC):
    """Base class of every training method (see the module docstring for the protocol).

    A method is built from the whole experiment config (``cls(config)``); its own
    options are ``self.options`` (the validated ``config.model``). It holds no
    optimizer and no device state; construction must be cheap and must raise
    ConfigError for option combinations it cannot train, because the config
    check builds it.
    """

    name: ClassVar[str] = ""
    options_model: ClassVar[type[MethodOptions]] = MethodOptions
    default_lr: ClassVar[float] = 2e-4
    """Learning rate of each optimizer when ``train.lr`` is not given."""

    def __init__(self, config: ExperimentConfig) -> None:
        self.config = config
        self.options = config.model

    # ---- data -----------------------------------------------------------------------------------

    @abstractmethod
    def training_stream(self, cache_dir: Path | None) -> Dataset:
        """The training draws: item ``i`` is a dict of tensors stacked along a leading sample axis.

        Must be a pure function of ``(config.train.seed, i)`` so a resumed run sees the
        same data; must expose ``samples_per_draw`` (``train.batch_size`` is a multiple of it).
        """

    # ---- networks and phases --------------------------------------------------------------------

    @abstractmethod
    def build_networks(self) -> NetworkDict:
        """Build every network of the method, freshly initialised, on the CPU."""

    @abstractmethod
    def phases(self) -> tuple[Phase, ...]:
        """The update phases of one training step, in the order they run."""

    def generator_then_critic(self, *, with_critic: bool, critic_start: int = 0) -> tuple[Phase, ...]:
        """The usual phases: ``G`` (``self.generator_loss``) every step, then ``D`` (``self.discriminator_loss``)
        from step ``critic_start`` on when there is a critic: pix2pix, lesion and recon share this."""
        generator_phase = Phase("G", trains=("G",), loss=self.generator_loss)  # type: ignore[attr-defined]
        if not with_critic:
            return (generator_phase,)
        critic = Phase("D", trains=("D",), loss=self.discriminator_loss, start_step=critic_start)  # type: ignore[attr-defined]
        return (generator_phase, critic)

    def ema_networks(self) -> tuple[str, ...]:
        """Names of the networks that keep an exponential-moving-average copy (used at inference)."""
        return ()

    def inference_network_names(self) -> tuple[str, ...]:
        """Names of the networks inference needs (others need not be loaded to infer)."""
        return tuple(self.ema_networks())

    def optimizer_names(self) -> tuple[str, ...]:
        """The optimizers the phases step, in first-use order (the keys ``train.lr`` must have)."""
        return tuple(dict.fromkeys(phase.optimizer_key for phase in self.phases()))

    def check_config(self) -> None:
        """Raise ConfigError for a config this method cannot train (e.g. a patch too small for a network)."""
        return None

    def profiled_images(self) -> tuple[tuple[str, str], tuple[str, str] | None]:
        """``((key, modality), (key, modality) or None)``: the images ``data_profile.json`` describes.

        The first is the one a job checks its inputs against and takes the trained
        spacing from; the second is recorded for reference. Default: the data
        section's source and target (translation).
        """
        data = self.config.data
        return (data.source_key, data.source_modality), (data.target_key, data.target_modality)

    # ---- state ----------------------------------------------------------------------------------

    def build_state(self) -> dict[str, Stateful]:
        """Non-network state, freshly initialised (checkpointed with the run, restored exactly)."""
        return {}

    def end_of_step(self, context: StepContext, stats: Mapping[str, torch.Tensor]) -> None:
        """Update the state slot from the statistics the phases of this step reported (default: nothing)."""
        return None

    # ---- validation and samples -----------------------------------------------------------------

    def validation_set(self) -> Sequence[Mapping[str, torch.Tensor]]:
        """Items to validate on (each a dict of ``(1, C, *spatial)`` tensors); none by default."""
        return []

    @abstractmethod
    def infer_outputs(
        self, networks: Mapping[str, nn.Module], item: Mapping[str, torch.Tensor], context: InferenceContext
    ) -> dict[str, torch.Tensor]:
        """Named volumes for one validation item (or the first sample of a training batch), no grad."""

    def validation_metrics(self) -> dict[str, str]:
        """``{result key: metric registry name}``: results are logged as ``val/<result key>``."""
        return {}

    @abstractmethod
    def sample_volumes(self, outputs: Mapping[str, torch.Tensor]) -> dict[str, SampleVolume]:
        """The montage rows (in order) made from :meth:`infer_outputs`'s volumes."""

    def sample_names(self) -> tuple[str, ...]:
        """The row names :meth:`sample_volumes` returns (what the contract test checks)."""
        return ()


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


def unregister_method(name: str) -> None:
    """Remove ``name`` from the registry (tests that register toy methods clean up with it)."""
    _METHODS.pop(name, None)


def known_methods() -> list[str]:
    """Sorted names of every method the package provides (imports the method modules to find them)."""
    package = importlib.import_module("medgan.methods")
    for module_info in pkgutil.iter_modules(package.__path__):
        if not module_info.name.startswith("_") and module_info.name not in _NOT_METHOD_MODULES:
            with contextlib.suppress(ImportError):
                importlib.import_module(f"medgan.methods.{module_info.name}")
    return sorted(_METHODS)


_NOT_METHOD_MODULES = frozenset({"base", "capabilities", "options", "translation", "image_pool"})


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


def methods_with_option(key: str) -> list[str]:
    """Known methods whose options model has a field named ``key`` at any depth (for error hints)."""
    owners = []
    for name in known_methods():
        if key in _field_names(_METHODS[name].options_model):
            owners.append(name)
    return owners


def _field_names(model: type[StrictModel]) -> set[str]:
    names: set[str] = set()
    for field_name, info in model.model_fields.items():
        names.add(field_name)
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, StrictModel):
            names |= _field_names(annotation)
    return names
