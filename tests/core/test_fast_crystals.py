"""The fast random-crystal engine: symmetric crystals of sensible chemistry whose patterns
match pymatgen's XRDCalculator peak for peak."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from pymatgen.analysis.diffraction.xrd import XRDCalculator
from pymatgen.core import Lattice, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from core.augmentation import metric_inverse
from core.fast_crystals import (
    RandomCrystal,
    _element_facts,
    _grid_steps,
    _place,
    _tables,
    detected_space_group,
    lattice_matrix,
    random_crystal_fast,
    random_pattern,
    simulate_crystal,
)
from core.generation import generate_synthetic
from core.structures import RandomCrystalSpec
from core.symmetry import crystal_system_of, site_symmetry_order, symmetry_operations

# One or more groups of every crystal system, centred lattices, glides and screws included.
GROUPS = [1, 2, 4, 14, 15, 19, 33, 62, 63, 70, 88, 136, 141, 148, 161, 166, 176, 186, 194,
          198, 216, 225, 227, 230]


def _spglib_number(crystal: RandomCrystal) -> int:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return SpacegroupAnalyzer(crystal.to_pymatgen(), symprec=0.1).get_space_group_number()


@pytest.fixture(scope="module")
def crystals() -> list[RandomCrystal]:
    found = []
    for number in GROUPS:
        rng = np.random.default_rng(number)
        for _ in range(6):
            try:
                crystal = random_crystal_fast(number, rng)
            except RuntimeError:
                continue
            if detected_space_group(crystal) == number:
                found.append(crystal)
                break
    return found


def test_most_groups_give_a_confirmed_crystal(crystals):
    assert len(crystals) >= len(GROUPS) - 2
    assert {crystal_system_of(c.requested_sg) for c in crystals} == {
        "triclinic", "monoclinic", "orthorhombic", "tetragonal", "trigonal", "hexagonal", "cubic"}


def test_crystals_obey_their_crystal_system_and_keep_atoms_apart(crystals):
    for crystal in crystals:
        a, b, c, alpha, beta, gamma = crystal.lattice
        system = crystal_system_of(crystal.requested_sg)
        if system in ("tetragonal", "trigonal", "hexagonal", "cubic"):
            assert a == pytest.approx(b)
        if system == "cubic":
            assert a == pytest.approx(c)
        if system in ("trigonal", "hexagonal"):
            assert gamma == 120.0
        if system in ("monoclinic", "orthorhombic", "tetragonal", "cubic"):
            assert alpha == gamma == 90.0
        structure = crystal.to_pymatgen()
        assert structure.volume == pytest.approx(np.linalg.det(lattice_matrix(crystal.lattice)))
        distances = structure.distance_matrix[np.triu_indices(len(structure), 1)]
        assert distances.min() >= 1.1 - 1e-6
        assert 2 <= len(structure) <= 72
        # The label agrees with pymatgen's own symmetry finder.
        assert _spglib_number(crystal) == crystal.requested_sg


def test_patterns_match_pymatgen_peak_for_peak(crystals):
    calculator = XRDCalculator()
    for crystal in crystals:
        ours = simulate_crystal(crystal, crystal.requested_sg)
        theirs = calculator.get_pattern(crystal.to_pymatgen(), two_theta_range=(5, 90))
        assert len(ours.two_theta) == len(theirs.x), crystal.requested_sg
        np.testing.assert_allclose(ours.two_theta, theirs.x, atol=1e-4)
        np.testing.assert_allclose(ours.intensity, theirs.y, atol=1e-3)
        np.testing.assert_allclose(ours.d_spacing, theirs.d_hkls, rtol=1e-5)


def test_stored_miller_indices_give_the_peak_positions(crystals):
    for crystal in crystals:
        peaks = simulate_crystal(crystal, crystal.requested_sg)
        inverse = metric_inverse(np.asarray([crystal.lattice]))[0]
        q2 = np.einsum("pi,ij,pj->p", peaks.hkl.astype(float), inverse, peaks.hkl.astype(float))
        np.testing.assert_allclose(1 / np.sqrt(q2), peaks.d_spacing, rtol=1e-5)


def test_known_structure_reproduces_rock_salt():
    # NaCl written as a RandomCrystal: the fcc extinctions leave 111, 200, 220, 311, 222, ...
    lattice = (5.64, 5.64, 5.64, 90.0, 90.0, 90.0)
    fcc = np.array([[0, 0, 0], [0, .5, .5], [.5, 0, .5], [.5, .5, 0]])
    coords = np.concatenate([fcc, (fcc + 0.5) % 1])
    crystal = RandomCrystal(lattice, coords, ["Na"] * 4 + ["Cl"] * 4, 225)
    assert detected_space_group(crystal) == 225
    peaks = simulate_crystal(crystal, 225)
    families = {tuple(sorted(np.abs(h))) for h in peaks.hkl.tolist()}
    assert {(1, 1, 1), (0, 0, 2), (0, 2, 2), (1, 1, 3), (2, 2, 2)} <= families
    assert (0, 0, 1) not in families and (0, 1, 1) not in families
    strongest = peaks.two_theta[np.argmax(peaks.intensity)]
    assert strongest == pytest.approx(31.7, abs=0.1)  # the 200 reflection of halite
    reference = XRDCalculator().get_pattern(
        Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"],
                                  [[0, 0, 0], [0.5, 0.5, 0.5]]), two_theta_range=(5, 90))
    np.testing.assert_allclose(peaks.intensity, reference.y, atol=1e-3)


def test_random_pattern_is_reproducible_and_labelled():
    first = random_pattern(14, np.random.default_rng(3))
    again = random_pattern(14, np.random.default_rng(3))
    assert first.sg_number == 14 and first.crystal_system == "monoclinic"
    np.testing.assert_array_equal(first.two_theta, again.two_theta)
    assert first.intensity.max() == pytest.approx(100.0)


def test_fast_engine_generates_dataset_rows():
    report = generate_synthetic([2, 14, 62, 225], seed=1, processes=1, engine="fast")
    assert len(report.rows) + len(report.failures) == 4 and len(report.rows) >= 3
    assert report.rows["source"].unique().tolist() == ["fast"]
    assert report.mismatched == 0  # crystals in another group are redrawn, never relabelled
    with pytest.raises(ValueError, match="unknown engine"):
        generate_synthetic([2], engine="quantum")


@pytest.mark.parametrize("number", [203, 226])
def test_groups_whose_general_position_exceeds_the_atom_limit_still_come_out(number):
    # Fd-3 and Fm-3c: 96 and 192 general positions, over the default limit of 72 atoms.
    found = []
    for seed in range(6):
        try:
            found.append(random_pattern(number, np.random.default_rng([number, seed])))
        except RuntimeError:
            continue
    assert found and all(p.sg_number == number for p in found)
    assert max(p.n_sites for p in found) > 72


def _independent_sites(crystal: RandomCrystal) -> int:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        analyzer = SpacegroupAnalyzer(crystal.to_pymatgen(), symprec=0.01)
        return len(analyzer.get_symmetrized_structure().equivalent_indices)


def _fitted(numbers, spec: RandomCrystalSpec, seed: int, confirmed: bool = True):
    """The crystals :func:`random_crystal_fast` makes for ``numbers`` in turn, from one
    generator seeded ``seed``, skipping groups where none fitted; when ``confirmed``, only
    those spglib finds in the requested group."""
    rng = np.random.default_rng(seed)
    for number in numbers:
        try:
            crystal = random_crystal_fast(number, rng, spec)
        except RuntimeError:
            continue
        if not confirmed or detected_space_group(crystal) == number:
            yield crystal


def test_cod_site_plan_gives_larger_cells_like_real_crystals():
    """COD structures: median 5 independent sites, 29 % over 12. The "few" plan never
    exceeds 9; the "cod" plan reaches COD's spread and still yields confirmed crystals."""
    sites = {"few": [], "cod": []}
    for plan in sites:
        spec = RandomCrystalSpec(max_atoms=160, sites=plan)
        for crystal in _fitted([2, 14, 15, 62, 2, 14, 61, 12, 1, 19] * 4, spec, 11):
            assert len(crystal.species) <= 160
            sites[plan].append(_independent_sites(crystal))
    assert len(sites["cod"]) >= 25 and len(sites["few"]) >= 25
    assert max(sites["few"]) <= 9
    assert np.percentile(sites["cod"], 75) >= 8
    assert np.median(sites["cod"]) >= np.median(sites["few"])


