"""Translating one file lands on the file's exact grid, in physical units."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from inference_inputs import AWKWARD_AFFINE, head_like_mri, save_nifti

from medgan.config.schema import ExperimentConfig
from medgan.data import get_preset
from medgan.errors import InputError
from medgan.inference import SlidingWindowSettings, VolumeTranslator
from medgan.models import build_network


def tiny_generator() -> torch.nn.Module:
    torch.manual_seed(0)
    spec = {"name": "unet3d", "channels": [4, 8], "strides": [2], "num_res_units": 0}
    return build_network(spec).eval()


def test_output_has_input_shape_affine_and_hu_range(awkward_mri: Path) -> None:
    translator = VolumeTranslator(
        tiny_generator(),
        source_modality="mri",
        target_modality="ct",
        target_spacing=(1.0, 1.0, 1.0),
        window=SlidingWindowSettings(roi_size=(16, 16, 16), overlap=0.25),
    )
    ct_hu = translator(awkward_mri)
    assert tuple(ct_hu.shape) == (1, 23, 30, 17)
    np.testing.assert_array_equal(ct_hu.affine.numpy(), nib.load(str(awkward_mri)).affine)
    np.testing.assert_allclose(ct_hu.affine.numpy(), AWKWARD_AFFINE, atol=1e-6)
    assert ct_hu.dtype == torch.float32 and torch.isfinite(ct_hu).all()
    assert float(ct_hu.min()) >= -1024.0 and float(ct_hu.max()) <= 3071.0
    assert float(ct_hu.std()) > 1.0  # the network's output, not a constant fill


def test_identity_translation_at_native_spacing_is_exact(awkward_mri: Path) -> None:
    """With no resampling every step is exactly invertible: out = CT.from_network(MRI.to_network(in))."""
    translator = VolumeTranslator(
        lambda batch: batch,
        source_modality="mri",
        target_modality="ct",
        target_spacing=None,
        window=SlidingWindowSettings(roi_size=(16, 16, 16), overlap=0.5),
    )
    ct_hu = translator(awkward_mri)
    mri = torch.from_numpy(np.asarray(nib.load(str(awkward_mri)).dataobj, dtype=np.float32))
    expected = get_preset("ct").from_network(get_preset("mri").to_network(mri))
    torch.testing.assert_close(ct_hu[0].as_tensor(), expected, atol=0.05, rtol=0)


def test_from_config_follows_the_run_data_section(tmp_path: Path) -> None:
    config = ExperimentConfig.model_validate(
        {
            "data": {"source_key": "t1", "spacing": [2.0, 2.0, 2.0], "patch_size": [16, 16, 16]},
            "model": {"discriminator": {"name": "patchgan3d", "channels": 4, "num_layers_d": 2}},
            "inference": {"roi_size": [16, 16, 16], "overlap": 0.25, "sw_batch_size": 1},
        }
    )
    translator = VolumeTranslator.from_config(tiny_generator(), config)
    assert translator.source_key == "t1" and translator.window.roi_size == (16, 16, 16)
    affine = np.diag([1.0, 1.0, 1.0, 1.0])
    path = save_nifti(tmp_path / "iso.nii.gz", head_like_mri((20, 18, 22), seed=3), affine)
    ct_hu = translator(path)
    assert tuple(ct_hu.shape) == (1, 20, 18, 22)
    np.testing.assert_array_equal(ct_hu.affine.numpy(), affine)


def test_empty_volume_is_an_input_error(tmp_path: Path) -> None:
    path = save_nifti(tmp_path / "empty.nii.gz", np.zeros((16, 16, 16), np.float32), AWKWARD_AFFINE)
    translator = VolumeTranslator(
        lambda batch: batch, source_modality="mri", target_modality="ct", window=SlidingWindowSettings()
    )
    with pytest.raises(InputError):
        translator(path)
