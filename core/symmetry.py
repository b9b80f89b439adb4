"""The 230 space groups: one table, built from spglib's database, and symbol lookups.

Everything else in the project that needs a space-group number, symbol, crystal system or
Laue class asks this module. Symbols are accepted in the spellings found in the wild
(``P2_1/c``, ``P21/c``, ``P 1 21/c 1``, ``Fm3m``, ``Fm-3m``) and in non-standard settings
(``P21/n``, ``Pbnm``, ``A2/a``, ``I2mb``), which all map to the standard number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import spglib

N_SPACE_GROUPS = 230

CRYSTAL_SYSTEMS: tuple[str, ...] = (
    "triclinic",
    "monoclinic",
    "orthorhombic",
    "tetragonal",
    "trigonal",
    "hexagonal",
    "cubic",
)

# The 14 Bravais lattices (Pearson symbols; S is any one-face centring, A, B or C).
BRAVAIS_LATTICES: tuple[str, ...] = (
    "aP", "mP", "mS", "oP", "oS", "oI", "oF", "tP", "tI", "hR", "hP", "cP", "cI", "cF",
)

# Highest space-group number of each crystal system (International Tables, vol. A).
_SYSTEM_LAST_NUMBER = (2, 15, 74, 142, 167, 194, 230)

# Laue class of each of the 32 crystallographic point groups.
_LAUE_CLASS = {
    "1": "-1", "-1": "-1",
    "2": "2/m", "m": "2/m", "2/m": "2/m",
    "222": "mmm", "mm2": "mmm", "mmm": "mmm",
    "4": "4/m", "-4": "4/m", "4/m": "4/m",
    "422": "4/mmm", "4mm": "4/mmm", "-42m": "4/mmm", "4/mmm": "4/mmm",
    "3": "-3", "-3": "-3",
    "32": "-3m", "3m": "-3m", "-3m": "-3m",
    "6": "6/m", "-6": "6/m", "6/m": "6/m",
    "622": "6/mmm", "6mm": "6/mmm", "-6m2": "6/mmm", "6/mmm": "6/mmm",
    "23": "m-3", "m-3": "m-3",
    "432": "m-3m", "-43m": "m-3m", "m-3m": "m-3m",
}

_N_HALL_SETTINGS = 530


class UnknownSpaceGroupError(ValueError):
    """A space-group number or symbol that does not name one of the 230 groups."""


@dataclass(frozen=True)
class SpaceGroup:
    """One of the 230 space groups in its standard setting.

    Attributes:
        number: International Tables number, 1-230.
        symbol: short Hermann-Mauguin symbol with underscores for screw axes (``P2_1/c``).
        full_symbol: full Hermann-Mauguin symbol (``P 1 2_1/c 1``).
        crystal_system: one of :data:`CRYSTAL_SYSTEMS`.
        point_group: Hermann-Mauguin point-group symbol (``2/m``).
        laue_class: Laue class (``2/m``).
    """

    number: int
    symbol: str
    full_symbol: str
    crystal_system: str
    point_group: str
    laue_class: str

    @property
    def crystal_system_index(self) -> int:
        return CRYSTAL_SYSTEMS.index(self.crystal_system)


def crystal_system_of(number: int) -> str:
    """Crystal system of space group ``number`` (1-230)."""
    _check_number(number)
    for system, last in zip(CRYSTAL_SYSTEMS, _SYSTEM_LAST_NUMBER):
        if number <= last:
            return system
    raise AssertionError("unreachable")


@lru_cache(maxsize=None)
def wyckoff_multiplicities(number: int) -> dict[str, int]:
    """Wyckoff letter -> multiplicity in the conventional cell, for space group ``number``
    (standard setting, from pyxtal's tables)."""
    from pyxtal.symmetry import Group

    _check_number(number)
    return {w.letter: int(w.multiplicity) for w in Group(int(number)).Wyckoff_positions}


def site_symmetry_order(number: int, letter: str) -> int:
    """Order of the site-symmetry group of Wyckoff position ``letter`` of space group
    ``number``: the general position's multiplicity over this one's (1 for the general
    position, 2 on an inversion centre of P-1, 48 on the origin of Fm-3m).

    Raises:
        KeyError: the group has no such letter.
    """
    multiplicities = wyckoff_multiplicities(number)
    if letter not in multiplicities:
        raise KeyError(f"space group {number} has no Wyckoff position {letter!r}")
    return max(multiplicities.values()) // multiplicities[letter]


def symmetry_operations(lattice: np.ndarray, frac_coords: np.ndarray, numbers: np.ndarray,
                        tolerance: float) -> int:
    """How many symmetry operations spglib finds for a cell at ``tolerance`` (Å), pure
    translations within the cell included (0 when it finds none).

    The same cell at a looser tolerance showing more operations means its atoms sit close
    to a more symmetric arrangement: pseudo-symmetry, common in real crystals.
    """
    dataset = spglib.get_symmetry_dataset(
        (np.asarray(lattice, float), np.asarray(frac_coords, float), np.asarray(numbers, int)),
        symprec=float(tolerance))
    return 0 if dataset is None else int(len(dataset.rotations))


@dataclass(frozen=True)
class Setting:
    """One of spglib's 530 Hall settings of a space group (the settings of International
    Tables: axis permutations, monoclinic cell choices, origin choices, hexagonal or
    rhombohedral axes), as operations on fractional coordinates x -> R x + t.

    Attributes:
        number: the space group's International Tables number.
        symbol: Hermann-Mauguin symbol of this setting (``P 1 21/n 1``).
        rotations: (n, 3, 3) integer matrices R, centring translations included (R = 1).
        translations: (n, 3) translations t.
    """

    number: int
    symbol: str
    rotations: np.ndarray
    translations: np.ndarray


@lru_cache(maxsize=1)
def settings() -> tuple[Setting, ...]:
    """Every Hall setting of every space group, in spglib's order."""
    table = []
    for hall in range(1, _N_HALL_SETTINGS + 1):
        sg_type = spglib.get_spacegroup_type(hall)
        operations = spglib.get_symmetry_from_database(hall)
        table.append(Setting(sg_type.number, sg_type.international_full,
                             np.asarray(operations["rotations"], dtype=np.int64),
                             np.asarray(operations["translations"], dtype=np.float64)))
    return tuple(table)


def _check_number(number: int) -> None:
    if not isinstance(number, (int, np.integer)) or not 1 <= int(number) <= N_SPACE_GROUPS:
        raise UnknownSpaceGroupError(f"space-group number must be 1-230, got {number!r}")


@lru_cache(maxsize=1)
def space_groups() -> tuple[SpaceGroup, ...]:
    """All 230 space groups, index ``n - 1`` holding number ``n``."""
    first_setting: dict[int, spglib.SpaceGroupType] = {}
    for hall in range(1, _N_HALL_SETTINGS + 1):
        sg_type = spglib.get_spacegroup_type(hall)
        first_setting.setdefault(sg_type.number, sg_type)
    table = []
    for number in range(1, N_SPACE_GROUPS + 1):
        sg_type = first_setting[number]
        point_group = sg_type.pointgroup_international.strip()
        table.append(
            SpaceGroup(
                number=number,
                symbol=sg_type.international_short,
                full_symbol=sg_type.international_full,
                crystal_system=crystal_system_of(number),
                point_group=point_group,
                laue_class=_LAUE_CLASS[point_group],
            )
        )
    return tuple(table)


def by_number(number: int) -> SpaceGroup:
    """The :class:`SpaceGroup` with International Tables ``number``."""
    _check_number(number)
    return space_groups()[int(number) - 1]


def _normalise(symbol: str) -> str:
    """Canonical spelling: no spaces or underscores, ``:1``/``:H`` suffixes dropped."""
    symbol = symbol.strip().split(":")[0]
    symbol = re.sub(r"[\s_]", "", symbol)
    return symbol[:1].upper() + symbol[1:]


def _drop_unit_axes(full_symbol: str) -> str:
    """``P 1 2_1/n 1`` -> ``P2_1/n`` (the short monoclinic spelling of a setting)."""
    parts = full_symbol.split()
    kept = [parts[0]] + [p for p in parts[1:] if p != "1"]
    return "".join(kept) if len(kept) > 1 else "".join(parts)


@lru_cache(maxsize=1)
def _symbol_index() -> tuple[dict[str, int], dict[str, set[int]]]:
    """Exact spellings -> number, and bar-less spellings -> candidate numbers."""
    exact: dict[str, int] = {}
    for hall in range(1, _N_HALL_SETTINGS + 1):
        sg_type = spglib.get_spacegroup_type(hall)
        spellings = {sg_type.international_short, sg_type.international_full,
                     _drop_unit_axes(sg_type.international_full)}
        spellings.update(part for part in sg_type.international.split("="))
        for spelling in spellings:
            exact.setdefault(_normalise(spelling), sg_type.number)
    for group in space_groups():
        exact[_normalise(group.symbol)] = group.number
    # Before 2002 the double glide 'e' was written as one of the two glides it combines
    # (Aba2 for Aea2, Cmca for Cmce); accept those spellings where they are unambiguous.
    for spelling, number in list(exact.items()):
        if "e" in spelling[1:]:
            for old in "abc":
                exact.setdefault(spelling[0] + spelling[1:].replace("e", old), number)
    barless: dict[str, set[int]] = {}
    for spelling, number in exact.items():
        barless.setdefault(spelling.replace("-", ""), set()).add(number)
    return exact, barless


def by_symbol(symbol: str) -> SpaceGroup:
    """Look a space group up by Hermann-Mauguin symbol in any common spelling or setting.

    Args:
        symbol: e.g. ``P2_1/c``, ``P21/n``, ``P 1 21/c 1``, ``Pbnm``, ``Fm3m`` (bar omitted, as
            RRUFF writes it), ``C-1`` (a centred triclinic cell), or a number as text (``"14"``).

    Returns:
        The standard-setting :class:`SpaceGroup`.

    Raises:
        UnknownSpaceGroupError: the symbol names no space group.
    """
    text = str(symbol).strip()
    if text.isdigit():
        return by_number(int(text))
    key = _normalise(text)
    if not key:
        raise UnknownSpaceGroupError("empty space-group symbol")
    exact, barless = _symbol_index()
    if key in exact:
        return by_number(exact[key])
    if key[0] in "ABCFIR" and key[1:] in ("1", "-1"):
        # A centred triclinic cell is a non-standard description of P1 or P-1.
        return by_number(1 if key[1:] == "1" else 2)
    candidates = barless.get(key.replace("-", ""), set())
    if len(candidates) == 1:
        return by_number(next(iter(candidates)))
    raise UnknownSpaceGroupError(f"unknown space-group symbol {symbol!r}")


def system_index_of_numbers(numbers: np.ndarray) -> np.ndarray:
    """Crystal-system index (into :data:`CRYSTAL_SYSTEMS`) for an array of numbers 1-230."""
    return np.searchsorted(np.asarray(_SYSTEM_LAST_NUMBER), np.asarray(numbers), side="left")


def system_membership() -> np.ndarray:
    """(230, 7) 0/1 matrix: row ``n - 1`` has a 1 in the column of group ``n``'s system.

    Multiplying space-group probabilities by it gives crystal-system probabilities.
    """
    membership = np.zeros((N_SPACE_GROUPS, len(CRYSTAL_SYSTEMS)), dtype=np.float32)
    membership[np.arange(N_SPACE_GROUPS), system_index_of_numbers(np.arange(1, 231))] = 1.0
    return membership


def bravais_lattice_of(number: int) -> str:
    """Bravais lattice (a Pearson symbol of :data:`BRAVAIS_LATTICES`) of space group ``number``:
    the crystal family's letter and the centring of the standard setting; trigonal groups with
    a primitive cell share ``hP`` with the hexagonal ones."""
    group = by_number(number)
    centring = group.symbol[0]
    family = {"triclinic": "a", "monoclinic": "m", "orthorhombic": "o", "tetragonal": "t",
              "trigonal": "h", "hexagonal": "h", "cubic": "c"}[group.crystal_system]
    return family + ("S" if centring in "ABC" else centring)


@lru_cache(maxsize=1)
def _bravais_membership() -> np.ndarray:
    membership = np.zeros((N_SPACE_GROUPS, len(BRAVAIS_LATTICES)), dtype=np.float32)
    for number in range(1, N_SPACE_GROUPS + 1):
        membership[number - 1, BRAVAIS_LATTICES.index(bravais_lattice_of(number))] = 1.0
    return membership


def bravais_membership() -> np.ndarray:
    """(230, 14) 0/1 matrix: row ``n - 1`` has a 1 in the column of group ``n``'s Bravais
    lattice; multiplying space-group probabilities by it gives lattice probabilities."""
    return _bravais_membership().copy()
