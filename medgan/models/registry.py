"""The network registry: networks are found by name from config.

A config names a network as ``{"name": "unet3d", "channels": [16, 32, 64], ...}``;
:func:`build_network` looks the name up and passes the remaining keys to the
class constructor. Registering by decorator keeps the lookup a dictionary, not an
if-chain, and lets a new network join by importing its module.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
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
    if not isinstance(spec, Mapping) or "name" not in spec:
        raise ConfigError(
            f"a network spec must be a mapping with a 'name' key, got {spec!r}",
            fix=f"write e.g. {{name: unet3d, ...}}; known networks: {', '.join(known_networks())}",
        )
    kwargs = dict(spec)
    name = kwargs.pop("name")
    network_class = get_network_class(name)
    signature = inspect.signature(network_class.__init__)
    valid_args = [arg for arg in signature.parameters if arg != "self"]
    try:
        signature.bind(None, **kwargs)
    except TypeError as err:
        raise ConfigError(
            f"network {name!r}: {err}",
            fix=f"valid arguments of {name!r} are: {', '.join(valid_args)}",
        ) from None
    try:
        return network_class(**kwargs)
    except (TypeError, ValueError, AssertionError) as err:
        raise ConfigError(
            f"network {name!r} rejected its arguments {kwargs!r}: {err}",
            fix=f"check the values of: {', '.join(valid_args)}",
        ) from err
