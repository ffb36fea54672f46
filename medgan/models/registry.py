"""The network registry: networks are found by name from config.

A config names a network as ``{"name": "unet3d", "channels": [16, 32, 64], ...}``;
:func:`build_network` looks the name up and passes the remaining keys to the
class constructor. Registering by decorator keeps the lookup a dictionary, not an
if-chain, and lets a new network join by importing its module.

Every network also states the smallest spatial input it accepts, as an
:class:`InputRequirement` returned by its classmethod ``input_requirement(**kwargs)``
(derived from its layer arithmetic, not a trial forward pass), so a config check
(:func:`check_input_size`) can refuse a patch size that would only crash deep inside
torch, e.g. instance norm on a 1-voxel map. A network may also offer a classmethod
``input_size_alternatives(**kwargs)``: argument overrides, mildest first, that make it
accept smaller inputs (fewer layers, fewer strides); the check suggests the first
that fits.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from torch import nn

from medgan.errors import ConfigError

NetworkClass = TypeVar("NetworkClass", bound=type[nn.Module])

_NETWORKS: dict[str, type[nn.Module]] = {}


def register_network(name: str) -> Callable[[NetworkClass], NetworkClass]:
    """Register an ``nn.Module`` class under ``name`` so configs can build it by that name.

    Raises ``ValueError`` if the name is already taken by a different class: two
    networks answering to one name would make configs ambiguous.
    """

    def decorate(network_class: NetworkClass) -> NetworkClass:
        existing = _NETWORKS.get(name)
        if existing is not None and existing is not network_class:
            raise ValueError(
                f"network name {name!r} is already registered to {existing.__module__}.{existing.__qualname__}"
            )
        _NETWORKS[name] = network_class
        return network_class

    return decorate


def known_networks() -> list[str]:
    """Return the registered network names, sorted (for error messages and docs)."""
    return sorted(_NETWORKS)


def get_network_class(name: str) -> type[nn.Module]:
    """Return the class registered under ``name``; unknown names raise ``ConfigError`` listing the known ones."""
    try:
        return _NETWORKS[name]
    except KeyError:
        raise ConfigError(
            f"unknown network {name!r}",
            fix=f"use one of: {', '.join(known_networks())}",
        ) from None


def network_arguments(name: str) -> list[str]:
    """Return the constructor argument names the network ``name`` accepts."""
    signature = inspect.signature(get_network_class(name).__init__)
    return [arg for arg in signature.parameters if arg != "self"]


def build_network(spec: Mapping[str, Any]) -> nn.Module:
    """Build the network described by ``spec = {"name": ..., **constructor kwargs}``.

    Unknown names, unknown or missing arguments, and values the constructor
    rejects all raise :class:`~medgan.errors.ConfigError` naming the network, the
    problem and the valid choices, so a typo in a YAML file is caught before any
    training starts.
    """
    name, network_class, kwargs = _parse_spec(spec)
    try:
        return network_class(**kwargs)
    except (TypeError, ValueError, AssertionError) as err:
        raise ConfigError(
            f"network {name!r} rejected its arguments {kwargs!r}: {err}",
            fix=f"check the values of: {', '.join(network_arguments(name))}",
        ) from err


@dataclass(frozen=True)
class InputRequirement:
    """The spatial input sizes a network accepts: every edge >= ``min_size`` and a multiple of ``multiple``.

    Edges are in voxels, per spatial axis (D, H, W each). ``multiple=1`` means any
    edge length. The rule is per axis, so it is exact for cubic inputs and on the
    safe side for anisotropic ones (a normalised map of 1 x 1 x 2 voxels would
    still work, but the rule asks for 2 on every axis).
    """

    min_size: int
    multiple: int = 1

    def __post_init__(self) -> None:
        if self.min_size < 1 or self.multiple < 1:
            raise ValueError(f"min_size and multiple must be >= 1, got {self.min_size} and {self.multiple}")

    def accepts(self, size: Sequence[int]) -> bool:
        """Whether every edge of ``size`` is at least ``min_size`` and a multiple of ``multiple``."""
        return all(edge >= self.min_size and edge % self.multiple == 0 for edge in size)

    def smallest_accepted(self, size: Sequence[int]) -> list[int]:
        """The smallest accepted size that is at least ``size`` on every axis (what to grow a patch to)."""
        return [math.ceil(max(edge, self.min_size) / self.multiple) * self.multiple for edge in size]


def smallest_conv_input(min_output: int, kernel_size: int, stride: int = 1, padding: int = 0) -> int:
    """The smallest input edge for which a conv / pool layer's output edge is at least ``min_output``.

    Torch's conv and pool layers (dilation 1, no ceil mode) give an output edge of
    ``floor((n + 2 * padding - kernel_size) / stride) + 1``; that is ``>= t`` exactly
    when ``n >= stride * (t - 1) + kernel_size - 2 * padding``. Networks walk this
    back from their last layer to state their :class:`InputRequirement`.
    """
    return max(1, stride * (min_output - 1) + kernel_size - 2 * padding)


def normalised_min_edge(norm: Any) -> int:
    """Smallest edge a feature map may have where ``norm`` (a MONAI norm name / tuple, or None) normalises it.

    Instance norm computes statistics over one sample's spatial voxels, so torch
    refuses a 1-voxel map ("Expected more than 1 spatial element when training").
    Batch norm only needs more than one value per channel over the whole batch,
    so a 1-voxel map passes with batch size 2 and fails with 1; the requirement
    does not know the batch size, so every normalisation is held to the instance
    norm rule (2 voxels per edge), exact for batch size 1. ``None`` (no
    normalisation) needs only 1 voxel.
    """
    return 1 if norm is None else 2


def input_requirement(spec: Mapping[str, Any]) -> InputRequirement:
    """The :class:`InputRequirement` of the network described by ``spec = {"name": ..., **kwargs}``.

    Calls the network class's classmethod ``input_requirement`` with the spec's
    constructor arguments, missing ones filled with the constructor's defaults, so
    the answer matches what :func:`build_network` would build. A class without the
    classmethod accepts any size (``InputRequirement(1, 1)``). A bad spec (no name,
    unknown name, unknown argument) raises :class:`~medgan.errors.ConfigError`.
    """
    name, network_class, kwargs = _parse_spec(spec)
    return _requirement_of(name, network_class, _with_defaults(network_class, kwargs))


def check_input_size(spec: Mapping[str, Any], size: Sequence[int], *, spec_key: str, size_key: str) -> None:
    """Raise :class:`~medgan.errors.ConfigError` unless the network ``spec`` accepts spatial ``size``.

    ``spec_key`` and ``size_key`` are where the two values live in the config (e.g.
    ``model.discriminator`` and ``data.patch_size``), so the message points at both
    and its fix names the concrete change: the smallest accepted size, or the
    network change (fewer layers / strides, from the network's
    ``input_size_alternatives``) under which ``size`` itself fits. Checking this
    at config time replaces a crash deep inside torch after the run has started.
    """
    name, network_class, kwargs = _parse_spec(spec)
    arguments = _with_defaults(network_class, kwargs)
    requirement = _requirement_of(name, network_class, arguments)
    size = [int(edge) for edge in size]
    if requirement.accepts(size):
        return
    needs = f"every edge >= {requirement.min_size} voxels"
    if requirement.multiple > 1:
        needs += f" and a multiple of {requirement.multiple}"
    too_small = [edge for edge in size if edge < requirement.min_size]
    not_multiple = [edge for edge in size if edge % requirement.multiple]
    reasons = []
    if too_small:
        reasons.append(f"{_edges(too_small)} below {requirement.min_size}")
    if not_multiple:
        reasons.append(f"{_edges(not_multiple)} not a multiple of {requirement.multiple}")
    suggested = requirement.smallest_accepted(size)
    if requirement.multiple > 1:
        fixes = [f"set {size_key} to {suggested} (or larger multiples of {requirement.multiple})"]
    else:
        fixes = [f"set {size_key} to at least {suggested}"]
    alternative = _fitting_alternative(network_class, arguments, size)
    if alternative:
        changes = " and ".join(f"{spec_key}.{key} to {_as_config_value(value)}" for key, value in alternative.items())
        fixes.append(f"set {changes}")
    raise ConfigError(
        f"network {name!r} ({spec_key}) cannot take {size_key}={size}: it needs {needs} ({'; '.join(reasons)})",
        fix=", or ".join(fixes),
    )


def _parse_spec(spec: Mapping[str, Any]) -> tuple[str, type[nn.Module], dict[str, Any]]:
    """Split a spec into (name, class, constructor kwargs), checking the kwargs against the constructor."""
    if not isinstance(spec, Mapping) or "name" not in spec:
        raise ConfigError(
            f"a network spec must be a mapping with a 'name' key, got {spec!r}",
            fix=f"write e.g. {{name: unet3d, ...}}; known networks: {', '.join(known_networks())}",
        )
    kwargs = dict(spec)
    name = kwargs.pop("name")
    if not isinstance(name, str):
        raise ConfigError(
            f"a network name must be a string, got {name!r}",
            fix=f"use one of: {', '.join(known_networks())}",
        )
    network_class = get_network_class(name)
    signature = inspect.signature(network_class.__init__)
    try:
        signature.bind(None, **kwargs)
    except TypeError as err:
        raise ConfigError(
            f"network {name!r}: {err}",
            fix=f"valid arguments of {name!r} are: {', '.join(network_arguments(name))}",
        ) from None
    return name, network_class, kwargs


def _with_defaults(network_class: type[nn.Module], kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """``kwargs`` plus the constructor's default for every keyword argument the spec leaves out."""
    arguments: dict[str, Any] = {}
    for parameter in list(inspect.signature(network_class.__init__).parameters.values())[1:]:
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        if parameter.default is not parameter.empty:
            arguments[parameter.name] = parameter.default
    arguments.update(kwargs)
    return arguments


