"""Lesion shape model: features of known shapes, fit -> sample -> fit recovers sizes, placement rules, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from medgan.data.lesion_shapes import (
    LesionShapeModel,
    Spread,
    allowed_region,
    fit_shape_model,
    lesion_features,
    sample_lesion_mask,
)
from medgan.errors import ConfigError, InputError

SPACING = (2.0, 2.0, 2.0)


def ellipsoid(shape: tuple[int, int, int], semi_voxels: tuple[float, float, float]) -> np.ndarray:
    grids = np.meshgrid(*[np.arange(n) - (n - 1) / 2 for n in shape], indexing="ij")
    return (sum((g / s) ** 2 for g, s in zip(grids, semi_voxels, strict=True)) <= 1.0).astype(np.uint8)


def test_features_of_an_ellipsoid_and_a_second_lesion() -> None:
    mask = ellipsoid((40, 40, 40), (12, 6, 6))
    mask[2:4, 2:4, 2:4] = 1  # a small second lesion
    body = np.ones_like(mask)
    labels = np.full(mask.shape, 7)
    labels[:, :, :20] = 6
    first, second = lesion_features(mask, SPACING, body_mask=body, tissue_labels=labels)
    expected_ml = 4 / 3 * math.pi * 12 * 6 * 6 * 8 / 1000
    assert first.volume_ml == pytest.approx(expected_ml, rel=0.03)
    assert first.elongation == pytest.approx(2.0, rel=0.05)
    # a 2:1 prolate spheroid has 1.077x the surface of the sphere of its volume; marching cubes adds the same
    # staircase excess to both, so compare with a voxelised sphere measured the same way
    (sphere,) = lesion_features(ellipsoid((40, 40, 40), (8, 8, 8)), SPACING)
    assert first.irregularity == pytest.approx(1.077 * sphere.irregularity, rel=0.03)
    assert first.depth_mm == pytest.approx(20 * 2.0, abs=2.1)  # centre to the nearest face of the box
    assert set(first.host_labels) == {6, 7} and second.volume_ml == pytest.approx(8 * 8 / 1000)
    assert second.elongation == 1.0  # 8 voxels: a cube, round


def test_mask_on_another_grid_is_an_input_error_naming_the_file() -> None:
    with pytest.raises(InputError, match="shape") as caught:
        lesion_features(np.zeros((4, 4, 4)), SPACING, body_mask=np.zeros((5, 5, 5)), source="case7/mask.nii.gz")
    assert "case7" in str(caught.value)


def known_model(mean_log_ml: float = math.log(3.0), sd: float = 0.4) -> LesionShapeModel:
    return LesionShapeModel(
        lesions=100,
        log_volume_ml=Spread(mean_log_ml, sd, mean_log_ml - 3 * sd, mean_log_ml + 3 * sd),
        log_elongation=Spread(math.log(1.5), 0.1, 0.0, 1.0),
        irregularity=Spread(1.15, 0.05, 1.0, 1.4),
        depth_mm=Spread(30.0, 5.0, 10.0, 50.0),
        host_labels={7: 1.0},
        lesions_per_case={1: 1.0},
    )


def test_fitting_sampled_masks_recovers_their_size_and_shape_distribution() -> None:
    model = known_model()
    region = np.ones((48, 48, 48), dtype=bool)
    rng = np.random.default_rng(0)
    masks = [sample_lesion_mask(model, region, SPACING, rng) for _ in range(40)]
    refit = fit_shape_model([lesion_features(mask, SPACING) for mask in masks])
    assert refit.lesions == 40
    assert refit.log_volume_ml.mean == pytest.approx(model.log_volume_ml.mean, abs=0.15)
    assert refit.log_volume_ml.sd == pytest.approx(model.log_volume_ml.sd, abs=0.12)
    assert math.exp(refit.log_elongation.mean) == pytest.approx(1.5, rel=0.2)
    assert refit.irregularity.mean == pytest.approx(model.irregularity.mean, abs=0.05)


def test_sampled_volume_is_the_drawn_volume_and_stays_in_the_allowed_region() -> None:
    labels = np.zeros((40, 40, 40), dtype=np.int16)
    labels[4:36, 4:36, 4:36] = 2  # body tissue
    labels[10:30, 10:30, 10:30] = 7  # host tissue
    region = allowed_region(labels > 0, SPACING, min_depth_mm=6.0, tissue_labels=labels, allowed_labels=[7])
    assert region.sum() == 20**3
    rng = np.random.default_rng(1)
    for _ in range(10):
        mask = sample_lesion_mask(known_model(), region, SPACING, rng, volume_range_ml=(2.0, 2.0))
        assert mask.dtype == np.uint8 and not (mask.astype(bool) & ~region).any()
        assert int(mask.sum()) == 250  # 2 ml of 8 mm^3 voxels, exactly
        assert len(lesion_features(mask, SPACING)) == 1  # one connected lesion


def test_placement_errors_name_the_problem() -> None:
    labels = np.zeros((20, 20, 20), dtype=np.int16)
    labels[5:15, 5:15, 5:15] = 7
    with pytest.raises(ConfigError, match="none of the allowed tissue labels"):
        allowed_region(labels > 0, SPACING, tissue_labels=labels, allowed_labels=[42])
    with pytest.raises(ConfigError, match="empty"):
        sample_lesion_mask(known_model(), np.zeros((8, 8, 8), bool), SPACING, np.random.default_rng(0))
    small_body = np.zeros((20, 20, 20), dtype=bool)
    small_body[9:11, 9:11, 9:11] = True
    with pytest.raises(ConfigError, match="could not place"):
        sample_lesion_mask(known_model(), small_body, SPACING, np.random.default_rng(0), volume_range_ml=(5.0, 6.0))
    with pytest.raises(ConfigError, match="no lesions"):
        fit_shape_model([[], []])


def test_model_json_round_trip_and_host_tissues(tmp_path) -> None:
    model = LesionShapeModel(**{**known_model().__dict__, "host_labels": {0: 0.2, 6: 0.03, 7: 0.77}})
    path = model.save(tmp_path / "shape_model.json")
    assert LesionShapeModel.load(path) == model
    assert model.host_tissues() == [7]
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(InputError, match="not a lesion shape model"):
        LesionShapeModel.load(tmp_path / "bad.json")
