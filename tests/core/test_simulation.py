"""Structure -> simulated peak list, against textbook values for silicon and rock salt."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from core.grid import CU_KA, WAVELENGTHS, d_to_two_theta
from core.simulation import SYMPREC, PeakList, simulate, simulate_many
from core.structures import bundled_structures


@pytest.fixture(scope="module")
def silicon() -> Structure:
    batch = bundled_structures()
    return batch.structures[batch.names.index("Si")]


def rock_salt(a: float = 5.64) -> Structure:
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(a), ["Na", "Cl"],
                                     [[0, 0, 0], [0.5, 0.5, 0.5]])


def test_silicon_peaks(silicon):
    peaks = simulate(silicon, wavelength=WAVELENGTHS["CuKa1"])
    assert isinstance(peaks, PeakList)
    assert peaks.sg_number == 227
    assert peaks.crystal_system == "cubic"
    assert peaks.formula == "Si"
    assert peaks.n_sites == 8
    assert peaks.hkl.shape == (len(peaks.two_theta), 3)
    # (111) is the first and strongest line of silicon at 28.44° with Cu Kα1.
    assert peaks.two_theta[0] == pytest.approx(28.44, abs=0.02)
    assert tuple(abs(int(v)) for v in peaks.hkl[0]) == (1, 1, 1)
    assert peaks.intensity.argmax() == 0
    assert peaks.intensity.max() == pytest.approx(100.0)
    # (220) and (311) follow at 47.30° and 56.12°; (200) is extinct in the diamond structure.
    assert peaks.two_theta[1] == pytest.approx(47.30, abs=0.03)
    assert peaks.two_theta[2] == pytest.approx(56.12, abs=0.03)
    assert sorted(abs(int(v)) for v in peaks.hkl[1]) == [0, 2, 2]
    a = peaks.lattice[0]
    assert a == pytest.approx(5.431, abs=0.01)
    assert peaks.lattice[3:] == pytest.approx((90.0, 90.0, 90.0))
    assert peaks.wavelength == pytest.approx(WAVELENGTHS["CuKa1"])


def test_peaks_are_consistent_with_bragg_and_hkl(silicon):
    peaks = simulate(silicon)
    assert np.all(np.diff(peaks.two_theta) > 0)
    assert peaks.two_theta.min() >= 5.0 and peaks.two_theta.max() <= 90.0
    np.testing.assert_allclose(d_to_two_theta(peaks.d_spacing, CU_KA), peaks.two_theta, atol=1e-3)
    # Cubic: d = a / sqrt(h² + k² + l²).
    a = peaks.lattice[0]
    expected_d = a / np.sqrt((peaks.hkl.astype(float) ** 2).sum(axis=1))
    np.testing.assert_allclose(peaks.d_spacing, expected_d, rtol=1e-4)
    assert peaks.two_theta[0] == pytest.approx(28.47, abs=0.02)  # Kα mean is a bit longer


def test_wavelength_and_range(silicon):
    mo = simulate(silicon, wavelength=WAVELENGTHS["MoKa"])
    assert mo.two_theta[0] == pytest.approx(float(d_to_two_theta(5.431 / np.sqrt(3), WAVELENGTHS["MoKa"])), abs=0.02)
    assert len(mo.two_theta) > len(simulate(silicon).two_theta)  # shorter λ reaches more peaks
    narrow = simulate(silicon, two_theta_range=(40.0, 60.0))
    assert len(narrow.two_theta) == 2
    assert np.all((narrow.two_theta >= 40) & (narrow.two_theta <= 60))


def test_primitive_input_gives_conventional_cell():
    primitive = rock_salt().get_primitive_structure()
    assert len(primitive) == 2
    peaks = simulate(primitive)
    assert peaks.sg_number == 225
    assert peaks.n_sites == 8
    assert peaks.lattice[:3] == pytest.approx((5.64, 5.64, 5.64), abs=1e-3)
    assert peaks.formula == "NaCl"


def test_symprec_labels_distorted_cells():
    # A 0.02 Å tetragonal distortion is within SYMPREC; at a tight tolerance it is not cubic.
    distorted = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"],
                                          [[0, 0, 0], [0.5, 0.5, 0.5]])
    distorted.lattice = Lattice.tetragonal(5.64, 5.66)
    assert SYMPREC == 0.1
    assert simulate(distorted).sg_number == 225
    assert simulate(distorted, symprec=1e-4).crystal_system == "tetragonal"


def test_simulate_many_order_errors_and_progress(silicon):
    structures = [silicon, rock_salt(), rock_salt(6.0)]
    calls = []
    results = simulate_many(structures, processes=1, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(1, 3), (2, 3), (3, 3)]
    assert [r.sg_number for r in results] == [227, 225, 225]
    assert results[1].lattice[0] == pytest.approx(5.64, abs=1e-3)
    assert results[2].lattice[0] == pytest.approx(6.0, abs=1e-3)


def test_simulate_many_reports_errors_in_place(silicon):
    results = simulate_many([silicon, "not a structure", rock_salt()], processes=1)
    assert isinstance(results[0], PeakList) and isinstance(results[2], PeakList)
    assert isinstance(results[1], str) and results[1]


def test_simulate_many_processes_agree(silicon):
    structures = [silicon, rock_salt(), rock_salt(5.5), rock_salt(6.0), silicon]
    calls = []
    serial = simulate_many(structures, processes=1)
    parallel = simulate_many(structures, processes=2, progress=lambda d, t: calls.append((d, t)))
    assert [d for d, _ in calls] == [1, 2, 3, 4, 5] and {t for _, t in calls} == {5}
    assert len(serial) == len(parallel) == 5
    for a, b in zip(serial, parallel):
        assert a.sg_number == b.sg_number
        np.testing.assert_allclose(a.two_theta, b.two_theta)
        np.testing.assert_allclose(a.intensity, b.intensity)
        np.testing.assert_array_equal(a.hkl, b.hkl)
