"""The space-group table and symbol lookups, checked against International Tables facts and
against every symbol spelling in the shared RRUFF and COD label files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from tests.conftest import COD_CIFS, RRUFF_DEV, needs_cod, needs_rruff

from core.symmetry import (
    BRAVAIS_LATTICES,
    CRYSTAL_SYSTEMS,
    UnknownSpaceGroupError,
    bravais_lattice_of,
    bravais_membership,
    by_number,
    by_symbol,
    crystal_system_of,
    site_symmetry_order,
    space_groups,
    symmetry_operations,
    system_index_of_numbers,
    system_membership,
)

# (first, last) space-group number of each crystal system.
SYSTEM_RANGES = {
    "triclinic": (1, 2), "monoclinic": (3, 15), "orthorhombic": (16, 74),
    "tetragonal": (75, 142), "trigonal": (143, 167), "hexagonal": (168, 194),
    "cubic": (195, 230),
}


def test_table_has_230_groups_numbered_in_order():
    groups = space_groups()
    assert len(groups) == 230
    assert [g.number for g in groups] == list(range(1, 231))
    assert len({g.symbol for g in groups}) == 230
    assert CRYSTAL_SYSTEMS == tuple(SYSTEM_RANGES)


@pytest.mark.parametrize("system", list(SYSTEM_RANGES))
def test_crystal_system_boundaries(system):
    first, last = SYSTEM_RANGES[system]
    assert by_number(first).crystal_system == system
    assert by_number(last).crystal_system == system
    assert crystal_system_of(last) == system
    if last < 230:
        assert by_number(last + 1).crystal_system != system
    if first > 1:
        assert by_number(first - 1).crystal_system != system
    assert by_number(first).crystal_system_index == CRYSTAL_SYSTEMS.index(system)


def test_every_group_belongs_to_its_range():
    for group in space_groups():
        first, last = SYSTEM_RANGES[group.crystal_system]
        assert first <= group.number <= last


@pytest.mark.parametrize("number, symbol, point_group, laue", [
    (1, "P1", "1", "-1"), (2, "P-1", "-1", "-1"), (14, "P2_1/c", "2/m", "2/m"),
    (62, "Pnma", "mmm", "mmm"), (139, "I4/mmm", "4/mmm", "4/mmm"), (148, "R-3", "-3", "-3"),
    (167, "R-3c", "-3m", "-3m"), (194, "P6_3/mmc", "6/mmm", "6/mmm"), (205, "Pa-3", "m-3", "m-3"),
    (216, "F-43m", "-43m", "m-3m"), (225, "Fm-3m", "m-3m", "m-3m"), (227, "Fd-3m", "m-3m", "m-3m"),
])
def test_known_groups(number, symbol, point_group, laue):
    group = by_number(number)
    assert group.symbol == symbol
    assert group.point_group == point_group
    assert group.laue_class == laue


def test_eleven_laue_classes():
    assert len({g.laue_class for g in space_groups()}) == 11
    assert len({g.point_group for g in space_groups()}) == 32


@pytest.mark.parametrize("symbol, number", [
    ("P2_1/c", 14), ("P21/c", 14), ("P 1 21/c 1", 14), ("P 1 2_1/c 1", 14), ("Fm3m", 225),
    ("Fm-3m", 225), ("P21/n", 14), ("Pbnm", 62), ("Pnma", 62), ("A2/a", 15), ("C2/c", 15),
    ("I2mb", 46), ("C-1", 2), ("Aba2", 41), ("Cmca", 64), ("Cmce", 64), ("P3", 143),
    ("P-3", 147), ("14", 14), (" 225 ", 225), ("p21/c", 14), ("R-3c:H", 167), ("Ia-3d", 230),
    ("P6_3/mmc", 194), ("P63/mmc", 194), ("I41/amd", 141),
])
def test_by_symbol_spellings(symbol, number):
    assert by_symbol(symbol).number == number


@pytest.mark.parametrize("symbol", ["Xyz", "", "   ", "P99", "Q2/m", "hello world"])
def test_unknown_symbol_raises(symbol):
    with pytest.raises(UnknownSpaceGroupError):
        by_symbol(symbol)


@pytest.mark.parametrize("number", [0, 231, -1, 1000, 2.5, "14"])
def test_bad_number_raises(number):
    with pytest.raises(UnknownSpaceGroupError):
        by_number(number)


def test_unknown_number_text_raises():
    with pytest.raises(UnknownSpaceGroupError):
        by_symbol("0")
    with pytest.raises(UnknownSpaceGroupError):
        by_symbol("231")


def test_system_index_and_membership():
    numbers = np.arange(1, 231)
    index = system_index_of_numbers(numbers)
    expected = [CRYSTAL_SYSTEMS.index(by_number(int(n)).crystal_system) for n in numbers]
    assert index.tolist() == expected
    membership = system_membership()
    assert membership.shape == (230, 7)
    np.testing.assert_array_equal(membership.sum(axis=1), np.ones(230))
    assert membership.argmax(axis=1).tolist() == expected
    assert membership.sum(axis=0).tolist() == [last - first + 1 for first, last in SYSTEM_RANGES.values()]


@pytest.mark.parametrize("number, lattice", [
    (1, "aP"), (2, "aP"), (14, "mP"), (15, "mS"), (12, "mS"), (9, "mS"), (38, "oS"),
    (63, "oS"), (70, "oF"), (71, "oI"), (62, "oP"), (88, "tI"), (136, "tP"), (148, "hR"),
    (160, "hR"), (164, "hP"), (194, "hP"), (221, "cP"), (225, "cF"), (230, "cI"),
])
def test_bravais_lattice_of_known_groups(number, lattice):
    assert bravais_lattice_of(number) == lattice


def test_bravais_membership_counts_the_groups_of_each_lattice():
    membership = bravais_membership()
    assert membership.shape == (230, 14) and len(set(BRAVAIS_LATTICES)) == 14
    np.testing.assert_array_equal(membership.sum(axis=1), np.ones(230))
    # International Tables, vol. A: space groups per Bravais lattice.
    counts = {"aP": 2, "mP": 8, "mS": 5, "oP": 30, "oS": 15, "oI": 9, "oF": 5, "tP": 49,
              "tI": 19, "hR": 7, "hP": 45, "cP": 15, "cI": 10, "cF": 11}
    assert dict(zip(BRAVAIS_LATTICES, membership.sum(axis=0).astype(int).tolist())) == counts
    # Every lattice but hP (trigonal and hexagonal) lies within one crystal system.
    systems = system_membership().T @ membership
    assert [int((systems[:, j] > 0).sum()) for j in range(14)] == \
        [2 if name == "hP" else 1 for name in BRAVAIS_LATTICES]
    membership[0, 0] = 5.0  # a copy: the module's table is unchanged
    assert bravais_membership()[0, 0] == 1.0


def _assert_symbols_map(table: pd.DataFrame, column: str) -> None:
    wrong = []
    for symbol, number in zip(table[column], table["sg_number"]):
        try:
            found = by_symbol(str(symbol)).number
        except UnknownSpaceGroupError as exc:
            found = str(exc)
        if found != int(number):
            wrong.append((symbol, int(number), found))
    assert not wrong, wrong


@needs_rruff
def test_rruff_labels_symbols_map_to_their_numbers():
    table = pd.read_csv(RRUFF_DEV / "labels.csv")
    assert len(table) > 100
    _assert_symbols_map(table, "sg_symbol_dif")


@needs_cod
def test_cod_labels_symbols_map_to_their_numbers():
    table = pd.read_csv(COD_CIFS / "labels.csv")
    assert len(table) > 100
    _assert_symbols_map(table, "sg_symbol")


@pytest.mark.parametrize("number, letter, order", [
    (2, "i", 1), (2, "a", 2),          # P-1: general position, an inversion centre
    (14, "e", 1), (14, "a", 2),        # P2_1/c
    (62, "d", 1), (62, "c", 2),        # Pnma: the mirror-plane site 4c
    (225, "l", 1), (225, "a", 48), (225, "e", 8),  # Fm-3m: 192l, 4a, 24e
    (227, "a", 24),                    # Fd-3m: 8a, general 192i
])
def test_site_symmetry_order(number, letter, order):
    assert site_symmetry_order(number, letter) == order


def test_site_symmetry_order_of_a_missing_letter_raises():
    with pytest.raises(KeyError, match="no Wyckoff position 'z'"):
        site_symmetry_order(2, "z")
    with pytest.raises(UnknownSpaceGroupError):
        site_symmetry_order(231, "a")


def test_symmetry_operations_count_pseudo_symmetry():
    """Rock salt's conventional cell has 48 x 4 operations; one Na moved 0.3 Å loses most of
    them at 0.1 Å and finds them again at 0.5 Å."""
    fcc = np.array([[0, 0, 0], [0, .5, .5], [.5, 0, .5], [.5, .5, 0]])
    coords = np.concatenate([fcc, (fcc + 0.5) % 1])
    lattice = np.eye(3) * 5.64
    numbers = [11] * 4 + [17] * 4
    assert symmetry_operations(lattice, coords, numbers, 0.1) == 192
    moved = coords.copy()
    moved[1, 0] += 0.3 / 5.64
    assert symmetry_operations(lattice, moved, numbers, 0.1) < 192
    assert symmetry_operations(lattice, moved, numbers, 0.5) == 192
