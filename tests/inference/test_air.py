"""Air is air: the source's body mask, and background written outside it by the translate path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from inference_inputs import save_nifti

from medgan.data import get_preset
from medgan.inference import InferencePlan, SlidingWindowSettings, VolumeTranslator
from medgan.inference.air import fill_outside_body, source_body_mask


def ball(shape: tuple[int, int, int], radius: float, centre: tuple[float, float, float] | None = None) -> np.ndarray:
    grid = np.stack(np.meshgrid(*[np.arange(n, dtype=np.float32) for n in shape], indexing="ij"))
    centre = centre or tuple((n - 1) / 2 for n in shape)
    return np.sqrt(sum((grid[axis] - centre[axis]) ** 2 for axis in range(3))) < radius


def test_body_mask_is_the_largest_component_with_holes_filled() -> None:
    head = ball((24, 24, 24), 8)
    cavity = ball((24, 24, 24), 3)  # a dark enclosed cavity (sinus, ventricle): still body
    speck = np.zeros_like(head)
    speck[1:3, 1:3, 1:3] = True  # a bright speck of noise in the air: not body
    source_net = torch.from_numpy(np.where(head & ~cavity | speck, 0.5, -1.0).astype(np.float32))[None]
    mask = source_body_mask(source_net, threshold=-0.8)
    assert mask.shape == source_net.shape and mask.dtype == torch.bool
    mask = mask[0].numpy()
    assert mask[cavity].all() and not mask[speck].any()
    assert mask[head].all() and not mask[~head].any()


def test_empty_source_has_an_empty_mask_and_fill_keeps_the_body() -> None:
    assert not source_body_mask(-torch.ones(1, 8, 8, 8), threshold=-0.8).any()
    volume = torch.zeros(1, 4, 4, 4)
    body = torch.zeros(1, 4, 4, 4, dtype=torch.bool)
    body[0, 1:3, 1:3, 1:3] = True
    filled = fill_outside_body(volume, body, -1000.0)
    assert float(filled[body].abs().max()) == 0.0 and bool((filled[~body] == -1000.0).all())


def test_translate_path_writes_air_outside_the_body_on_the_input_grid(tmp_path: Path) -> None:
    """Identity 'network': inside the head the output is the mapped MRI, outside it exactly -1000 HU."""
    rng = np.random.default_rng(0)
    head = ball((20, 26, 18), 7, centre=(9.0, 12.0, 8.0))
    mri = np.where(head, 400.0, 0.0) + rng.normal(0, 4, head.shape).clip(0)
    affine = np.diag([1.5, 1.0, 2.0, 1.0])
    path = save_nifti(tmp_path / "mri.nii.gz", mri.astype(np.float32), affine)
    plan = InferencePlan(SlidingWindowSettings(roi_size=(16, 16, 16), context=4), air_outside_body=True)
    translator = VolumeTranslator(lambda batch: batch, source_modality="mri", target_modality="ct", plan=plan)
    ct_hu = translator(path)[0].numpy()
    assert ct_hu.shape == head.shape
    assert (ct_hu[~head] == -1000.0).all()
    expected = get_preset("ct").from_network(get_preset("mri").to_network(torch.from_numpy(mri))).numpy()
    np.testing.assert_allclose(ct_hu[head], expected[head], atol=0.05)
    without_air = VolumeTranslator(
        lambda batch: batch, source_modality="mri", target_modality="ct", plan=InferencePlan(plan.window)
    )(path)[0].numpy()
    assert float(np.abs(without_air[~head] + 1000.0).mean()) > 10.0  # the fill is what made the air exact


def test_body_mask_equals_monai_largest_component_and_scipy_hole_filling() -> None:
    """The fast mask is the reference rule's mask, voxel for voxel, on blobby noise with many components and holes."""
    from monai.transforms.utils import get_largest_connected_component_mask
    from scipy.ndimage import binary_fill_holes, gaussian_filter

    rng = np.random.default_rng(3)
    filled_voxels, smaller_components = 0, 0
    for sigma in (1.5, 2.5):
        field = gaussian_filter(rng.normal(size=(30, 34, 26)), sigma=sigma)
        source_net = torch.from_numpy((field / np.abs(field).max()).astype(np.float32))[None]
        for quantile in (0.3, 0.7):  # mostly foreground (enclosed holes), mostly background (many blobs)
            threshold = float(np.quantile(source_net.numpy(), quantile))
            above = source_net[0] > threshold
            largest = get_largest_connected_component_mask(above).numpy()
            reference = binary_fill_holes(largest)
            np.testing.assert_array_equal(source_body_mask(source_net, threshold)[0].numpy(), reference)
            filled_voxels += int(reference.sum() - largest.sum())
            smaller_components += int(above.numpy().sum() - largest.sum())
    assert filled_voxels > 0 and smaller_components > 0  # the cases exercise both steps
