"""Transform chains on tiny NIfTI volumes with LPS orientation and 1.5/2 mm voxels."""

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.transforms import RandFlipd
from scipy.ndimage import binary_erosion

from medgan.data.transforms import BODY_MASK_KEY, build_inference_transforms, build_transforms, invert_to_source
from medgan.errors import ConfigError, InputError
from medgan.io import write_nifti

SHAPE = (20, 18, 14)
AFFINE_LPS = np.array([[-1.5, 0, 0, 20.0], [0, -1.5, 0, 30.0], [0, 0, 2.0, -10.0], [0, 0, 0, 1]])


def _body_box() -> np.ndarray:
    ii, jj, kk = np.meshgrid(*[np.arange(s) for s in SHAPE], indexing="ij")
    return (abs(ii - 10) < 7) & (abs(jj - 9) < 6) & (abs(kk - 7) < 5)


@pytest.fixture
def subject(tmp_path):
    """MRI (linear ramp in the body, 0 outside), CT in HU, and 3-class labels; all on one LPS grid."""
    body = _body_box()
    ii, jj, kk = np.meshgrid(*[np.arange(s) for s in SHAPE], indexing="ij")
    mri = np.where(body, 100.0 + 5 * ii + 3 * jj + 2 * kk, 0.0).astype(np.float32)
    ct_hu = np.where(body, 40.0 + 10 * ii - 4 * kk, -1000.0).astype(np.float32)
    labels = (body.astype(np.int16) + (body & (ii > 10))).astype(np.float32)
    paths = {}
    for key, volume in {"mri": mri, "ct": ct_hu, "labels": labels}.items():
        paths[key] = str(write_nifti(volume, tmp_path / f"{key}.nii.gz", affine=AFFINE_LPS))
    return {"paths": paths, "mri": mri, "ct": ct_hu, "labels": labels, "body": body}


def test_inference_chain_gives_ras_1mm_network_range_divisible_volumes(subject):
    chain = build_inference_transforms({"mri": "mri", "ct": "ct"}, ["labels"])
    out = chain(dict(subject["paths"]))
    for key in ("mri", "ct", "labels"):
        volume = out[key]
        assert volume.ndim == 4 and volume.shape[0] == 1 and volume.dtype == torch.float32
        assert all(size % 16 == 0 for size in volume.shape[1:])
        assert nib.aff2axcodes(volume.affine.numpy()) == ("R", "A", "S")
        np.testing.assert_allclose(np.abs(np.diag(volume.affine.numpy())[:3]), 1.0, atol=1e-6)
    assert out["mri"].shape == out["ct"].shape == out["labels"].shape
    for key in ("mri", "ct"):
        assert out[key].min() >= -1.0 - 1e-6 and out[key].max() <= 1.0 + 1e-6  # resampling rounds
    assert set(np.unique(out["labels"].numpy())) == {0.0, 1.0, 2.0}  # nearest neighbour, no blends


def test_datalist_fields_named_after_an_image_key_do_not_break_resampling(subject):
    """The phantom datalist has "mri_snr" and "ct_noise_hu": MONAI's Spacingd took them for meta dicts."""
    entry = {**subject["paths"], "mri_snr": 30.5, "ct_noise_hu": 20.0, "label": 1, "subject": "s0"}
    out = build_transforms({"mri": "mri", "ct": "ct"}, ["labels"], target_spacing=[3.0, 3.0, 3.0])(entry)
    patches = out if isinstance(out, list) else [out]
    assert all(patch["mri"].shape == patch["ct"].shape for patch in patches)
    assert "mri_snr" not in patches[0]  # only the chain's own keys travel through it


def test_native_spacing_is_kept_when_target_spacing_is_none(subject):
    chain = build_inference_transforms({"mri": "mri"}, target_spacing=None, divisible_by=1)
    mri_norm = chain({"mri": subject["paths"]["mri"]})["mri"]
    np.testing.assert_allclose(np.abs(np.diag(mri_norm.affine.numpy())[:3]), [1.5, 1.5, 2.0])


