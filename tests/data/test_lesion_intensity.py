"""The procedural lesion appearance: measured, painted back at the measured contrast, nothing outside the band."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from medgan.data.lesion_intensity import (
    AppearanceModel,
    LesionAppearance,
    blend_weight,
    measure_appearance,
    paint_lesion,
)
from medgan.errors import ConfigError, InputError


def ball(shape: tuple[int, int, int], centre: tuple[int, int, int], radius: float) -> np.ndarray:
    grids = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    return sum((g - c) ** 2 for g, c in zip(grids, centre, strict=True)) <= radius**2


def two_channel_case(seed: int, lesion: np.ndarray | None) -> np.ndarray:
    """An 'MRI' (400 +- 20) and a 'CT' (30 +- 10 HU) of one tissue; the lesion -150 on MRI, +60 HU on CT."""
    rng = np.random.default_rng(seed)
    mri = 400 + 20 * rng.standard_normal((32, 32, 32))
    ct = 30 + 10 * rng.standard_normal((32, 32, 32))
    if lesion is not None:
        mri[lesion] -= 150
        ct[lesion] += 60
    return np.stack([mri, ct]).astype(np.float32)


def test_measure_then_paint_reproduces_the_contrast_in_both_channels() -> None:
    lesion = ball((32, 32, 32), (16, 16, 16), 5)
    appearance = measure_appearance(two_channel_case(0, lesion), lesion, lesion_type="mass")
    assert appearance.contrast == pytest.approx((-150, 60), abs=6)
    assert appearance.texture_ratio == pytest.approx((1.0, 1.0), abs=0.15)
    healthy = two_channel_case(1, None)
    new_mask = ball((32, 32, 32), (12, 18, 14), 4)
    painted = paint_lesion(healthy, new_mask, appearance, np.random.default_rng(0))
    remeasured = measure_appearance(painted, new_mask)
    assert remeasured.contrast[0] == pytest.approx(-150, rel=0.2) and remeasured.contrast[1] == pytest.approx(
        60, rel=0.2
    )
    changed = painted != healthy
    assert np.array_equal(changed[0], changed[1])  # one lesion, the same voxels in both channels


def test_voxels_beyond_the_band_are_copied_exactly() -> None:
    healthy = two_channel_case(2, None)
    mask = ball((32, 32, 32), (10, 20, 16), 3)
    appearance = LesionAppearance(None, (-100.0, 50.0), (-20.0, 5.0), (1.5, 1.0), 100)
    painted = paint_lesion(healthy, mask, appearance, np.random.default_rng(3))
    band = ndimage.binary_dilation(mask, structure=ndimage.generate_binary_structure(3, 1), iterations=3)
    assert np.array_equal(painted[:, ~band], healthy[:, ~band])
    assert not np.array_equal(painted[:, mask], healthy[:, mask])
    weight = blend_weight(mask)
    assert weight[~band].max() == 0.0 and weight[mask].min() == 1.0 and 0 < weight[band & ~mask].max() < 1.0
    clipped = paint_lesion(healthy, mask, appearance, np.random.default_rng(3), value_ranges=[None, (0.0, 40.0)])
    assert clipped[1][mask].max() <= 40.0


def test_model_draws_by_type_round_trips_and_refuses_bad_input(tmp_path) -> None:
    lesion = ball((32, 32, 32), (16, 16, 16), 5)
    case = two_channel_case(0, lesion)
    model = AppearanceModel(
        ("mri", "ct"),
        (measure_appearance(case, lesion, lesion_type="mass"), measure_appearance(case, lesion, lesion_type="bleed")),
    )
    assert model.draw(np.random.default_rng(0), "bleed").lesion_type == "bleed"
    assert set(model.summary()) == {"bleed", "mass", "all"}
    assert AppearanceModel.load(model.save(tmp_path / "appearance.json")) == model
    with pytest.raises(ConfigError, match="no fitted lesion of type 'cyst'"):
        model.draw(np.random.default_rng(0), "cyst")
    with pytest.raises(InputError, match="one grid"):
        measure_appearance(case, lesion[:16], source="case3")
    with pytest.raises(InputError, match="empty"):
        measure_appearance(case, np.zeros_like(lesion))
    with pytest.raises(ConfigError, match="no lesions"):
        AppearanceModel(("ct",), ())
    with pytest.raises(InputError, match="not a lesion appearance model"):
        AppearanceModel.load(tmp_path / "missing.json")
