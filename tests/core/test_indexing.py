"""Indexing finds the cells of patterns simulated with pymatgen from structures of known cell."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from core import indexing
from core.grid import CU_KA
from core.indexing import CellSolution, index_pattern
from core.peaks import pattern_peaks
from core.readers import MeasuredPattern
from core.simulation import simulate
from tests.core.known_crystals import STRUCTURES, measured_profile


def _lines(structure: Structure, strongest: float = 1.0) -> np.ndarray:
    """Peak positions a diffractometer would show: sticks of at least ``strongest`` % height."""
    peaks = simulate(structure)
    return peaks.two_theta[peaks.intensity >= strongest]


def _close(solution: CellSolution, cell: tuple[float, ...], rel: float = 2e-3) -> bool:
    return np.allclose(solution.cell[:3], cell[:3], rtol=rel) and \
        np.allclose(solution.cell[3:], cell[3:], atol=0.2)


@pytest.mark.parametrize("name", list(STRUCTURES))
def test_finds_the_cell_and_centring_of_simulated_sticks(name):
    structure, system, centring, cell = STRUCTURES[name]
    best = index_pattern(_lines(structure), CU_KA)[0]
    assert (best.system, best.centring) == (system, centring)
    assert _close(best, cell), best.cell
    assert best.n_unindexed == 0 and best.m20 > 20


# Diopside, CaMgSi2O6 (C2/c): its lowest lines include 11-1 and 021, beyond the primitive
# trial indices, so only the C-centred trials find its cell.
DIOPSIDE = Structure.from_spacegroup(
    "C2/c", Lattice.monoclinic(9.75, 8.93, 5.25, 105.9), ["Ca", "Mg", "Si", "O", "O", "O"],
    [[0, 0.3015, 0.25], [0, 0.9082, 0.25], [0.2862, 0.0933, 0.2293], [0.1156, 0.0873, 0.1422],
     [0.3611, 0.25, 0.318], [0.3505, 0.0176, 0.9953]])


def test_centred_trial_indices_are_c_allowed_low_indices_with_distinct_spacings():
    table = indexing._trial_hkl("monoclinic", centred=True)
    assert np.all((table[:, 0] + table[:, 1]) % 2 == 0)
    assert np.abs(table).sum(1).max() == indexing.CENTRED_TRIAL_INDEX_SUM
    terms = indexing._terms("monoclinic", table)
    assert len(np.unique(terms, axis=0)) == len(table)  # no two give the same 1/d² form
    wanted = indexing._terms("monoclinic", np.array([[1, 1, 0], [1, 1, -1], [1, 1, 1], [0, 2, 1]]))
    assert {tuple(row) for row in wanted.tolist()} <= {tuple(row) for row in terms.tolist()}


def test_c_centred_monoclinic_cells_are_found_by_the_centred_trials(monkeypatch):
    lines = _lines(DIOPSIDE, strongest=0.3)
    best = index_pattern(lines, CU_KA)[0]
    assert best.bravais_lattice == "mS" and best.n_unindexed == 0 and best.m20 > 20
    assert best.volume == pytest.approx(DIOPSIDE.lattice.volume, rel=2e-3)
    assert best.cell[1] == pytest.approx(8.93, rel=2e-3)  # the unique axis
    monkeypatch.setattr(indexing, "CENTRED_TRIAL_LINES", 0)
    # without them the monoclinic search misses it (the triclinic zones, searched only when
    # nothing convinces, then find its lattice, described as monoclinic again)
    assert not any(s.bravais_lattice == "mS"
                   for s in index_pattern(lines, CU_KA, systems=indexing.SYSTEMS[:-1]))
    assert index_pattern(lines, CU_KA)[0].bravais_lattice == "mS"


# A P-1 crystal whose shortest reciprocal axis (100) is too weak to be seen: the zones must
# start from a basis that is not the reduced one.
TRICLINIC = Structure.from_spacegroup(
    "P-1", Lattice.from_parameters(5.31, 6.87, 7.42, 82.3, 76.9, 71.2), ["Ca", "Si", "O"],
    [[0.21, 0.12, 0.37], [0.33, 0.41, 0.08], [0.71, 0.22, 0.15]])


def test_triclinic_cells_are_found_by_zones_and_niggli_reduced():
    lines = _lines(TRICLINIC)
    a_star = TRICLINIC.lattice.reciprocal_lattice_crystallographic.abc[0]
    assert np.min(np.abs(lines - 2 * np.degrees(np.arcsin(CU_KA * a_star / 2)))) > 0.1  # no 100
    best = index_pattern(lines, CU_KA)[0]
    assert best.bravais_lattice == "aP" and best.n_unindexed == 0 and best.m20 > 20
    reduced = TRICLINIC.lattice.get_niggli_reduced_lattice().parameters
    assert np.allclose(best.cell, reduced, rtol=2e-3, atol=0.05), best.cell


def test_zone_cross_terms_include_the_true_one():
    g_star = TRICLINIC.lattice.reciprocal_lattice_crystallographic.metric_tensor
    q = indexing.q_from_two_theta(np.sort(_lines(TRICLINIC))[:20], CU_KA)
    loose = 0.003 * q
    # b* and c* (both seen) span a zone whose cross term is |2 b*·c*|
    crossing = indexing._zone_cross_terms(q, g_star[1, 1], g_star[2, 2], loose)
    assert len(crossing) <= indexing.N_ZONE_CANDIDATES
    assert np.min(np.abs(crossing - 2 * abs(g_star[1, 2]))) < 1e-4


def test_a_monoclinic_lattice_found_as_triclinic_is_described_as_monoclinic():
    structure, system, centring, cell = STRUCTURES["monoclinic P"]
    best = index_pattern(_lines(structure), CU_KA, systems=("triclinic",))[0]
    assert (best.system, best.centring) == (system, centring) and _close(best, cell)


def test_triclinic_is_searched_only_without_a_convincing_cell_of_higher_symmetry(monkeypatch):
    def searched(*args):
        raise AssertionError("triclinic searched")

    monkeypatch.setattr(indexing, "_triclinic_trials", searched)
    best = index_pattern(_lines(STRUCTURES["rutile"][0]), CU_KA)[0]
    assert best.system == "tetragonal"
    with pytest.raises(AssertionError, match="triclinic searched"):
        index_pattern(_lines(TRICLINIC), CU_KA)


def test_indexed_lines_carry_their_miller_indices():
    structure = STRUCTURES["rock salt"][0]
    best = index_pattern(_lines(structure), CU_KA)[0]
    first, second = best.lines[:2]
    assert first.hkl[0] == (1, 1, 1) and sorted(second.hkl[0]) == [0, 0, 2]
    assert abs(first.two_theta_calc - first.two_theta) < 1e-3
    assert best.bravais_lattice == "cF" and best.lattice_points == 4


def test_a_zero_shift_is_refined():
    structure, _, _, cell = STRUCTURES["orthorhombic P"]
    best = index_pattern(_lines(structure) + 0.06, CU_KA)[0]
    assert best.system == "orthorhombic" and _close(best, cell, rel=3e-3)
    assert best.zero_shift == pytest.approx(0.06, abs=0.01)


def test_a_foreign_line_is_left_unindexed_and_noted():
    structure, system, _, cell = STRUCTURES["rutile"]
    lines = np.sort(np.append(_lines(structure), 21.37))
    best = index_pattern(lines, CU_KA)[0]
    assert best.system == system and _close(best, cell)
    assert best.n_unindexed == 1
    assert [line.hkl for line in best.lines if abs(line.two_theta - 21.37) < 1e-6] == [()]


def test_too_few_or_unusable_lines_give_no_solution():
    assert index_pattern(np.array([]), CU_KA) == []
    assert index_pattern(np.array([10.0, 20.0, np.nan, 30.0]), CU_KA) == []


def test_random_positions_are_not_indexed_convincingly():
    rng = np.random.default_rng(3)
    lines = np.sort(rng.uniform(8, 60, 20))
    solutions = index_pattern(lines, CU_KA)
    assert all(s.m20 < 10 or s.n_unindexed > 0 for s in solutions)


def test_peaks_picked_from_a_noisy_doublet_profile_index_the_cell():
    structure, system, centring, cell = STRUCTURES["rutile"]
    angles, counts = measured_profile(structure, np.random.default_rng(0))
    pattern = MeasuredPattern("rutile.xy", angles, counts, CU_KA, None, {}, "xy")
    best = index_pattern(pattern_peaks(pattern), CU_KA)[0]
    assert (best.system, best.centring) == (system, centring) and _close(best, cell, rel=3e-3)
