"""Structures in: CIF files (good and bad), pymatgen's bundled set, random pyxtal crystals."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure
from pymatgen.io.cif import CifWriter
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from core.structures import (
    ANIONS,
    CATIONS,
    MAX_SITES,
    RandomCrystalSpec,
    StructureReadError,
    CELL_JITTER,
    bundled_structures,
    cell_size_probabilities,
    planned_cell,
    planned_sites,
    position_weights,
    random_crystal,
    random_crystals,
    read_cif,
    read_cif_folder,
    site_count_probabilities,
    site_order_probabilities,
    space_groups_of_systems,
)

SMALL = RandomCrystalSpec(max_atoms=24)


def rock_salt() -> Structure:
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"],
                                     [[0, 0, 0], [0.5, 0.5, 0.5]])


def rock_salt_cif(symprec: float | None = 0.1) -> str:
    return str(CifWriter(rock_salt(), symprec=symprec))


def space_group(structure: Structure) -> int:
    return SpacegroupAnalyzer(structure, symprec=0.1).get_space_group_number()


def test_read_cif_path_and_bytes(tmp_path):
    path = tmp_path / "NaCl.cif"
    path.write_text(rock_salt_cif())
    for structure in (read_cif(path), read_cif(path.read_bytes(), name="NaCl.cif")):
        assert structure.composition.reduced_formula == "NaCl"
        assert len(structure) == 8
        assert space_group(structure) == 225
        assert structure.lattice.a == pytest.approx(5.64)


def test_read_p1_cif():
    structure = read_cif(rock_salt_cif(symprec=None).encode(), name="p1.cif")
    assert space_group(structure) == 225


@pytest.mark.parametrize("content, reason", [
    (b"", "empty"),
    (b"   \n\n", "empty"),
    (b"hello, this is a text file\nwith two lines\n", "not a CIF"),
    (b"\xff\xfe\x00binary\x00\x01", "cannot read"),
])
def test_read_cif_bad_content_names_the_file(tmp_path, content, reason):
    path = tmp_path / "broken.cif"
    path.write_bytes(content)
    with pytest.raises(StructureReadError) as info:
        read_cif(path)
    assert "broken.cif" in str(info.value)
    assert reason in str(info.value)
    with pytest.raises(StructureReadError, match="upload.cif"):
        read_cif(content, name="upload.cif")


@pytest.mark.parametrize("keep", [0.5, 0.93])
def test_read_truncated_cif(tmp_path, keep):
    text = rock_salt_cif(symprec=None)
    path = tmp_path / "truncated.cif"
    path.write_text(text[:int(len(text) * keep)])
    with pytest.raises(StructureReadError, match="truncated.cif"):
        read_cif(path)


def test_read_missing_file(tmp_path):
    with pytest.raises(StructureReadError, match="nothere.cif"):
        read_cif(tmp_path / "nothere.cif")


def test_read_cif_folder_lists_failures(tmp_path):
    (tmp_path / "a_good.cif").write_text(rock_salt_cif())
    (tmp_path / "b_empty.cif").write_text("")
    (tmp_path / "c_text.cif").write_text("not a crystal at all\n")
    (tmp_path / "d_good.cif").write_text(rock_salt_cif(symprec=None))
    (tmp_path / "ignored.txt").write_text(rock_salt_cif())
    batch = read_cif_folder(tmp_path)
    assert batch.names == ["a_good.cif", "d_good.cif"]
    assert len(batch.structures) == 2
    assert [name for name, _ in batch.failures] == ["b_empty.cif", "c_text.cif"]
    assert all(name in reason for name, reason in batch.failures)


def test_read_empty_folder(tmp_path):
    batch = read_cif_folder(tmp_path)
    assert batch.structures == [] and batch.failures == []


def test_bundled_structures():
    batch = bundled_structures()
    assert len(batch.structures) >= 10
    assert len(batch.structures) == len(batch.names)
    assert "Si" in batch.names
    assert not any("Interface" in name for name in batch.names)
    si = batch.structures[batch.names.index("Si")]
    assert space_group(si) == 227


@pytest.mark.parametrize("number, seed", [(2, 0), (14, 0), (62, 0), (225, 0)])
def test_random_crystal_has_requested_group(number, seed):
    structure = random_crystal(number, np.random.default_rng(seed), SMALL)
    assert isinstance(structure, Structure)
    assert 0 < len(structure) <= SMALL.max_atoms
    assert space_group(structure) == number
    elements = {str(e) for e in structure.composition.elements}
    assert elements <= set(ANIONS) | set(CATIONS)


def test_random_crystal_is_deterministic():
    first = random_crystal(14, np.random.default_rng(7), SMALL)
    second = random_crystal(14, np.random.default_rng(7), SMALL)
    other = random_crystal(14, np.random.default_rng(8), SMALL)
    assert first.composition == second.composition
    np.testing.assert_allclose(first.lattice.parameters, second.lattice.parameters)
    np.testing.assert_allclose(first.frac_coords, second.frac_coords)
    assert not (first.composition == other.composition
                and np.allclose(first.lattice.parameters, other.lattice.parameters))


def test_random_crystal_respects_species_spec():
    spec = RandomCrystalSpec(max_atoms=16, anions={"S": 1.0}, cations={"Zn": 1.0})
    structure = random_crystal(216, np.random.default_rng(3), spec)
    assert {str(e) for e in structure.composition.elements} <= {"Zn", "S"}


def test_random_crystal_impossible_raises():
    # Group 229's smallest orbit has 2 atoms; a 1-atom budget leaves no composition.
    with pytest.raises(RuntimeError, match="space group 229"):
        random_crystal(229, np.random.default_rng(0), RandomCrystalSpec(max_atoms=1), attempts=2)


def test_random_crystals_counts_failures_and_is_reproducible():
    batch = random_crystals([2, 229, 14], seed=5, spec=RandomCrystalSpec(max_atoms=1))
    # With one atom at most, only P1-like single sites are possible: group 2 allows a
    # 1-fold special position, 14 and 229 do not.
    assert len(batch.structures) + len(batch.failures) == 3
    assert {name for name, _ in batch.failures} >= {"sg229", "sg14"}
    again = random_crystals([2, 14], seed=1, spec=SMALL)
    twice = random_crystals([2, 14], seed=1, spec=SMALL)
    assert again.names == twice.names == ["random-sg2-1-0", "random-sg14-1-1"]
    for a, b in zip(again.structures, twice.structures):
        assert a.composition == b.composition
        np.testing.assert_allclose(a.frac_coords, b.frac_coords)


def test_space_groups_of_systems():
    assert space_groups_of_systems(["triclinic"]) == [1, 2]
    assert space_groups_of_systems(["cubic", "triclinic"]) == [1, 2, *range(195, 231)]
    assert len(space_groups_of_systems(["monoclinic", "orthorhombic"])) == 13 + 59
    assert space_groups_of_systems([]) == []


def test_site_counts_follow_cod():
    p = site_count_probabilities()
    assert p.shape == (MAX_SITES,) and p.sum() == pytest.approx(1.0) and (p > 0).all()
    # COD: binaries and ternaries with two or three sites are the most common ...
    assert p.argmax() + 1 == 2
    # ... and 15 % have more than MAX_SITES sites (folded into the last).
    assert 0.1 < p[-1] < 0.3


def test_planned_sites_give_every_species_a_site_and_the_anion_more():
    rng = np.random.default_rng(0)
    assert planned_sites(3, RandomCrystalSpec(), rng) is None  # "few" draws per species
    plans = [planned_sites(3, RandomCrystalSpec(sites="cod"), rng) for _ in range(3000)]
    assert all(len(plan) == 3 and min(plan) >= 1 and sum(plan) <= MAX_SITES for plan in plans)
    totals = np.array([sum(plan) for plan in plans])
    assert 3 <= np.median(totals) <= 6 and np.percentile(totals, 90) >= 15
    per_species = np.mean(plans, axis=0)
    assert per_species[2] > 1.5 * per_species[0]


def test_site_counts_per_crystal_system_follow_cod():
    median = {}
    for system in ("triclinic", "monoclinic", "orthorhombic", "tetragonal", "trigonal",
                   "hexagonal", "cubic"):
        p = site_count_probabilities(system)
        assert p.shape == (MAX_SITES,) and p.sum() == pytest.approx(1.0) and (p > 0).all()
        median[system] = int(np.searchsorted(np.cumsum(p), 0.5)) + 1
    # COD: low-symmetry structures have many more independent sites than cubic ones.
    assert median["triclinic"] >= 15 and median["monoclinic"] >= 8
    assert median["cubic"] <= 3 and median["tetragonal"] <= 4
    with pytest.raises(ValueError, match="crystal system"):
        site_count_probabilities("icosahedral")


def test_system_site_plan_follows_the_crystal_system():
    rng = np.random.default_rng(1)
    spec = RandomCrystalSpec(sites="cod-system")
    with pytest.raises(ValueError, match="crystal system"):
        planned_sites(2, spec, rng)
    totals = {system: [sum(planned_sites(2, spec, rng, system)) for _ in range(2000)]
              for system in ("triclinic", "cubic")}
    assert np.median(totals["triclinic"]) >= 15 and np.median(totals["cubic"]) <= 3
    # The all-COD plan ignores the system.
    assert planned_sites(2, RandomCrystalSpec(sites="cod"), np.random.default_rng(4), "cubic") \
        == planned_sites(2, RandomCrystalSpec(sites="cod"), np.random.default_rng(4))


def test_cell_sizes_per_crystal_system_follow_cod():
    """COD (numbers only): median 24 atoms in a cubic conventional cell, 47 monoclinic."""
    medians = {}
    for system in ("triclinic", "monoclinic", "orthorhombic", "tetragonal", "trigonal",
                   "hexagonal", "cubic"):
        sites, atoms, p = cell_size_probabilities(system)
        assert p.sum() == pytest.approx(1.0) and (p > 0).all()
        assert (sites >= 1).all() and (atoms >= sites).all()  # each site holds an atom at least
        medians[system] = atoms[np.searchsorted(np.cumsum(p), 0.5)]
    assert medians["cubic"] <= 32 and medians["monoclinic"] >= 36
    with pytest.raises(ValueError):  # shared through the cache, so read-only
        cell_size_probabilities("cubic")[2][0] = 1.0
    with pytest.raises(ValueError, match="crystal system"):
        cell_size_probabilities("icosahedral")


def test_cell_plan_draws_sites_and_atom_budget_together():
    # The other plans: planned_sites' draw and the spec's budget, unchanged.
    for plan in ("few", "cod", "cod-system"):
        spec = RandomCrystalSpec(max_atoms=100, sites=plan)
        assert planned_cell(2, spec, np.random.default_rng(3), "cubic") == \
            (planned_sites(2, spec, np.random.default_rng(3), "cubic"), 100)
    spec = RandomCrystalSpec(max_atoms=160, sites="cod-cells")
    rng = np.random.default_rng(2)
    drawn = {system: [planned_cell(2, spec, rng, system) for _ in range(3000)]
             for system in ("cubic", "monoclinic")}
    for system, plans in drawn.items():
        sites, atoms, _ = cell_size_probabilities(system)
        for planned, budget in plans:
            assert len(planned) == 2 and min(planned) >= 1 and sum(planned) <= MAX_SITES
            assert 2 <= budget <= 160
        # Every budget is one of COD's atom counts (the system's, or, by the smoothing, any
        # system's), jittered, or the floor of one atom per species.
        for _, budget in plans[:300]:
            assert budget == 2 or np.any((budget >= np.floor(atoms * CELL_JITTER[0]))
                                         & (budget <= np.ceil(atoms * CELL_JITTER[1])))
    cubic = np.median([b for _, b in drawn["cubic"]])
    monoclinic = np.median([b for _, b in drawn["monoclinic"]])
    assert cubic <= 36 and monoclinic >= 36
    # Sites and atoms come from the same structure: cubic crystals with one or two sites get
    # small budgets, those with many sites large ones.
    few = [b for p, b in drawn["cubic"] if sum(p) <= 2]
    many = [b for p, b in drawn["cubic"] if sum(p) >= 6]
    assert np.median(few) < np.median(many)
    # The budget never drops below one smallest orbit per species, nor exceeds max_atoms.
    for _ in range(200):
        _, budget = planned_cell(3, spec, rng, "cubic", smallest=24)
        assert budget >= 72
    small = RandomCrystalSpec(max_atoms=10, sites="cod-cells")
    assert all(planned_cell(2, small, rng, "monoclinic")[1] <= 10 for _ in range(200))
    assert CELL_JITTER[0] < 1 < CELL_JITTER[1]
    with pytest.raises(ValueError, match="crystal system"):
        planned_sites(2, spec, rng)


def test_unknown_site_plan_is_refused():
    with pytest.raises(ValueError, match="sites"):
        RandomCrystalSpec(sites="many")


def test_pyxtal_crystals_with_cod_sites_are_larger():
    spec = RandomCrystalSpec(max_atoms=48, sites="cod")
    sizes = {"few": [], "cod": []}
    for plan, spec_ in (("few", RandomCrystalSpec(max_atoms=48)), ("cod", spec)):
        rng = np.random.default_rng(5)
        for _ in range(12):
            sizes[plan].append(len(random_crystal(2, rng, spec_)))
    assert max(sizes["cod"]) <= 48
    assert np.mean(sizes["cod"]) > np.mean(sizes["few"])


def test_site_orders_per_crystal_system_follow_cod():
    for system in ("triclinic", "monoclinic", "orthorhombic", "tetragonal", "trigonal",
                   "hexagonal", "cubic"):
        p = site_order_probabilities(system)
        assert sum(p.values()) == pytest.approx(1.0) and min(p.values()) > 0
    # COD: triclinic sites are nearly all general, most cubic ones are special.
    assert site_order_probabilities("triclinic")[1] > 0.95
    assert site_order_probabilities("monoclinic")[1] > 0.8
    assert site_order_probabilities("cubic")[1] < 0.3
    assert site_order_probabilities("cubic")[48] > site_order_probabilities("orthorhombic")[48]
    with pytest.raises(TypeError):  # shared through the cache, so read-only
        site_order_probabilities("cubic")[1] = 1.0
    with pytest.raises(ValueError, match="crystal system"):
        site_order_probabilities("icosahedral")


def test_position_weights():
    # P-1: the general position and the eight inversion centres.
    orders = [1] + [2] * 8
    old = position_weights(orders, RandomCrystalSpec())
    assert old.tolist() == [3.0] + [1.0] * 8  # how train_v3 to train_v5 were made
    cod = RandomCrystalSpec(positions="cod-system")
    weights = position_weights(orders, cod, "triclinic")
    share = weights / weights.sum()
    assert share[0] > 0.95 and np.allclose(share[1:], share[1])  # centres share evenly
    # One centre on offer gets what eight shared: COD's share of order-2 sites is per order.
    single = position_weights([1, 2], cod, "triclinic")
    assert single[1] == pytest.approx(8 * weights[1])
    # An order COD never showed for the system stays possible.
    assert position_weights([1, 48], cod, "monoclinic")[1] > 0
    with pytest.raises(ValueError, match="crystal system"):
        position_weights(orders, cod)


def test_unknown_position_plan_is_refused():
    with pytest.raises(ValueError, match="positions"):
        RandomCrystalSpec(positions="random")


def test_pyxtal_crystals_take_cod_site_symmetries():
    """P2_1/c (general 4e, inversion centres 2a-2d): COD puts 89 % of monoclinic sites on
    general positions. The COD plan hands pyxtal the positions it chose; the old plan drew
    only the atom counts and let pyxtal place them (about two thirds general here)."""
    general = {}
    for plan in ("prefer-general", "cod-system"):
        spec = RandomCrystalSpec(max_atoms=48, sites="cod", positions=plan)
        rng = np.random.default_rng(6)
        letters = []
        for _ in range(10):
            structure = random_crystal(14, rng, spec)
            symmetrized = SpacegroupAnalyzer(structure, symprec=0.01).get_symmetrized_structure()
            letters += [symmetrized.wyckoff_letters[orbit[0]]
                        for orbit in symmetrized.equivalent_indices]
        general[plan] = np.mean([letter == "e" for letter in letters])
    assert general["cod-system"] > 0.8
    assert general["cod-system"] > general["prefer-general"] + 0.15


def test_pyxtal_crystals_take_cod_cell_sizes():
    """The pyxtal engine fills the same atom budget as the fast one."""
    spec = RandomCrystalSpec(max_atoms=160, sites="cod-cells", positions="cod-system")
    rng = np.random.default_rng(7)
    sizes = [len(random_crystal(225, rng, spec)) for _ in range(8)]
    rng = np.random.default_rng(7)
    system_sizes = [len(random_crystal(225, rng, RandomCrystalSpec(
        max_atoms=160, sites="cod-system", positions="cod-system"))) for _ in range(8)]
    assert max(sizes) <= 160 and np.median(sizes) <= 32
    assert np.median(system_sizes) > np.median(sizes)
