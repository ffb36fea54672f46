"""The inference plan: auto settings resolved from the CPU, and the path it describes is the one it runs."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from medgan.config.schema import InferenceConfig
from medgan.errors import ConfigError
from medgan.inference import InferencePlan
from medgan.precision import cpu_features, resolve_inference_precision


def test_auto_precision_follows_the_cpu_features() -> None:
    expected = "bf16" if cpu_features()["amx_bf16"] or cpu_features()["avx512_bf16"] else "fp32"
    assert resolve_inference_precision("auto", torch.device("cpu")) == expected
    assert resolve_inference_precision("fp32", torch.device("cpu")) == "fp32"
    assert resolve_inference_precision("bf16", torch.device("cpu")) == "bf16"
    with pytest.raises(ConfigError, match="precision"):
        resolve_inference_precision("fp16", torch.device("cpu"))


@pytest.mark.parametrize(
    ("flags", "precision", "name"),
    [
        ({"amx_bf16", "avx512_bf16", "avx512f", "avx2"}, "bf16", "AMX"),
        ({"avx512_bf16", "avx512f", "avx2"}, "bf16", "AVX-512 BF16"),
        ({"avx512f", "avx2"}, "fp32", "AVX-512"),
        ({"avx2"}, "fp32", "no AVX-512"),
    ],
)
def test_auto_precision_takes_bf16_only_where_the_cpu_has_it_natively(
    monkeypatch: pytest.MonkeyPatch, flags: set[str], precision: str, name: str
) -> None:
    """Emulated bf16 is far slower than fp32, native bf16 (AMX or AVX-512 BF16) 2x or more faster."""
    import medgan.precision as precision_module

    monkeypatch.setattr(
        precision_module, "cpu_features", lambda: {flag: flag in flags for flag in precision_module.CPU_FEATURE_FLAGS}
    )
    assert resolve_inference_precision("auto", torch.device("cpu")) == precision
    assert precision_module.cpu_bf16_name() == name


def test_plan_resolves_the_config_and_says_what_it_runs() -> None:
    plan = InferencePlan.from_config(
        InferenceConfig(roi_size=(32, 32, 32), context=8, precision="fp32", channels_last="auto"), "cpu"
    )
    assert plan.precision == "fp32" and plan.channels_last and plan.air_outside_body
    assert plan.window.roi_size == (32, 32, 32) and plan.window.context == 8
    text = plan.describe()
    assert "cores <= 32^3 + 8 context" in text and "fp32" in text and "channels-last" in text


@pytest.mark.parametrize(("precision", "channels_last"), [("fp32", True), ("bf16", True), ("bf16", False)])
def test_speed_settings_keep_the_answer(precision: str, channels_last: bool) -> None:
    """Memory format changes nothing; bf16 changes the output by bf16 rounding only."""
    torch.manual_seed(0)
    network = nn.Sequential(nn.Conv3d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv3d(8, 1, 3, padding=1), nn.Tanh()).eval()
    source = torch.rand(1, 24, 20, 16) * 2 - 1
    reference = InferencePlan.from_config(InferenceConfig(precision="fp32", channels_last=False), "cpu")
    plan = InferencePlan.from_config(InferenceConfig(precision=precision, channels_last=channels_last), "cpu")
    plan.prepare([network])
    output = plan.translate(source, network)
    expected = reference.translate(source, network)
    assert output.dtype == torch.float32 and output.is_contiguous()
    tolerance = 1e-5 if precision == "fp32" else 2e-2
    torch.testing.assert_close(output, expected, atol=tolerance, rtol=0)
