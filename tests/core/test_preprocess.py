"""Measured patterns onto a model's grid: wavelengths, cropping, smoothing, backgrounds."""

from __future__ import annotations

import numpy as np
import pytest

from core.grid import CU_KA, DEFAULT_GRID, WAVELENGTHS, TwoThetaGrid, d_to_two_theta
from core.preprocess import (
    BACKGROUND_METHODS,
    Preprocessed,
    Preprocessing,
    find_peaks,
    to_grid,
)
from core.readers import MeasuredPattern, PatternReadError

GRID = DEFAULT_GRID
ANGLES = GRID.start + GRID.step * np.arange(GRID.size)


def profile_pattern(peaks, start=5.0, stop=90.0, step=0.01, width=0.06, baseline=None,
                    noise=0.0, wavelength=None, name="synthetic.xy") -> MeasuredPattern:
    """Gaussian peaks (centre, height) plus an optional baseline function of 2θ."""
    tt = np.arange(start, stop + step / 2, step)
    y = sum(h * np.exp(-0.5 * ((tt - c) / width) ** 2) for c, h in peaks) + 0.0 * tt
    if baseline is not None:
        y = y + baseline(tt)
    if noise:
        y = y + np.random.default_rng(0).normal(0, noise, tt.size)
    return MeasuredPattern(name, tt, y, wavelength, None, {}, "xy")


def check_profile(result: Preprocessed) -> None:
    assert result.profile.dtype == np.float32 and result.profile.shape == (GRID.size,)
    assert np.isfinite(result.profile).all()
    assert result.profile.min() >= 0 and result.profile.max() == pytest.approx(1.0)


def peak_angle(profile: np.ndarray) -> float:
    return float(ANGLES[np.argmax(profile)])


def test_same_wavelength_keeps_peak_positions():
    for step in (0.01, 0.04, 0.1):  # finer than, equal to and coarser than the grid
        pattern = profile_pattern([(31.7, 100.0), (45.45, 60.0)], step=step, width=0.1)
        result = to_grid(pattern, GRID)
        check_profile(result)
        assert peak_angle(result.profile) == pytest.approx(31.7, abs=GRID.step)
        assert result.coverage == pytest.approx((5.0, 90.0), abs=GRID.step)


def test_mo_pattern_lands_at_cu_positions():
    mo, cu = WAVELENGTHS["MoKa"], CU_KA
    at_mo = float(d_to_two_theta(2.0, mo))
    expected = float(d_to_two_theta(2.0, cu))
    pattern = profile_pattern([(at_mo, 100.0)], start=5.0, stop=60.0, wavelength=mo)
    result = to_grid(pattern, GRID, model_wavelength=cu)
    check_profile(result)
    assert peak_angle(result.profile) == pytest.approx(expected, abs=GRID.step)
    # Mo angles beyond what Cu can reach are dropped; the lowest Mo angle (5°) moves up.
    low = float(d_to_two_theta(mo / (2 * np.sin(np.radians(2.5))), cu))
    assert np.isfinite(result.measured_two_theta).all()
    assert result.measured_two_theta.size < pattern.two_theta.size
    assert result.coverage[0] == pytest.approx(low, abs=GRID.step)
    assert np.all(result.profile[ANGLES < low - GRID.step] == 0)
    # The wavelength argument overrides a pattern that does not say.
    unknown = profile_pattern([(at_mo, 100.0)], start=5.0, stop=60.0, wavelength=None)
    assert peak_angle(to_grid(unknown, GRID, wavelength=mo).profile) == \
        pytest.approx(expected, abs=GRID.step)
    # Without either, Cu Kα is assumed and nothing moves.
    assert peak_angle(to_grid(unknown, GRID).profile) == pytest.approx(at_mo, abs=GRID.step)


def test_zero_outside_measured_range():
    pattern = profile_pattern([(30.0, 10.0), (40.0, 5.0)], start=20.0, stop=50.0,
                              baseline=lambda t: 100.0 + 2.0 * (t - 20.0))
    result = to_grid(pattern, GRID)
    check_profile(result)
    assert result.coverage == pytest.approx((20.0, 50.0), abs=GRID.step)
    outside = (ANGLES < 20.0 - 1e-6) | (ANGLES > 50.0 + 1e-6)
    assert np.all(result.profile[outside] == 0.0)
    # Only the lowest measured point (the start of the rising baseline) scales to 0.
    assert np.all(result.profile[~outside][1:] > 0.0)


