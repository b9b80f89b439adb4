"""Peak picking for indexing: positions of noisy doublet profiles and of stick lists."""

from __future__ import annotations

import numpy as np

from core.grid import CU_KA
from core.peaks import pattern_peaks, pick_peaks
from core.readers import MeasuredPattern
from core.simulation import simulate
from tests.core.known_crystals import STRUCTURES, measured_profile

CSCL, RUTILE, QUARTZ = (STRUCTURES[name][0] for name in ("CsCl", "rutile", "quartz"))


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
