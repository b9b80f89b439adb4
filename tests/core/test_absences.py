"""Systematic absences from spglib's settings agree with pymatgen's simulated reflections, and
the observed lines of an indexed pattern single out the extinction group of the true one."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
from pymatgen.analysis.diffraction.xrd import XRDCalculator
from pymatgen.core import Lattice, Structure

from core.absences import (ABSENCE_FORBIDDEN_FACTOR, ABSENCE_OCCAM_POWER, absence_weights,
                           absent, best_cell, best_cells, group_evidence, keeps_metric,
                           metric_tensor, rerank)
from core.indexing import index_pattern
from core.simulation import simulate
from core.symmetry import bravais_lattice_of, by_symbol, settings

STRUCTURES = {
    "silicon": Structure.from_spacegroup("Fd-3m", Lattice.cubic(5.431), ["Si"], [[0, 0, 0]]),
    "rock salt": Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.640), ["Na", "Cl"],
                                           [[0, 0, 0], [0.5, 0.5, 0.5]]),
    "rutile": Structure.from_spacegroup("P4_2/mnm", Lattice.tetragonal(4.594, 2.959), ["Ti", "O"],
                                        [[0, 0, 0], [0.3048, 0.3048, 0]]),
    "corundum": Structure.from_spacegroup("R-3c", Lattice.hexagonal(4.759, 12.991), ["Al", "O"],
                                          [[0, 0, 0.3523], [0.3064, 0, 0.25]]),
    "olivine-like Pnma": Structure.from_spacegroup(
        "Pnma", Lattice.orthorhombic(5.21, 6.37, 7.83), ["Mg", "Si", "O"],
        [[0.13, 0.25, 0.61], [0.41, 0.25, 0.09], [0.29, 0.04, 0.83]]),
    "P2_1/c": Structure.from_spacegroup("P2_1/c", Lattice.monoclinic(5.43, 7.12, 6.28, 103.4),
                                        ["Zn", "O"], [[0.21, 0.12, 0.37], [0.33, 0.41, 0.08]]),
}


def _standard(number: int):
    return next(s for s in settings() if s.number == number)


@pytest.mark.parametrize("name", list(STRUCTURES))
def test_every_peak_pymatgen_simulates_has_a_reflection_the_true_group_allows(name):
    structure = STRUCTURES[name]
    number = structure.get_space_group_info()[1]
    pattern = XRDCalculator().get_pattern(structure)
    setting = _standard(number)
    for families in pattern.hkls:
        hkl = np.concatenate([_same_spacing(structure.lattice, f["hkl"]) for f in families])
        assert not absent(setting, hkl).all(), hkl


def _same_spacing(lattice: Lattice, family: tuple[int, ...]) -> np.ndarray:
    """Every signed permutation of a pymatgen family (h k l, or h k i l for hexagonal cells)
    with its d-spacing: pymatgen names a family by one such permutation, not always one the
    group makes equivalent (corundum's 012 is listed as 1 0 -1 2)."""
    if len(family) == 4:
        h, k, i, l = family
        options = {(p[0], p[1], s * l) for p in itertools.permutations((h, k, i)) for s in (1, -1)}
    else:
        options = {tuple(s * x for s, x in zip(signs, p))
                   for p in itertools.permutations(family)
                   for signs in itertools.product((1, -1), repeat=3)}
    hkl = np.array(sorted(options))
    d = lattice.d_hkl(family[:2] + family[-1:])
    return hkl[np.isclose([lattice.d_hkl(x) for x in hkl], d, rtol=1e-6)]


@pytest.mark.parametrize("symbol, hkl, expected", [
    ("Fm-3m", [(1, 1, 1), (2, 0, 0), (1, 1, 0), (2, 1, 0)], [False, False, True, True]),
    # Silicon's missing 222 comes from its atoms' special position, not from the group.
    ("Fd-3m", [(1, 1, 1), (2, 2, 0), (2, 0, 0), (0, 2, 4), (2, 2, 2), (4, 0, 0)],
     [False, False, True, True, False, False]),
    ("Im-3m", [(1, 1, 0), (1, 0, 0), (2, 1, 1)], [False, True, False]),
    ("P2_1/c", [(0, 1, 0), (0, 2, 0), (1, 0, 1), (1, 0, 2), (1, 1, 1)],
     [True, False, True, False, False]),
    ("P2_1/n", [(1, 0, 1), (1, 0, 0), (0, 0, 2), (1, 1, 0)], [False, True, False, False]),
    ("R-3c", [(1, 0, 4), (0, 1, 2), (1, 0, 0), (0, 0, 6), (0, 0, 3)],
     [False, False, True, False, True]),
    ("P1", [(1, 0, 0), (0, 1, 0), (0, 0, 1)], [False, False, False]),
])
def test_absences_match_the_reflection_conditions_of_international_tables(symbol, hkl, expected):
    setting = _standard(by_symbol(symbol).number)
    if symbol == "P2_1/n":
        setting = next(s for s in settings() if s.symbol == "P 1 2_1/n 1")
    assert absent(setting, np.array(hkl)).tolist() == expected


def test_a_setting_fits_a_cell_only_when_its_rotations_keep_the_metric():
    orthorhombic = metric_tensor((5.2, 6.4, 7.8, 90, 90, 90))
    monoclinic = metric_tensor((5.4, 7.1, 6.3, 90, 103.4, 90))
    tetragonal = metric_tensor((4.6, 4.6, 3.0, 90, 90, 90))
    pnma = [s for s in settings() if s.number == 62]
    assert len(pnma) == 6 and all(keeps_metric(s, orthorhombic) for s in pnma)
    p21c = [s for s in settings() if s.number == 14]
    fitting = [s.symbol for s in p21c if keeps_metric(s, monoclinic)]
    assert fitting == ["P 1 2_1/c 1", "P 1 2_1/n 1", "P 1 2_1/a 1"]
    assert not any(keeps_metric(s, tetragonal) for s in settings() if s.number > 195)


@pytest.mark.parametrize("name", list(STRUCTURES))
def test_the_true_group_is_consistent_and_has_the_fewest_allowed_lines_of_its_lattice(name):
    structure = STRUCTURES[name]
    number = structure.get_space_group_info()[1]
    peaks = simulate(structure)
    best = index_pattern(peaks.two_theta[peaks.intensity >= 1.0])[0]
    evidence = group_evidence(best)
    assert evidence[number].consistent
    same_lattice = [e for e in evidence.values()
                    if bravais_lattice_of(e.number) == bravais_lattice_of(number) and e.consistent]
    assert evidence[number].allowed == min(e.allowed for e in same_lattice)
    # and absences rule groups out: some group of the lattice forbids an observed line,
    # unless the lattice's groups have no absences beyond the centring (cubic F here has them).
    assert any(not e.consistent for e in evidence.values())


def test_a_cell_of_higher_symmetry_than_a_group_leaves_no_group_above_its_metric():
    peaks = simulate(STRUCTURES["rutile"])
    evidence = group_evidence(index_pattern(peaks.two_theta[peaks.intensity >= 1.0])[0])
    assert evidence and max(evidence) <= 142


def test_weights_punish_forbidden_lines_and_prefer_the_most_absences():
    peaks = simulate(STRUCTURES["rutile"])
    best = index_pattern(peaks.two_theta[peaks.intensity >= 1.0])[0]
    evidence = group_evidence(best)
    weights = absence_weights(evidence, range(1, 231))
    fewest = min(e.allowed for e in evidence.values() if e.consistent)
    for number, e in evidence.items():
        assert weights[number - 1] == pytest.approx(
            ABSENCE_FORBIDDEN_FACTOR ** e.forbidden * (fewest / e.allowed) ** ABSENCE_OCCAM_POWER)
        assert (weights[number - 1] == 1.0) == (e.consistent and e.allowed == fewest)
    assert weights[136 - 1] == 1.0 and weights[127 - 1] < 1e-3
    # cubic groups have no setting for a tetragonal cell: they get the smallest weight
    assert np.all(weights[194:] == weights.min())
    assert np.all(absence_weights({}, range(1, 231)) == 1.0)


def test_rerank_leaves_the_ranking_alone_without_a_convincing_cell():
    probabilities = np.random.default_rng(0).dirichlet(np.ones(230))
    np.testing.assert_allclose(rerank(probabilities, None, {}, range(1, 231)), probabilities)
    peaks = simulate(STRUCTURES["rutile"])
    best, evidence = best_cell(peaks.two_theta[peaks.intensity >= 1.0])
    assert best == index_pattern(peaks.two_theta[peaks.intensity >= 1.0])[0]
    assert evidence == group_evidence(best)
    weak = dataclasses.replace(best, m20=5.0)
    np.testing.assert_allclose(rerank(probabilities, weak, evidence, range(1, 231)), probabilities)
    ranked = rerank(probabilities, best, evidence, range(1, 231))
    # the winner is a primitive tetragonal group with rutile's absences (P4_2/mnm, P4_2nm, ...)
    winner = ranked.argmax() + 1
    assert ranked.sum() == pytest.approx(1.0) and bravais_lattice_of(winner) == "tP"
    assert evidence[winner].consistent and evidence[winner].allowed == evidence[136].allowed


def test_a_triclinic_cell_favours_the_two_triclinic_groups():
    structure = Structure.from_spacegroup(
        "P-1", Lattice.from_parameters(5.31, 6.87, 7.42, 82.3, 76.9, 71.2), ["Ca", "Si", "O"],
        [[0.21, 0.12, 0.37], [0.33, 0.41, 0.08], [0.71, 0.22, 0.15]])
    peaks = simulate(structure)
    best, evidence = best_cell(peaks.two_theta[peaks.intensity >= 1.0])
    assert best.bravais_lattice == "aP" and sorted(evidence) == [1, 2]
    assert evidence[1].consistent and evidence[2].consistent
    probabilities = np.full(230, 1 / 230)
    ranked = rerank(probabilities, best, evidence, range(1, 231))
    assert ranked[0] == ranked[1] and ranked[0] > 40 * ranked[2:].max()


def test_many_patterns_are_indexed_in_worker_processes_with_the_same_answers():
    lines = [simulate(STRUCTURES[name]) for name in ("rutile", "corundum", "silicon", "P2_1/c")]
    peak_lists = [p.two_theta[p.intensity >= 1.0] for p in lines] + [np.array([20.0, 30.0])]
    wavelengths = [1.54184] * len(peak_lists)
    pooled = best_cells(peak_lists, wavelengths, workers=2)
    assert pooled == [best_cell(p, w) for p, w in zip(peak_lists, wavelengths)]
    assert [c.bravais_lattice if c else None for c, _ in pooled] == ["tP", "hR", "cF", "mP", None]
    assert pooled[-1] == (None, {})
