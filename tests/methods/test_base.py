"""The method registry finds methods by name and explains unknown names; phases validate themselves."""

from __future__ import annotations

import pytest

from medgan.errors import ConfigError
from medgan.methods import GanMethod, Phase, get_method, known_methods, register_method


def test_get_method_imports_method_module_on_first_use() -> None:
    method_class = get_method("pix2pix")
    assert issubclass(method_class, GanMethod)
    assert method_class.name == "pix2pix" and method_class.pairing == "paired"


def test_unknown_method_is_config_error_listing_known_ones() -> None:
    with pytest.raises(ConfigError) as caught:
        get_method("pix3pix")
    assert "pix3pix" in str(caught.value) and "pix2pix" in str(caught.value)
    assert "pix2pix" in known_methods()


def test_name_taken_by_another_class_is_refused() -> None:
    with pytest.raises(ValueError, match="already registered"):

        @register_method("pix2pix")
        class Impostor(GanMethod):  # noqa: F841 - registration is the point
            pass


def test_phase_interval_and_validation() -> None:
    regulariser = Phase("D_reg", trains=("D",), interval=4, lr_key="D")
    assert [step for step in range(10) if regulariser.is_due(step)] == [0, 4, 8]
    assert regulariser.optimizer_key == "D" and Phase("G", trains=("G",)).optimizer_key == "G"
    with pytest.raises(ValueError):
        Phase("G", trains=())
    with pytest.raises(ValueError):
        Phase("G", trains=("G",), interval=0)
