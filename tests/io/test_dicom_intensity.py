"""The 16-bit storage rule for written DICOM pixels (medgan.io.intensity)."""

from __future__ import annotations

import numpy as np

from medgan.io.intensity import quantize_for_dicom


def test_integral_ct_is_stored_exactly_with_unit_slope() -> None:
    hu = np.array([-1024.0, 0.0, 40.0, 3071.0])
    stored = quantize_for_dicom(hu, "CT")
    assert stored.values.dtype == np.int16 and stored.slope_ds == "1" and float(stored.intercept_ds) == 0
    np.testing.assert_array_equal(stored.values, hu)


def test_integral_values_beyond_int16_use_an_integer_intercept() -> None:
    values = np.array([40000.0, 50000.0, 70000.0])
    stored = quantize_for_dicom(values, "CT")
    assert stored.slope_ds == "1" and stored.precision == 0.0
    np.testing.assert_array_equal(stored.values * 1.0 + float(stored.intercept_ds), values)


def test_fractional_values_round_trip_within_half_a_slope() -> None:
    values = np.random.default_rng(3).uniform(-1000.5, 2000.25, size=500)
    stored = quantize_for_dicom(values, "CT")
    restored = stored.values * float(stored.slope_ds) + float(stored.intercept_ds)
    assert len(stored.slope_ds) <= 16 and len(stored.intercept_ds) <= 16
    assert np.max(np.abs(restored - values)) <= stored.precision
    assert stored.precision < 0.03


def test_mr_uses_unsigned_storage_unless_negative() -> None:
    assert quantize_for_dicom(np.array([0.0, 4.5, 900.0]), "MR").values.dtype == np.uint16
    assert quantize_for_dicom(np.array([-3.0, 4.0]), "MR").values.dtype == np.int16