def _requirement_of(name: str, network_class: type[nn.Module], arguments: Mapping[str, Any]) -> InputRequirement:
    """Ask the class for its requirement; classes that state none accept any size."""
    method = getattr(network_class, "input_requirement", None)
    if method is None:
        return InputRequirement(1, 1)
    try:
        return method(**arguments)
    except (TypeError, ValueError) as err:
        raise ConfigError(
            f"network {name!r}: cannot work out its input size from {dict(arguments)!r}: {err}",
            fix=f"check the values of: {', '.join(network_arguments(name))}",
        ) from err


def _fitting_alternative(
    network_class: type[nn.Module], arguments: Mapping[str, Any], size: Sequence[int]
) -> dict[str, Any] | None:
    """The mildest of the class's ``input_size_alternatives`` under which it accepts ``size``, if any."""
    alternatives = getattr(network_class, "input_size_alternatives", None)
    if alternatives is None:
        return None
    for overrides in alternatives(**arguments):
        try:
            if network_class.input_requirement(**{**arguments, **overrides}).accepts(size):
                return dict(overrides)
        except (TypeError, ValueError):
            continue
    return None


def _edges(edges: Sequence[int]) -> str:
    """'edge 16' / 'edges 16, 20' for messages."""
    unique = sorted(set(edges))
    return ("edge " if len(unique) == 1 else "edges ") + ", ".join(str(edge) for edge in unique)


def _as_config_value(value: Any) -> str:
    """Render a suggested argument value as it would be written in YAML (tuples as lists)."""
    if isinstance(value, tuple | list):
        return str(list(value))
    return repr(value) if isinstance(value, str) else str(value)
