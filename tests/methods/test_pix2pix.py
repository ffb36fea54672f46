"""pix2pix builds a conditional D, computes finite losses, learns, and drops D when lambda_adv is 0."""

from __future__ import annotations

import torch

from medgan.config.schema import ExperimentConfig
from medgan.methods import get_method

TINY_MODEL = {
    "generator": {"name": "unet3d", "channels": [4, 8], "strides": [2], "num_res_units": 0},
    "discriminator": {"name": "patchgan3d", "channels": 4, "num_layers_d": 2},
}


def _method(**losses: object):  # noqa: ANN202
    config = ExperimentConfig.model_validate({"model": {**TINY_MODEL, "losses": losses}})
    return get_method("pix2pix")(config)


def _batch() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    source = torch.rand(2, 1, 16, 16, 16, generator=generator) * 2 - 1
    target = -source.clone()
    body_mask = (source > -0.5).float()
    return {"source": source, "target": target, "body_mask": body_mask}


def test_phases_networks_and_conditioned_discriminator() -> None:
    method = _method()
    networks = method.build_networks()
    assert [phase.name for phase in method.phases()] == ["G", "D"]
    assert method.ema_networks() == ("G",)
    assert networks["D"].in_channels == 2  # source and target, concatenated
    batch = _batch()
    g_loss, g_logs = method.phase_loss("G", networks, batch)
    assert "fake_target" in batch and not batch["fake_target"].requires_grad
    d_loss, d_logs = method.phase_loss("D", networks, batch)
    assert torch.isfinite(g_loss) and torch.isfinite(d_loss)
    assert g_logs["loss"] == g_loss.item() and {"l1", "adv"} <= g_logs.keys() and "loss" in d_logs
    assert method.translate(networks, batch["source"]).shape == batch["source"].shape


def test_l1_is_weighted_by_the_body_mask() -> None:
    method = _method(lambda_adv=0.0, background_l1_weight=0.0)
    networks = method.build_networks()
    batch = _batch()
    _, masked_logs = method.phase_loss("G", networks, dict(batch))
    batch_without_mask = {key: value for key, value in batch.items() if key != "body_mask"}
    _, plain_logs = method.phase_loss("G", networks, batch_without_mask)
    with torch.no_grad():
        error = (networks["G"](batch["source"]) - batch["target"]).abs()
    mask = batch["body_mask"]
    assert abs(masked_logs["l1"] - float((error * mask).sum() / mask.sum())) < 1e-5
    assert abs(plain_logs["l1"] - float(error.mean())) < 1e-5
    _, weighted_logs = _method(lambda_adv=0.0, background_l1_weight=0.25).phase_loss("G", networks, dict(batch))
    weights = mask + 0.25 * (1 - mask)
    assert abs(weighted_logs["l1"] - float((error * weights).sum() / weights.sum())) < 1e-5


def test_l1_only_unet_has_no_discriminator_and_learns() -> None:
    torch.manual_seed(0)
    method = _method(lambda_adv=0.0)
    networks = method.build_networks()
    assert set(networks) == {"G"} and [phase.name for phase in method.phases()] == ["G"]
    optimizer = torch.optim.Adam(networks["G"].parameters(), lr=1e-2)
    batch = _batch()
    losses = []
    for _ in range(8):
        optimizer.zero_grad()
        loss, logs = method.phase_loss("G", networks, dict(batch))
        loss.backward()
        optimizer.step()
        losses.append(logs["l1"])
    assert losses[-1] < 0.8 * losses[0]