def test_inverting_network_range_mri_restores_grid_and_values(subject):
    chain = build_inference_transforms({"mri": "mri"})
    out = chain({"mri": subject["paths"]["mri"]})
    restored = invert_to_source(out["mri"].detach().clone(), out, chain, "mri")

    assert tuple(restored.shape) == (1, *SHAPE)
    np.testing.assert_allclose(restored.affine.numpy(), AFFINE_LPS, atol=1e-5)
    mri = subject["mri"]
    low, high = out["mri"].meta["intensity_low"], out["mri"].meta["intensity_high"]
    # away from the body edge the ramp survives the two linear resamplings exactly
    core = binary_erosion(subject["body"], iterations=2) & (mri > low) & (mri < high)
    np.testing.assert_allclose(restored[0].numpy()[core], mri[core], atol=1e-2)
    # outside the body: clipped to the window's low edge (background), not mid-grey
    np.testing.assert_allclose(restored[0].numpy()[~subject["body"]], low, atol=1e-2)


def test_mri_to_ct_prediction_is_inverted_into_hounsfield_units(subject):
    chain = build_inference_transforms({"mri": "mri", "ct": "ct"})
    out = chain(dict(subject["paths"]))
    prediction = out["ct"].as_tensor().clone()  # a perfect "network" output in CT network range
    ct_hu = invert_to_source(prediction, out, chain, "mri", target_modality="ct")

    assert tuple(ct_hu.shape) == (1, *SHAPE)
    np.testing.assert_allclose(ct_hu.affine.numpy(), AFFINE_LPS, atol=1e-5)
    core = binary_erosion(subject["body"], iterations=2)
    np.testing.assert_allclose(ct_hu[0].numpy()[core], subject["ct"][core], atol=0.1)
    assert float(ct_hu[0].numpy()[~subject["body"]].max()) < -990.0  # air stays air outside the crop
    with pytest.raises(ConfigError, match="no fixed window"):
        invert_to_source(prediction, out, chain, "ct", target_modality="mri")


def test_training_patches_are_centred_in_the_body_and_seedable(subject):
    chain = build_transforms({"mri": "mri", "ct": "ct"}, ["labels"], patch_size=16, samples_per_volume=5)
    chain.set_random_state(7)
    patches = chain(dict(subject["paths"]))
    assert len(patches) == 5
    for patch in patches:
        assert {k: tuple(v.shape) for k, v in patch.items()} == {
            key: (1, 16, 16, 16) for key in ("mri", "ct", "labels", BODY_MASK_KEY)
        }
        assert patch[BODY_MASK_KEY][0, 8, 8, 8] == 1  # centre voxel is body
        assert patch["mri"][0, 8, 8, 8] > -0.8

    chain.set_random_state(7)
    again = chain(dict(subject["paths"]))
    other = build_transforms({"mri": "mri", "ct": "ct"}, ["labels"], patch_size=16, samples_per_volume=5)
    other.set_random_state(8)
    different = other(dict(subject["paths"]))
    assert all(torch.equal(a["ct"], b["ct"]) for a, b in zip(patches, again, strict=True))
    assert not all(torch.equal(a["ct"], b["ct"]) for a, b in zip(patches, different, strict=True))


def test_augmentation_is_off_by_default(subject):
    plain = build_transforms({"mri": "mri"})
    augmented = build_transforms({"mri": "mri"}, patch_size=16, samples_per_volume=2, augment=True)
    assert not any(isinstance(t, RandFlipd) for t in plain.transforms)
    assert any(isinstance(t, RandFlipd) for t in augmented.transforms)
    augmented.set_random_state(0)
    assert [tuple(p["mri"].shape) for p in augmented({"mri": subject["paths"]["mri"]})] == [(1, 16, 16, 16)] * 2


def test_empty_source_and_bad_arguments_raise_medgan_errors(tmp_path):
    empty = write_nifti(np.zeros(SHAPE, np.float32) - 1000.0, tmp_path / "ct.nii.gz", affine=AFFINE_LPS)
    with pytest.raises(InputError, match="ct.nii.gz.*no voxel above the body threshold"):
        build_inference_transforms({"ct": "ct"})({"ct": str(empty)})
    with pytest.raises(ConfigError, match="unknown modality"):
        build_transforms({"pet": "pet"})
    with pytest.raises(ConfigError, match="source_key"):
        build_transforms({"mri": "mri"}, source_key="ct")
    with pytest.raises(ConfigError, match="body_fraction"):
        build_transforms({"mri": "mri"}, body_fraction=0.0)
