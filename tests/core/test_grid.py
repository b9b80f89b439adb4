"""The 2θ grid and Bragg's-law conversions."""

from __future__ import annotations

import numpy as np
import pytest

from core.grid import (
    CU_KA,
    DEFAULT_GRID,
    WAVELENGTHS,
    TwoThetaGrid,
    convert_wavelength,
    d_to_two_theta,
    two_theta_to_d,
)


def test_default_grid_size_and_angles():
    assert DEFAULT_GRID.size == 2126
    angles = DEFAULT_GRID.angles
    assert angles.shape == (2126,)
    assert angles[0] == pytest.approx(5.0)
    assert angles[-1] == pytest.approx(90.0, abs=1e-4)
    np.testing.assert_allclose(np.diff(angles), 0.04, atol=1e-5)


def test_custom_grid_and_dict_round_trip():
    grid = TwoThetaGrid(10.0, 60.0, 0.5)
    assert grid.size == 101
    assert grid.angles[-1] == pytest.approx(60.0)
    assert TwoThetaGrid.from_dict(grid.to_dict()) == grid
    assert grid.to_dict() == {"start": 10.0, "stop": 60.0, "step": 0.5}


@pytest.mark.parametrize("start, stop, step", [
    (10, 5, 0.1), (5, 5, 0.1), (5, 90, 0), (5, 90, -0.1), (-1, 90, 0.1), (5, 181, 0.1),
])
def test_bad_grid_raises(start, stop, step):
    with pytest.raises(ValueError):
        TwoThetaGrid(start, stop, step)


def test_wavelength_table():
    assert set(WAVELENGTHS) == {"CuKa", "CuKa1", "MoKa", "CoKa", "FeKa", "CrKa", "AgKa"}
    assert CU_KA == pytest.approx(1.5418, abs=1e-3)
    assert WAVELENGTHS["MoKa"] == pytest.approx(0.7107, abs=1e-3)


def test_d_two_theta_round_trip():
    angles = np.linspace(5, 150, 50)
    d = two_theta_to_d(angles, CU_KA)
    assert np.all(np.diff(d) < 0)  # larger angle, smaller spacing
    np.testing.assert_allclose(d_to_two_theta(d, CU_KA), angles, rtol=1e-9)


def test_known_bragg_angle():
    # Si (111): d = 5.431 / sqrt(3) = 3.1356 Å diffracts at 28.44° with Cu Kα1.
    d = 5.431 / np.sqrt(3)
    assert float(d_to_two_theta(d, WAVELENGTHS["CuKa1"])) == pytest.approx(28.443, abs=0.005)
    assert float(two_theta_to_d(28.443, WAVELENGTHS["CuKa1"])) == pytest.approx(d, abs=1e-3)
    # The Kα1/Kα2 mean is slightly longer, so the angle is slightly larger.
    assert float(d_to_two_theta(d, CU_KA)) == pytest.approx(28.465, abs=0.005)


def test_unreachable_reflection_is_nan():
    # d < λ/2 cannot diffract.
    result = d_to_two_theta(np.array([0.5, 3.0]), CU_KA)
    assert np.isnan(result[0]) and np.isfinite(result[1])


def test_convert_wavelength_mo_to_cu():
    d = 3.1356
    two_theta_mo = d_to_two_theta(d, WAVELENGTHS["MoKa"])
    assert float(two_theta_mo) == pytest.approx(13.02, abs=0.02)
    converted = convert_wavelength(two_theta_mo, WAVELENGTHS["MoKa"], CU_KA)
    assert float(converted) == pytest.approx(float(d_to_two_theta(d, CU_KA)), abs=1e-9)
    assert float(converted) == pytest.approx(28.465, abs=0.005)
    # High Mo angles have no Cu equivalent.
    assert np.isnan(convert_wavelength(np.array([80.0]), WAVELENGTHS["MoKa"], CU_KA)[0])
