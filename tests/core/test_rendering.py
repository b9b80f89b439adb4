"""Sticks -> profiles (pseudo-Voigt rendering) and the report's padded stick arrays."""

from __future__ import annotations

import numpy as np
import pytest

from core.grid import DEFAULT_GRID, TwoThetaGrid
from core.rendering import (
    DEFAULT_PADDED_LENGTH,
    INPUT_TYPES,
    normalise_profiles,
    pack_peaks,
    padded_arrays,
    pseudo_voigt,
    render,
)

GRID = DEFAULT_GRID
ANGLES = GRID.angles.astype(np.float64)


def measured_fwhm(profile: np.ndarray, angles: np.ndarray = ANGLES) -> float:
    """Full width at half maximum of the single peak in ``profile``, by interpolation."""
    top = int(profile.argmax())
    half = profile[top] / 2
    left = top
    while profile[left] > half:
        left -= 1
    right = top
    while profile[right] > half:
        right += 1
    x_left = np.interp(half, [profile[left], profile[left + 1]], [angles[left], angles[left + 1]])
    x_right = np.interp(half, [profile[right], profile[right - 1]], [angles[right], angles[right - 1]])
    return float(x_right - x_left)


def test_constants():
    assert INPUT_TYPES == ("grid", "padded")
    assert DEFAULT_PADDED_LENGTH == 256


def test_pseudo_voigt_shape():
    x = np.array([0.0, 0.05, -0.05, 1.0])
    for eta in (0.0, 0.5, 1.0):
        y = pseudo_voigt(x, np.float64(0.1), np.float64(eta))
        assert y[0] == pytest.approx(1.0)
        assert y[1] == pytest.approx(0.5) and y[2] == pytest.approx(0.5)
        assert 0 <= y[3] < 0.01


@pytest.mark.parametrize("centre, fwhm, eta", [(30.0, 0.2, 0.5), (52.0, 0.1, 0.0), (70.0, 0.4, 1.0)])
def test_single_peak_position_and_width(centre, fwhm, eta):
    profile = render(np.array([[centre]]), np.array([[50.0]]), GRID, fwhm=fwhm, eta=eta)[0]
    assert profile.shape == (GRID.size,)
    assert profile.dtype == np.float32
    assert profile.max() == pytest.approx(1.0)
    assert profile.min() == pytest.approx(0.0, abs=1e-6)
    assert ANGLES[profile.argmax()] == pytest.approx(centre, abs=1e-4)
    assert measured_fwhm(profile) == pytest.approx(fwhm, rel=0.06)
    # Far from the peak the profile is flat.
    assert profile[np.abs(ANGLES - centre) > 10 * fwhm].max() < 0.01


def test_off_grid_peak_is_centred_between_points():
    centre = 30.02  # halfway between 30.00 and 30.04
    profile = render(np.array([[centre]]), np.array([[1.0]]), GRID, fwhm=0.3, eta=0.5,
                     normalise=False)[0]
    window = np.abs(ANGLES - centre) < 2
    mean = np.sum(ANGLES[window] * profile[window]) / np.sum(profile[window])
    assert mean == pytest.approx(centre, abs=0.005)


def test_area_is_proportional_to_intensity():
    tt = np.array([[25.0, 60.0], [25.0, 60.0]])
    ii = np.array([[10.0, 30.0], [20.0, 0.0]])
    profiles = render(tt, ii, GRID, fwhm=0.2, eta=0.3, normalise=False)
    first, second = (np.abs(ANGLES - c) < 5 for c in (25.0, 60.0))
    area_a = profiles[0, first].sum()
    area_b = profiles[0, second].sum()
    assert area_b / area_a == pytest.approx(3.0, rel=1e-3)
    assert profiles[1, first].sum() / area_a == pytest.approx(2.0, rel=1e-3)
    assert profiles[1, second].max() == pytest.approx(0.0, abs=1e-5)  # zero intensity = padding


def test_per_pattern_widths():
    tt = np.array([[40.0], [40.0]])
    profiles = render(tt, np.ones((2, 1)), GRID, fwhm=np.array([0.1, 0.5]), eta=np.array([0.2, 0.6]))
    assert measured_fwhm(profiles[0]) == pytest.approx(0.1, rel=0.08)
    assert measured_fwhm(profiles[1]) == pytest.approx(0.5, rel=0.05)