def test_system_site_plan_gives_triclinic_crystals_real_sizes():
    """COD's triclinic structures have a median of 22 independent sites (the all-COD plan
    gives every system a median of 5), its cubic ones 2."""
    sites = {"cod": [], "cod-system": []}
    for plan in sites:
        spec = RandomCrystalSpec(max_atoms=160, sites=plan)
        sites[plan] = [_independent_sites(crystal) for crystal in _fitted([2] * 16, spec, 3)]
    assert len(sites["cod"]) >= 10 and len(sites["cod-system"]) >= 10
    assert np.median(sites["cod-system"]) >= 12
    assert np.median(sites["cod-system"]) > 2 * np.median(sites["cod"])


def _general_share(crystal: RandomCrystal) -> float:
    """Share of the independent sites that sit on the general position."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        analyzer = SpacegroupAnalyzer(crystal.to_pymatgen(), symprec=0.01)
        number = analyzer.get_space_group_number()
        symmetrized = analyzer.get_symmetrized_structure()
    return float(np.mean([site_symmetry_order(number, symmetrized.wyckoff_letters[orbit[0]]) == 1
                          for orbit in symmetrized.equivalent_indices]))


@pytest.mark.parametrize("number, cod_least, preferred_most", [(2, 0.9, 0.75), (14, 0.85, 0.75)])
def test_cod_positions_put_sites_where_real_crystals_have_them(number, cod_least, preferred_most):
    """COD puts 99 % of triclinic and 89 % of monoclinic sites on general positions; the 3:1
    preference for the general position gives 60-70 % (P-1 has eight inversion centres,
    P2_1/c four)."""
    shares = {}
    for plan in ("prefer-general", "cod-system"):
        spec = RandomCrystalSpec(max_atoms=160, sites="cod-system", positions=plan)
        found = [_general_share(crystal) for crystal in _fitted([number] * 12, spec, 8)]
        assert len(found) >= 8, plan
        shares[plan] = float(np.mean(found))
    assert shares["cod-system"] >= cod_least, shares
    assert shares["prefer-general"] <= preferred_most, shares


def test_cell_plan_gives_high_symmetry_crystals_real_sizes():
    """COD's cubic structures have a median of 24 atoms in the conventional cell. Site counts
    alone (``"cod-system"``) let each site take a large orbit: about 70 atoms."""
    atoms = {"cod-system": [], "cod-cells": []}
    for plan in atoms:
        spec = RandomCrystalSpec(max_atoms=160, sites=plan, positions="cod-system")
        numbers = [225, 221, 227, 216, 229, 205, 194, 139, 166, 62] * 3
        atoms[plan] = [len(c.species) for c in _fitted(numbers, spec, 4, confirmed=False)]
    assert len(atoms["cod-cells"]) >= 20 and len(atoms["cod-system"]) >= 20
    assert max(atoms["cod-cells"]) <= 160
    assert np.median(atoms["cod-cells"]) <= 32
    assert np.median(atoms["cod-system"]) > 1.5 * np.median(atoms["cod-cells"])


def _more_symmetric_when_loose(crystal: RandomCrystal, tolerance: float = 0.5) -> bool:
    cell = crystal.spglib_cell()
    return symmetry_operations(*cell, tolerance) > symmetry_operations(*cell, 0.1)


def test_near_grid_crystals_keep_their_group_and_show_pseudo_symmetry():
    """COD: 13 % of structures show more symmetry at 0.5 Å than at 0.1 Å; uniformly placed
    random crystals 5 %, near-grid ones 14 % (scripts/pseudo_symmetry.py on all COD groups).
    Here on low-symmetry groups, where the difference is largest."""
    numbers = [1, 2, 4, 14, 15, 19, 33, 61, 62] * 5
    found = {}
    for share in (0.0, 1.0):
        spec = RandomCrystalSpec(max_atoms=160, sites="cod-cells", positions="cod-system",
                                 pseudo_symmetry=share)
        crystals = list(_fitted(numbers, spec, 12))  # spglib confirms each at 0.1 Å
        assert len(crystals) >= 30, share
        found[share] = np.mean([_more_symmetric_when_loose(c) for c in crystals])
    assert found[1.0] >= 0.08
    assert found[1.0] >= found[0.0] + 0.05, found


def test_near_grid_atoms_sit_near_grid_points():
    """In P1 every atom is its own orbit, so each coordinate is a grid point plus a small
    offset (standard deviation 0.015 of the cell edge); uniform placement is anywhere."""
    spec = RandomCrystalSpec(max_atoms=60, sites="cod-cells", pseudo_symmetry=1.0)
    cell = (10.0, 7.0, 5.0, 90.0, 90.0, 90.0)
    steps = _grid_steps(cell, spec, np.random.default_rng(4))
    assert steps is not None and steps.shape == (3,)
    spacing = np.asarray(cell[:3]) / steps
    assert np.all(spacing >= 2.2 / 1.5) and np.all(spacing <= 3.5 * 1.5)

    quarters = np.array([4, 4, 4])
    facts = [_element_facts("Mg", "cation"), _element_facts("O", "anion")]
    offsets = {}
    for grid in (quarters, None):
        crystal = _place(_tables(1), (8.0, 8.0, 8.0, 90.0, 90.0, 90.0), [[0] * 4, [0] * 6],
                         ["Mg", "O"], facts, np.random.default_rng(6), 50, grid)
        assert crystal is not None and len(crystal.species) == 10
        scaled = crystal.frac_coords * quarters
        offsets[grid is None] = np.abs(scaled - np.round(scaled)) / quarters
    assert np.median(offsets[False]) < 0.02
    assert np.median(offsets[True]) > 0.04  # a uniform coordinate: 0.0625 on average


def test_uniform_placement_draws_nothing_for_the_grid():
    """pseudo_symmetry 0 (the default) leaves the random stream alone, so every dataset
    made before the option existed comes out the same from its seed."""
    rng = np.random.default_rng(9)
    before = rng.bit_generator.state
    assert _grid_steps((8.0, 8.0, 8.0, 90.0, 90.0, 90.0), RandomCrystalSpec(), rng) is None
    assert rng.bit_generator.state == before
    with pytest.raises(ValueError, match="share of crystals"):
        RandomCrystalSpec(pseudo_symmetry=1.5)
    with pytest.raises(ValueError, match="fast engine"):
        generate_synthetic([2], spec=RandomCrystalSpec(pseudo_symmetry=0.5), engine="pyxtal")