def test_no_data_in_range_names_the_file():
    pattern = profile_pattern([(120.0, 10.0)], start=100.0, stop=140.0, name="high.xy")
    with pytest.raises(PatternReadError, match="^high.xy: no data inside the model's 2θ range"):
        to_grid(pattern, GRID)


@pytest.mark.parametrize("method", [m for m in BACKGROUND_METHODS if m != "none"])
def test_background_methods_remove_sloped_baseline(method):
    peaks = [(20.0, 800.0), (33.0, 1000.0), (47.0, 500.0), (61.0, 700.0), (75.0, 400.0)]
    pattern = profile_pattern(peaks, baseline=lambda t: 200.0 + 5.0 * t, noise=3.0)
    plain = to_grid(pattern, GRID)
    cleaned = to_grid(pattern, GRID, preprocessing=Preprocessing(background=method))
    check_profile(cleaned)
    assert cleaned.background.shape == pattern.two_theta.shape
    assert np.all(plain.background == 0)
    between = (ANGLES > 80) & (ANGLES < 89)  # no peaks there, the slope is highest
    assert np.median(plain.profile[between]) > 0.3
    assert np.median(cleaned.profile[between]) < 0.05
    assert peak_angle(cleaned.profile) == pytest.approx(33.0, abs=GRID.step)


def test_smoothing_reduces_noise():
    pattern = profile_pattern([(30.0, 100.0)], noise=5.0, baseline=lambda t: 50 + 0 * t)
    rough = to_grid(pattern, GRID).profile
    for window in (11, 12):  # even windows are widened to odd
        smooth = to_grid(pattern, GRID, preprocessing=Preprocessing(smoothing=window)).profile
        quiet = (ANGLES > 50) & (ANGLES < 80)
        assert np.std(smooth[quiet]) < np.std(rough[quiet])
        assert peak_angle(smooth) == pytest.approx(30.0, abs=GRID.step)


def test_crop():
    pattern = profile_pattern([(15.0, 100.0), (30.0, 50.0), (60.0, 80.0)])
    result = to_grid(pattern, GRID, preprocessing=Preprocessing(two_theta_range=(20.0, 40.0)))
    check_profile(result)
    assert result.coverage == pytest.approx((20.0, 40.0), abs=GRID.step)
    assert result.measured_two_theta.min() >= 20.0 and result.measured_two_theta.max() <= 40.0
    assert np.all(result.profile[(ANGLES < 19.99) | (ANGLES > 40.01)] == 0)
    assert peak_angle(result.profile) == pytest.approx(30.0, abs=GRID.step)


def test_stick_kinds_render():
    sticks = np.array([18.0, 31.7, 45.45, 56.5]), np.array([10.0, 100.0, 55.0, 20.0])
    for kind in ("dif", "cif"):
        pattern = MeasuredPattern(f"ref.{kind}", *sticks, None, 225, {}, kind)
        result = to_grid(pattern, GRID)
        check_profile(result)
        assert result.coverage == (GRID.start, GRID.stop)
        assert np.all(result.background == 0)
        found = find_peaks(result.profile, GRID)
        for position in sticks[0]:
            assert np.min(np.abs(found - position)) <= GRID.step
    far = MeasuredPattern("far.dif", np.array([120.0, 130.0]), np.array([1.0, 2.0]), kind="dif")
    with pytest.raises(PatternReadError, match="^far.dif: "):
        to_grid(far, GRID)


def test_other_grid_and_find_peaks():
    grid = TwoThetaGrid(10.0, 60.0, 0.02)
    pattern = profile_pattern([(25.0, 100.0), (42.0, 40.0)], width=0.05)
    result = to_grid(pattern, grid)
    assert result.profile.shape == (grid.size,)
    np.testing.assert_allclose(find_peaks(result.profile, grid), [25.0, 42.0], atol=grid.step)


def test_preprocessing_options_round_trip_and_validate():
    options = Preprocessing(background="snip", smoothing=7, two_theta_range=(10, 70))
    assert Preprocessing.from_dict(options.to_dict()) == options
    assert Preprocessing.from_dict({}) == Preprocessing()
    assert Preprocessing().to_dict() == {"background": "none", "smoothing": 0,
                                         "two_theta_range": None}
    with pytest.raises(ValueError):
        Preprocessing(background="rolling-ball")
    with pytest.raises(ValueError):
        Preprocessing(smoothing=-1)
    with pytest.raises(ValueError):
        Preprocessing(two_theta_range=(50, 20))
