"""Peak picking for indexing: positions of noisy doublet profiles and of stick lists."""

from __future__ import annotations

import numpy as np
from pymatgen.core import Lattice, Structure

from core.grid import CU_KA, CU_KA1, CU_KA2, TwoThetaGrid
from core.peaks import pattern_peaks, pick_peaks
from core.readers import MeasuredPattern
from core.rendering import render
from core.simulation import simulate

CSCL = Structure.from_spacegroup("Pm-3m", Lattice.cubic(4.123), ["Cs", "Cl"],
                                 [[0, 0, 0], [0.5, 0.5, 0.5]])
RUTILE = Structure.from_spacegroup("P4_2/mnm", Lattice.tetragonal(4.594, 2.959), ["Ti", "O"],
                                   [[0, 0, 0], [0.3048, 0.3048, 0]])
QUARTZ = Structure.from_spacegroup("P3_221", Lattice.hexagonal(4.913, 5.405), ["Si", "O"],
                                   [[0.4697, 0, 0], [0.4135, 0.2669, 0.1191]])


def measured_profile(structure: Structure, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A Cu Kα1 + Kα2 profile at a 0.01° step with a sloping background and counting noise."""
    peaks = simulate(structure)
    grid = TwoThetaGrid(5.0, 90.0, 0.01)
    ka2 = 2 * np.degrees(np.arcsin(np.sin(np.radians(peaks.two_theta / 2)) * CU_KA2 / CU_KA1))
    positions = np.concatenate([peaks.two_theta, ka2])[None]
    heights = np.concatenate([peaks.intensity, 0.5 * peaks.intensity])[None]
    angles = grid.angles.astype(np.float64)
    signal = render(positions, heights, grid, fwhm=0.08, eta=0.4)[0] * 5000
    counts = rng.poisson(signal + 200 - angles)
    return angles, counts.astype(np.float64)


def test_peaks_of_a_noisy_doublet_profile_are_the_true_lines():
    angles, counts = measured_profile(RUTILE, np.random.default_rng(0))
    picked = pattern_peaks(MeasuredPattern("rutile.xy", angles, counts, CU_KA, None, {}, "xy"))
    peaks = simulate(RUTILE)
    first = peaks.two_theta[(peaks.intensity >= 1.0) & (peaks.two_theta < 60)]
    assert np.all(np.min(np.abs(picked[:, None] - first[None]), axis=0) < 0.03)


def test_pick_peaks_drops_ka2_shoulders_and_ignores_flat_or_tiny_input():
    angles, counts = measured_profile(CSCL, np.random.default_rng(1))
    with_doublet = pick_peaks(angles, counts, ka2=False)
    without = pick_peaks(angles, counts)
    assert len(without) < len(with_doublet)
    assert len(pick_peaks(angles, np.full_like(angles, 7.0))) == 0
    assert len(pick_peaks(angles[:3], counts[:3])) == 0


def test_stick_lists_give_their_own_lines():
    peaks = simulate(QUARTZ)
    pattern = MeasuredPattern("quartz.dif", peaks.two_theta, peaks.intensity, CU_KA, None, {}, "dif")
    assert np.array_equal(pattern_peaks(pattern), np.sort(peaks.two_theta))
