"""The one device rule: auto / cpu / cuda / cuda:N / torch.device, and errors that say what to use."""

from __future__ import annotations

import pytest
import torch

from medgan.devices import resolve_device
from medgan.errors import ConfigError


@pytest.fixture
def no_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.fixture
def two_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend CUDA is present with two devices (nothing is allocated on them)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)


@pytest.mark.usefixtures("no_cuda")
def test_without_cuda_auto_and_cpu_give_the_cpu() -> None:
    assert resolve_device() == torch.device("cpu")
    assert resolve_device("auto", local_rank=3) == torch.device("cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")


@pytest.mark.usefixtures("no_cuda")
@pytest.mark.parametrize("requested", ["cuda", "cuda:0", torch.device("cuda", 1)])
def test_cuda_without_cuda_is_a_config_error_with_a_fix(requested: str | torch.device) -> None:
    with pytest.raises(ConfigError, match="CUDA is not available") as err:
        resolve_device(requested)
    assert err.value.fix == "use device auto or cpu"


@pytest.mark.parametrize("requested", ["gpu", "CUDA", "", "cuda:x", "mps", torch.device("meta")])
def test_unknown_devices_are_config_errors_naming_the_choices(requested: str | torch.device) -> None:
    with pytest.raises(ConfigError, match="unknown device") as err:
        resolve_device(requested)
    assert "auto, cpu, cuda or cuda:N" in err.value.fix


@pytest.mark.usefixtures("two_gpus")
def test_with_cuda_auto_and_cuda_pick_the_local_ranks_gpu() -> None:
    assert resolve_device() == torch.device("cuda", 0)
    assert resolve_device("auto", local_rank=1) == torch.device("cuda", 1)
    assert resolve_device("auto", local_rank=3) == torch.device("cuda", 1)  # more ranks than GPUs wrap round
    assert resolve_device("cuda", local_rank=2) == torch.device("cuda", 0)
    assert resolve_device(torch.device("cuda"), local_rank=1) == torch.device("cuda", 1)
    assert resolve_device("cpu", local_rank=1) == torch.device("cpu")


@pytest.mark.usefixtures("two_gpus")
def test_with_cuda_an_explicit_index_is_kept_and_checked() -> None:
    assert resolve_device("cuda:1", local_rank=0) == torch.device("cuda", 1)
    assert resolve_device(torch.device("cuda", 0), local_rank=1) == torch.device("cuda", 0)
    with pytest.raises(ConfigError, match="has 2 CUDA device") as err:
        resolve_device("cuda:2")
    assert "cuda:1" in err.value.fix

