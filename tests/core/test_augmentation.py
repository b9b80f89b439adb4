"""Training-time perturbations: shapes, ranges, determinism and the physics they keep."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from core.augmentation import (
    CLEAN_FWHM_DEG,
    EFFECTS,
    NO_AUGMENTATION,
    QUIET,
    Augmentation,
    StickBatch,
    _strained_lattice,
    augment_profiles,
    metric_inverse,
    only,
)
from core.dataset import Dataset, rows_from_peaklists
from core.grid import CU_KA1, DEFAULT_GRID, d_to_two_theta
from core.rendering import render
from core.simulation import simulate
from core.structures import bundled_structures
from core.symmetry import CRYSTAL_SYSTEMS
from core.training import stick_batch

GRID = DEFAULT_GRID
ANGLES = GRID.angles.astype(np.float64)
CUBIC, TETRAGONAL, HEXAGONAL, MONOCLINIC, TRICLINIC, ORTHORHOMBIC = (
    CRYSTAL_SYSTEMS.index(s) for s in ("cubic", "tetragonal", "hexagonal", "monoclinic",
                                       "triclinic", "orthorhombic"))
# Only the cell is strained: every other perturbation is switched off.
STRAIN_ONLY = Augmentation(zero_shift_deg=0, displacement_mm=0, texture_probability=0,
                           intensity_jitter=0, ka2_probability=0, impurity_probability=0,
                           caglioti_u=(0, 0), caglioti_v=(0, 0), caglioti_w=(0.01, 0.01),
                           crystallite_nm=(1e5, 1e5), eta=(0.5, 0.5), background_level=(0, 0),
                           hump_probability=0, counts=(1e9, 1e9), read_noise=(0, 0),
                           truncate_probability=0)


@pytest.fixture(scope="module")
def sticks() -> StickBatch:
    batch = bundled_structures()
    names = ("Si", "CsCl", "TiO2", "LiFePO4", "Graphite", "SiO2")
    structures = [batch.structures[batch.names.index(n)] for n in names]
    peaks = [simulate(s) for s in structures]
    rows = rows_from_peaklists(peaks, list(names), "test")
    return stick_batch(Dataset("aug", rows, {}), np.arange(len(rows)), max_peaks=128)


def test_no_augmentation_is_clean_render(sticks):
    profiles = augment_profiles(sticks, GRID, NO_AUGMENTATION, np.random.default_rng(0))
    expected = render(sticks.two_theta, sticks.intensity, GRID, fwhm=CLEAN_FWHM_DEG, eta=0.5)
    np.testing.assert_allclose(profiles, expected, atol=1e-6)
    # ... and independent of the random generator.
    again = augment_profiles(sticks, GRID, NO_AUGMENTATION, np.random.default_rng(99))
    np.testing.assert_array_equal(profiles, again)
    # The clean silicon profile peaks at (111).
    assert ANGLES[profiles[0].argmax()] == pytest.approx(28.47, abs=0.04)


@pytest.mark.parametrize("strength", [0.5, 1.0, 2.0])
def test_shape_range_and_finiteness(sticks, strength):
    aug = Augmentation(strength=strength)
    for seed in range(3):
        profiles = augment_profiles(sticks, GRID, aug, np.random.default_rng(seed))
        assert profiles.shape == (len(sticks.two_theta), GRID.size)
        assert profiles.dtype == np.float32
        assert np.all(np.isfinite(profiles))
        assert profiles.min() >= 0.0 and profiles.max() <= 1.0 + 1e-6
        np.testing.assert_allclose(profiles.max(axis=1), 1.0, atol=1e-5)


def test_deterministic_for_a_seed(sticks):
    aug = Augmentation()
    first = augment_profiles(sticks, GRID, aug, np.random.default_rng(42))
    second = augment_profiles(sticks, GRID, aug, np.random.default_rng(42))
    other = augment_profiles(sticks, GRID, aug, np.random.default_rng(43))
    np.testing.assert_array_equal(first, second)
    assert not np.allclose(first, other)


def test_augmentation_changes_the_profile(sticks):
    clean = augment_profiles(sticks, GRID, NO_AUGMENTATION, np.random.default_rng(0))
    noisy = augment_profiles(sticks, GRID, Augmentation(), np.random.default_rng(0))
    assert np.abs(clean - noisy).mean() > 0.005


def test_metric_inverse_known_cells():
    cells = np.array([[2.0, 2.0, 2.0, 90, 90, 90], [3.0, 4.0, 5.0, 90, 90, 90]])
    inverse = metric_inverse(cells)
    np.testing.assert_allclose(inverse[0], np.eye(3) / 4.0, atol=1e-12)
    np.testing.assert_allclose(np.diag(inverse[1]), [1 / 9, 1 / 16, 1 / 25])
    # Hexagonal: 1/d² = 4/3 (h² + hk + k²)/a² + l²/c².
    hexagonal = metric_inverse(np.array([[3.0, 3.0, 5.0, 90, 90, 120]]))[0]
    h = np.array([1.0, 1.0, 1.0])
    assert h @ hexagonal @ h == pytest.approx(4 / 3 * 3 / 9 + 1 / 25)


def test_strain_keeps_crystal_system_constraints():
    rng = np.random.default_rng(0)
    lattice = np.array([[5.0, 5.0, 5.0, 90, 90, 90], [4.0, 4.0, 7.0, 90, 90, 90],
                         [3.0, 3.0, 5.0, 90, 90, 120], [5.0, 6.0, 7.0, 90, 100, 90],
                         [5.0, 6.0, 7.0, 80, 95, 100], [5.0, 6.0, 7.0, 90, 90, 90]] * 20)
    system = np.array([CUBIC, TETRAGONAL, HEXAGONAL, MONOCLINIC, TRICLINIC, ORTHORHOMBIC] * 20)
    strained = _strained_lattice(lattice, system, Augmentation(strength=2.0), rng)
    assert strained.shape == lattice.shape
    cubic, tetragonal, hexagonal, monoclinic, triclinic, ortho = (strained[i::6] for i in range(6))
    np.testing.assert_allclose(cubic[:, 1], cubic[:, 0])
    np.testing.assert_allclose(cubic[:, 2], cubic[:, 0])
    np.testing.assert_allclose(cubic[:, 3:], 90.0)
    np.testing.assert_allclose(tetragonal[:, 1], tetragonal[:, 0])
    assert not np.allclose(tetragonal[:, 2] / tetragonal[:, 0], 7 / 4)
    np.testing.assert_allclose(tetragonal[:, 3:], 90.0)
    np.testing.assert_allclose(hexagonal[:, 1], hexagonal[:, 0])
    np.testing.assert_allclose(hexagonal[:, 3:], [[90, 90, 120]] * 20)
    np.testing.assert_allclose(monoclinic[:, [3, 5]], 90.0)
    assert np.std(monoclinic[:, 4]) > 0.1
    assert np.std(triclinic[:, 3]) > 0.1 and np.std(triclinic[:, 5]) > 0.1
    np.testing.assert_allclose(ortho[:, 3:], 90.0)
    # Strains are a few per cent, not more.
    assert np.all(np.abs(strained[:, :3] / lattice[:, :3] - 1) < 0.3)
    # A cubic cell stays cubic in its reciprocal metric too.
    inverse = metric_inverse(cubic)
    for g, a in zip(inverse, cubic[:, 0]):
        np.testing.assert_allclose(g, np.eye(3) / a**2, atol=1e-10)


def test_zero_strength_strain_is_identity():
    lattice = np.array([[5.0, 6.0, 7.0, 80, 95, 100]])
    same = _strained_lattice(lattice, np.array([TRICLINIC]), Augmentation(strength=0.0),
                             np.random.default_rng(0))
    np.testing.assert_allclose(same, lattice)


def test_strained_cubic_peaks_shift_together():
    silicon = Structure(Lattice.cubic(5.431), ["Si"] * 2, [[0, 0, 0], [0.25, 0.25, 0.25]])
    peaks = simulate(silicon)
    rows = rows_from_peaklists([peaks], ["si"], "test")
    one = stick_batch(Dataset("si", rows, {}), np.array([0]))
    profile = augment_profiles(one, GRID, STRAIN_ONLY, np.random.default_rng(5))[0]
    # The strained cell is cubic: (111) and (220) give the same lattice parameter.
    cells = []
    for hkl, near in (((1, 1, 1), 28.44), ((2, 2, 0), 47.3)):
        window = np.abs(ANGLES - near) < 2.5
        top = ANGLES[window][profile[window].argmax()]
        d = CU_KA1 / (2 * np.sin(np.radians(top) / 2))
        cells.append(d * np.sqrt(np.sum(np.square(hkl))))
    assert cells[0] == pytest.approx(cells[1], rel=2e-3)
    assert abs(cells[0] / 5.431 - 1) > 1e-3  # the cell did change
    assert float(d_to_two_theta(5.431 / np.sqrt(3), CU_KA1)) == pytest.approx(28.44, abs=0.01)


def test_truncation_zeros_outside_measured_range(sticks):
    aug = replace(Augmentation(), truncate_probability=1.0, read_noise=(0.005, 0.01))
    profiles = augment_profiles(sticks, GRID, aug, np.random.default_rng(3))
    tail = ANGLES > 80.0
    shortened_stop = [bool(np.all(p[tail] == 0)) for p in profiles]
    for profile, stop_cut in zip(profiles, shortened_stop):
        if not stop_cut:  # the start was moved up instead: leading zeros, data from ≤10°
            nonzero = np.flatnonzero(profile)
            assert nonzero[0] > 0 and ANGLES[nonzero[0]] <= 10.05
            assert np.all(profile[:nonzero[0]] == 0)
        else:
            nonzero = np.flatnonzero(profile)
            assert 60.0 - 0.05 <= ANGLES[nonzero[-1]] <= 80.05
    many = augment_profiles(StickBatch(*(np.repeat(x, 5, axis=0) for x in (
        sticks.two_theta, sticks.intensity, sticks.hkl, sticks.lattice, sticks.system))),
        GRID, aug, np.random.default_rng(4))
    cut_at_stop = sum(bool(np.all(p[tail] == 0)) for p in many)
    assert 0 < cut_at_stop < len(many)  # both kinds of truncation occur
    untruncated = augment_profiles(sticks, GRID, replace(aug, truncate_probability=0.0),
                                   np.random.default_rng(3))
    assert not any(np.all(p[tail] == 0) for p in untruncated)


def test_augmentation_dict_round_trip():
    aug = Augmentation(strength=0.7, march_r=(0.5, 0.9))
    data = aug.to_dict()
    assert data["strength"] == 0.7
    # JSON turns tuples into lists; from_dict restores them and ignores unknown keys.
    data["march_r"] = list(data["march_r"])
    data["unknown_setting"] = 1
    assert Augmentation.from_dict(data) == aug
    assert NO_AUGMENTATION.strength == 0.0


def test_every_perturbation_belongs_to_exactly_one_effect():
    named = [name for fields in EFFECTS.values() for name in fields]
    assert len(named) == len(set(named))
    assert set(named) == set(Augmentation.__dataclass_fields__) - {"strength"}


def test_quiet_rendering_is_clean_peaks_whatever_the_seed(sticks):
    first = augment_profiles(sticks, GRID, QUIET, np.random.default_rng(1))
    again = augment_profiles(sticks, GRID, QUIET, np.random.default_rng(2))
    np.testing.assert_allclose(first, again, atol=1e-6)
    # Peaks of the clean width: the strongest peak's FWHM is 0.1° (a few grid steps).
    strongest = first[0].argmax()
    above_half = np.flatnonzero(first[0] >= 0.5 * first[0, strongest])
    run = above_half[np.abs(above_half - strongest) <= 10]
    width = (run.max() - run.min() + 1) * GRID.step
    assert width == pytest.approx(CLEAN_FWHM_DEG, abs=2 * GRID.step)


@pytest.mark.parametrize("effect", list(EFFECTS))
def test_only_switches_on_one_effect_on_every_pattern(sticks, effect):
    ranges = Augmentation(ka2_probability=0.2, impurity_probability=0.1)
    one = only(effect, ranges)
    for name in Augmentation.__dataclass_fields__:
        expected = getattr(QUIET, name) if name not in EFFECTS[effect] else (
            1.0 if name.endswith("_probability") else getattr(ranges, name))
        assert getattr(one, name) == (ranges.strength if name == "strength" else expected), name
    quiet = augment_profiles(sticks, GRID, QUIET, np.random.default_rng(3))
    perturbed = augment_profiles(sticks, GRID, one, np.random.default_rng(3))
    if effect == "shorter measured range":  # nothing to lose where a pattern has no peaks
        start, end = GRID.angles < GRID.start + 0.5, GRID.angles > GRID.stop - 0.5
        changed = (perturbed[:, start] == 0).all(axis=1) | (perturbed[:, end] == 0).all(axis=1)
        assert not ((quiet[:, start] == 0).all(axis=1) | (quiet[:, end] == 0).all(axis=1)).any()
    else:
        changed = np.abs(perturbed - quiet).max(axis=1) > 1e-3
    assert changed.all(), f"{effect}: {changed.mean():.0%} of patterns changed"


def test_only_refuses_an_unknown_effect():
    with pytest.raises(ValueError, match="unknown effect"):
        only("cosmic rays", Augmentation())
