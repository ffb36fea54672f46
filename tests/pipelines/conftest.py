"""Shared fixtures of the pipeline tests."""

import pytest


@pytest.fixture
def tiny_pix2pix_overrides() -> list[str]:
    """`--set` overrides that shrink configs/pix2pix_mri2ct.yaml to a seconds-long run on 16^3 patches."""
    return [
        "data.patch_size=[16,16,16]",
        "inference.roi_size=[16,16,16]",
        "model.generator.channels=[4,8]",
        "model.generator.strides=[2]",
        "model.discriminator.channels=4",
        "model.discriminator.num_layers_d=2",
        "train.batch_size=2",
        "data.validation_volumes=1",
        "train.ema_start_step=0",
    ]