def test_per_peak_widths():
    tt = np.array([[20.0, 50.0, 80.0]])
    fwhm = np.array([[0.1, 0.3, 0.5]])
    profile = render(tt, np.ones((1, 3)), GRID, fwhm=fwhm, eta=0.5, normalise=False)[0]
    for centre, width in zip(tt[0], fwhm[0]):
        local = np.where(np.abs(ANGLES - centre) < 5, profile, 0)
        assert measured_fwhm(local) == pytest.approx(width, rel=0.08)
    # A stick's intensity is its peak height, whatever the width; the area grows with it.
    heights = [profile[np.abs(ANGLES - c) < 1].max() for c in tt[0]]
    assert heights == pytest.approx([1.0, 1.0, 1.0], abs=0.02)
    areas = [profile[np.abs(ANGLES - c) < 5].sum() for c in tt[0]]
    assert areas[0] < areas[1] < areas[2]


def test_nan_and_out_of_range_peaks_are_ignored():
    clean = render(np.array([[35.0]]), np.array([[7.0]]), GRID, fwhm=0.15, eta=0.4)
    messy = render(np.array([[np.nan, 35.0, 2.0, 95.0, np.inf, 45.0]]),
                   np.array([[100.0, 7.0, 100.0, 100.0, 100.0, 0.0]]), GRID, fwhm=0.15, eta=0.4)
    np.testing.assert_allclose(messy, clean, atol=1e-6)
    assert np.all(np.isfinite(messy))


def test_empty_pattern_is_all_zero():
    profile = render(np.zeros((1, 4)), np.zeros((1, 4)), GRID)
    assert profile.shape == (1, GRID.size)
    assert not profile.any()


def test_batch_rows_are_independent():
    tt = np.array([[20.0, 0.0], [30.0, 60.0]])
    ii = np.array([[1.0, 0.0], [1.0, 0.5]])
    together = render(tt, ii, GRID)
    for row in range(2):
        alone = render(tt[row:row + 1], ii[row:row + 1], GRID)
        np.testing.assert_allclose(together[row], alone[0], atol=1e-6)


def test_peak_near_grid_edge_does_not_wrap():
    grid = TwoThetaGrid(10.0, 30.0, 0.05)
    profile = render(np.array([[10.1]]), np.array([[1.0]]), grid, fwhm=0.5, eta=1.0)[0]
    assert profile[:10].max() == pytest.approx(1.0, abs=0.05)
    assert profile[-50:].max() < 0.02


def test_normalise_profiles():
    raw = np.array([[1.0, 3.0, 2.0], [0.0, 0.0, 0.0], [5.0, 5.0, 5.0]], dtype=np.float32)
    scaled = normalise_profiles(raw)
    np.testing.assert_allclose(scaled[0], [0.0, 1.0, 0.5])
    assert not scaled[1].any() and not scaled[2].any()
    assert scaled.dtype == np.float32


def test_pack_peaks_keeps_strongest():
    tt = [np.array([10.0, 20.0, 30.0, 40.0]), np.array([15.0])]
    ii = [np.array([5.0, 50.0, 1.0, 20.0]), np.array([3.0])]
    packed_t, packed_i = pack_peaks(tt, ii)
    assert packed_t.shape == (2, 4)
    np.testing.assert_array_equal(packed_i[1], [3.0, 0, 0, 0])
    top_t, top_i = pack_peaks(tt, ii, max_peaks=2)
    np.testing.assert_array_equal(top_t[0], [20.0, 40.0])  # strongest two, in 2θ order
    np.testing.assert_array_equal(top_i[0], [50.0, 20.0])


def test_padded_arrays():
    tt = [np.array([40.0, 20.0, 60.0]), np.linspace(10, 80, 300), np.array([]), np.array([45.0])]
    ii = [np.array([10.0, 40.0, 20.0]), np.ones(300), np.array([]), np.array([2.0])]
    inputs, kept = padded_arrays(tt, ii, length=256)
    assert kept.tolist() == [0, 3]  # too many peaks and no peaks are dropped
    assert inputs.shape == (2, 512)
    assert inputs.dtype == np.float32
    np.testing.assert_allclose(inputs[0, :3], np.array([20.0, 40.0, 60.0]) / 90)
    np.testing.assert_allclose(inputs[0, 256:259], [1.0, 0.25, 0.5])
    assert not inputs[0, 3:256].any() and not inputs[0, 259:].any()
    np.testing.assert_allclose(inputs[1, [0, 256]], [0.5, 1.0])
    short, kept_short = padded_arrays(tt[:1], ii[:1], length=2)
    assert short.shape == (0, 4) and kept_short.tolist() == []
