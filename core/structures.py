"""Crystal structures in: CIF files and folders, pymatgen's bundled structures, and random
symmetric crystals from pyxtal.

The random crystals aim at the chemistry and cell sizes of real inorganic solids rather than
at toy cells: mostly oxides and other anion-centred compounds, two to four species, several
independent sites on general positions where the group allows it.
"""

from __future__ import annotations

import io
import json
import logging
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType

import numpy as np
from pymatgen.core import Structure

from core.symmetry import crystal_system_of

logger = logging.getLogger(__name__)

# Anions and their relative frequency in inorganic crystal databases (rounded, per structure).
ANIONS: dict[str, float] = {"O": 0.62, "S": 0.09, "F": 0.07, "Cl": 0.05, "Se": 0.03,
                            "N": 0.03, "P": 0.03, "As": 0.02, "Br": 0.02, "Te": 0.02,
                            "I": 0.01, "C": 0.01}
# Cations weighted roughly by how often they occur in minerals and inorganic structures.
CATIONS: dict[str, float] = {
    "Si": 8, "Al": 6, "Fe": 6, "Mg": 5, "Ca": 6, "Na": 5, "K": 4, "Mn": 3, "Ti": 3, "Cu": 4,
    "Zn": 3, "Pb": 3, "Ba": 3, "Sr": 2, "Li": 3, "B": 3, "Ni": 2, "Co": 2, "Cr": 2, "V": 2,
    "Zr": 1.5, "Y": 1, "La": 1.5, "Ce": 1, "Nd": 1, "Bi": 2, "Sb": 1.5, "Sn": 1.5, "Ag": 1.5,
    "Hg": 1, "Cd": 1, "Mo": 1.5, "W": 1.5, "Nb": 1, "Ta": 0.5, "U": 1, "Be": 1, "Ga": 1,
    "Ge": 1, "In": 0.5, "Rb": 0.5, "Cs": 1, "Tl": 0.5, "Sc": 0.5, "H": 0,
}


# How a random crystal's independent sites are counted (RandomCrystalSpec.sites).
SITE_PLANS = ("few", "cod", "cod-system", "cod-cells")
# How each site's Wyckoff position is chosen (RandomCrystalSpec.positions).
POSITION_PLANS = ("prefer-general", "cod-system")

MIN_CELL_VOLUME = 1.0  # Å³; the smallest real cells hold about 5 Å³


class StructureReadError(ValueError):
    """A structure file that could not be read; the message names the file and the reason."""


def read_cif(source: str | Path | bytes, name: str | None = None) -> Structure:
    """Read the first structure of a CIF.

    Args:
        source: a path, or the file's bytes.
        name: how to name the file in errors (defaults to the path).

    Raises:
        StructureReadError: unreadable, empty or not a CIF with a structure, or a cell with
            non-finite or degenerate (under 1 Å³) dimensions.
    """
    from pymatgen.io.cif import CifParser

    label = name or (str(source) if not isinstance(source, bytes) else "<upload>")
    try:
        text = source.decode("utf-8", errors="strict") if isinstance(source, bytes) \
            else Path(source).read_text(encoding="utf-8", errors="strict")
    except (OSError, UnicodeDecodeError) as exc:
        raise StructureReadError(f"{label}: cannot read as a text CIF ({exc.__class__.__name__})") from exc
    if not text.strip():
        raise StructureReadError(f"{label}: the file is empty")
    if "_cell_length_a" not in text and "_atom_site" not in text:
        raise StructureReadError(f"{label}: not a CIF (no cell or atom-site data)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            structures = CifParser(io.StringIO(text)).parse_structures(primitive=False)
    except Exception as exc:  # pymatgen raises many types for malformed CIFs
        raise StructureReadError(f"{label}: invalid CIF ({exc})") from exc
    if not structures:
        raise StructureReadError(f"{label}: the CIF contains no complete structure")
    structure = structures[0]
    # spglib (used to simulate) crashes the whole process on a non-finite or flat cell.
    matrix, coords = np.asarray(structure.lattice.matrix), np.asarray(structure.frac_coords)
    volume = abs(float(np.linalg.det(matrix))) if np.isfinite(matrix).all() else float("nan")
    if not (np.isfinite(coords).all() and volume >= MIN_CELL_VOLUME):
        cell = " ".join(f"{v:g}" for v in structure.lattice.parameters)
        raise StructureReadError(f"{label}: impossible unit cell (a b c α β γ = {cell}, "
                                 f"volume {volume:g} Å³)")
    return structure


@dataclass
class StructureBatch:
    """Structures with names, plus the inputs that failed and why."""

    structures: list[Structure] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)


def read_cif_folder(folder: str | Path, pattern: str = "*.cif") -> StructureBatch:
    """Read every CIF in ``folder``; unreadable ones are listed in ``failures``, not raised."""
    batch = StructureBatch()
    for path in sorted(Path(folder).glob(pattern)):
        try:
            batch.structures.append(read_cif(path))
            batch.names.append(path.name)
        except StructureReadError as exc:
            batch.failures.append((path.name, str(exc)))
    return batch


def bundled_structures() -> StructureBatch:
    """The structures pymatgen ships as JSON files (a few dozen common compounds)."""
    import pymatgen.util

    batch = StructureBatch()
    folder = Path(pymatgen.util.__file__).parent / "structures"
    for path in sorted(folder.glob("*.json")):
        if "Interface" in path.stem:  # a slab, not a bulk crystal
            continue
        try:
            batch.structures.append(Structure.from_file(path))
            batch.names.append(path.stem)
        except Exception as exc:  # a file of the installed pymatgen we cannot parse
            batch.failures.append((path.name, str(exc)))
    return batch


@dataclass(frozen=True)
class RandomCrystalSpec:
    """What a random crystal may look like.

    Attributes:
        max_atoms: most atoms in the conventional cell.
        anions: element -> weight for the anion (dropped when ``cations_only``).
        cations: element -> weight for the other species.
        volume_factor: pyxtal's packing factor (1.0 is about the sum of atomic volumes).
        sites: how many symmetry-independent sites a crystal gets. ``"few"``: one or two per
            species, up to three for the anion (median 4; how ``train_v3`` was made).
            ``"cod"``: the total is drawn from the counts in COD structures (median 5, a long
            tail of large cells; :func:`planned_sites`), as far as ``max_atoms`` allows.
            ``"cod-system"``: drawn from the COD counts of the crystal's own crystal system
            (median 22 independent sites for triclinic structures, 11 monoclinic, 2 cubic;
            ``"cod"`` gives every system the same spread). ``"cod-cells"``: the site count
            and the number of atoms in the conventional cell of one COD structure of the
            same crystal system, drawn together (:func:`planned_cell`); the atom count, give
            or take 15 %, is the budget the Wyckoff positions fill. Site counts alone let a
            high-symmetry crystal put every site on a large orbit: ``"cod-system"`` crystals
            have a median of 70 atoms in a cubic cell where COD has 24.
        positions: how each site's Wyckoff position is chosen. ``"prefer-general"``: the
            general position three times as likely as each special one (how ``train_v3`` to
            ``train_v5`` were made). ``"cod-system"``: as often as COD's structures of the
            same crystal system put a site on a position of that site-symmetry order (99 %
            of triclinic sites are general, 16 % of cubic ones; :func:`position_weights`).
            pyxtal is then given the chosen positions; under ``"prefer-general"`` it is
            given only the atom counts and places them itself, as before.
        pseudo_symmetry: the chance (0 to 1) that a drawn cell's atoms sit near the points
            of a fine grid instead of anywhere (fast engine only;
            :data:`PSEUDO_SYMMETRY_SPACING`, :data:`PSEUDO_SYMMETRY_SHIFT`). Near-grid draws
            fit less often, so a little less than that share of the crystals that come out
            are near-grid. Real crystals are often slightly distorted versions of more
            symmetric ones: at a loose tolerance (0.5 Å) spglib finds more symmetry
            operations in 13 % of COD structures, 5 % of uniformly placed random crystals
            and 14 % of near-grid ones (``scripts/pseudo_symmetry.py``).
    """

    max_atoms: int = 72
    anions: dict[str, float] = field(default_factory=lambda: dict(ANIONS))
    cations: dict[str, float] = field(default_factory=lambda: dict(CATIONS))
    volume_factor: float = 1.1
    sites: str = "few"
    positions: str = "prefer-general"
    pseudo_symmetry: float = 0.0

    def __post_init__(self):
        if self.sites not in SITE_PLANS:
            raise ValueError(f"sites must be one of {SITE_PLANS}, not {self.sites!r}")
        if self.positions not in POSITION_PLANS:
            raise ValueError(f"positions must be one of {POSITION_PLANS}, "
                             f"not {self.positions!r}")
        if not 0.0 <= self.pseudo_symmetry <= 1.0:
            raise ValueError(f"pseudo_symmetry is a share of crystals, from 0 to 1, not "
                             f"{self.pseudo_symmetry!r}")


# Drawn site counts stop here (15 % of COD structures have more, often hydrates whose
# many light atoms hardly change a powder pattern); their share goes to MAX_SITES.
MAX_SITES = 24


# A "cod-cells" crystal's atom budget is a COD structure's atom count times a factor from here.
CELL_JITTER = (0.85, 1.2)


# A near-grid crystal (``pseudo_symmetry``) divides each cell edge into steps of this many Å
# (drawn once per crystal), the spacing of atoms in close-packed inorganic solids ...
PSEUDO_SYMMETRY_SPACING = (2.2, 3.5)
# ... and moves each free coordinate off its grid point by a normal offset of this standard
# deviation (fractional; about 0.15 Å in a 10 Å cell, beyond spglib's 0.1 Å tolerance, so the
# crystal keeps its own space group).
PSEUDO_SYMMETRY_SHIFT = 0.015


# Pseudo-count of the all-COD distribution added to one crystal system's counts (about a
# hundred structures each), so that a site count no structure of that system has stays possible.
SYSTEM_SMOOTHING = 5.0


def _folded(counts: dict[str, int]) -> np.ndarray:
    folded = np.zeros(MAX_SITES)
    for n, count in counts.items():
        folded[min(int(n), MAX_SITES) - 1] += count
    return folded


@lru_cache(maxsize=1)
def _site_table() -> dict:
    """``core/data/site_frequency.json``: COD's site counts and site-symmetry orders."""
    return json.loads((Path(__file__).parent / "data" / "site_frequency.json").read_text())


@lru_cache(maxsize=8)
def site_count_probabilities(system: str | None = None) -> np.ndarray:
    """P(n independent sites) for n = 1 ... :data:`MAX_SITES` (index n - 1): COD's counts
    (``core/data/site_frequency.json``, numbers only), the tail folded into MAX_SITES;
    those of one crystal system when ``system`` is given (smoothed towards all of COD)."""
    data = _site_table()
    overall = _folded(data["counts"])
    overall /= overall.sum()
    if system is None:
        probabilities = overall
    elif system in data["by_system"]:
        counts = _folded(data["by_system"][system]) + SYSTEM_SMOOTHING * overall
        probabilities = counts / counts.sum()
    else:
        raise ValueError(f"no COD site counts for crystal system {system!r}")
    probabilities.flags.writeable = False  # shared by every caller through the cache
    return probabilities


@lru_cache(maxsize=8)
def site_order_probabilities(system: str) -> Mapping[int, float]:
    """P(a site sits on a Wyckoff position whose site-symmetry group has order k), for the
    orders k seen in COD (``core/data/site_frequency.json``): those of ``system``'s
    structures, smoothed towards all of COD like :func:`site_count_probabilities`."""
    data = _site_table()
    overall = {int(k): v for k, v in data["site_orders"].items()}
    total = sum(overall.values())
    if system not in data["site_orders_by_system"]:
        raise ValueError(f"no COD site orders for crystal system {system!r}")
    own = {int(k): v for k, v in data["site_orders_by_system"][system].items()}
    counts = {k: own.get(k, 0) + SYSTEM_SMOOTHING * v / total for k, v in overall.items()}
    norm = sum(counts.values())
    # Read-only: every caller shares it through the cache.
    return MappingProxyType({k: c / norm for k, c in counts.items()})


@lru_cache(maxsize=8)
def cell_size_probabilities(system: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(independent sites, atoms in the conventional cell, probability) of every combination
    seen in COD (``core/data/site_frequency.json``): ``system``'s structures, smoothed
    towards all of COD like :func:`site_count_probabilities`. Read-only arrays."""
    table = _site_table()["cells_by_system"]
    if system not in table:
        raise ValueError(f"no COD cell sizes for crystal system {system!r}")
    overall: dict[str, float] = {}
    for counts in table.values():
        for key, n in counts.items():
            overall[key] = overall.get(key, 0) + n
    total = sum(overall.values())
    own = table[system]
    weights = {key: own.get(key, 0) + SYSTEM_SMOOTHING * n / total for key, n in overall.items()}
    keys = sorted(weights, key=lambda k: tuple(int(v) for v in k.split(",")))
    sites, atoms = (np.array([int(k.split(",")[i]) for k in keys]) for i in (0, 1))
    p = np.array([weights[k] for k in keys])
    p /= p.sum()
    for array in (sites, atoms, p):
        array.flags.writeable = False  # shared by every caller through the cache
    return sites, atoms, p


def planned_cell(n_species: int, spec: RandomCrystalSpec, rng: np.random.Generator,
                 system: str, smallest: int = 1) -> tuple[list[int] | None, int]:
    """Independent sites per species (as :func:`planned_sites`) and the most atoms the
    crystal's positions may hold.

    Under ``"cod-cells"`` both come from one draw of :func:`cell_size_probabilities`: the
    budget is that structure's atom count times :data:`CELL_JITTER`, at least
    ``n_species * smallest`` (``smallest``: the group's smallest Wyckoff multiplicity) and
    at most ``spec.max_atoms``. The other plans give ``spec.max_atoms``.
    """
    if spec.sites != "cod-cells":
        return planned_sites(n_species, spec, rng, system), spec.max_atoms
    sites, atoms, p = cell_size_probabilities(system)
    pick = int(rng.choice(len(p), p=p))
    budget = int(round(atoms[pick] * rng.uniform(*CELL_JITTER)))
    budget = min(spec.max_atoms, max(budget, n_species * smallest))
    return planned_sites(n_species, spec, rng, system, total=int(sites[pick])), budget


def position_weights(orders: Sequence[int], spec: RandomCrystalSpec,
                     system: str | None = None) -> np.ndarray:
    """Relative chance of each Wyckoff position on offer, given the site-symmetry order of
    each (1 for the general position).

    ``"prefer-general"`` weights the general position 3 and the others 1. ``"cod-system"``
    gives each order COD's share for ``system`` (:func:`site_order_probabilities`), split
    evenly between the positions of that order, so that a group's many special positions
    do not crowd out its one general position.
    """
    orders = np.asarray(orders, dtype=int)
    if spec.positions == "prefer-general":
        return np.where(orders == 1, 3.0, 1.0)
    if system is None:
        raise ValueError('positions="cod-system" needs the crystal system')
    share = site_order_probabilities(system)
    floor = min(share.values())  # an order COD never shows stays possible, just rare
    values, counts = np.unique(orders, return_counts=True)
    per_position = {int(k): share.get(int(k), floor) / n for k, n in zip(values, counts)}
    return np.array([per_position[int(k)] for k in orders])


def planned_sites(n_species: int, spec: RandomCrystalSpec, rng: np.random.Generator,
                  system: str | None = None, total: int | None = None) -> list[int] | None:
    """Independent sites per species for the COD plans (None for ``"few"``, whose counts
    are drawn species by species). Every species gets one site; the rest go at random, the
    anion (listed last) weighted double as in real oxides and salts.

    Args:
        system: the crystal system, needed by ``"cod-system"`` and ``"cod-cells"``.
        total: the site count (capped at :data:`MAX_SITES`); drawn from COD's counts when
            not given.
    """
    if spec.sites == "few":
        return None
    if spec.sites in ("cod-system", "cod-cells") and system is None:
        raise ValueError(f'sites="{spec.sites}" needs the crystal system')
    if total is None:
        p = site_count_probabilities(None if spec.sites == "cod" else system)
        total = int(rng.choice(MAX_SITES, p=p)) + 1
    total = max(n_species, min(total, MAX_SITES))
    weights = np.ones(n_species)
    if n_species > 1:
        weights[-1] = 2.0
    extra = rng.multinomial(total - n_species, weights / weights.sum())
    return [1 + int(e) for e in extra]


def orbits_for(i: int, n_species: int, planned: list[int] | None,
               rng: np.random.Generator) -> int:
    """Independent sites for species ``i``: planned, or one to two (three for the anion)."""
    if planned is not None:
        return planned[i]
    # The anion (listed last) takes more sites, as in real compounds.
    return int(rng.integers(1, 4 if i == n_species - 1 else 3))


def _pick(rng: np.random.Generator, weights: dict[str, float], k: int, exclude=()) -> list[str]:
    names = [e for e, w in weights.items() if w > 0 and e not in exclude]
    p = np.array([weights[e] for e in names], dtype=float)
    k = min(k, len(names))
    return [str(e) for e in rng.choice(names, size=k, replace=False, p=p / p.sum())]


def _site_counts(group, n_species: int, spec: RandomCrystalSpec,
                 rng: np.random.Generator) -> tuple[list[int], list[list[str]]] | None:
    """Atoms per species, each a sum of Wyckoff multiplicities chosen by
    :func:`position_weights`, and the chosen positions (labels such as ``"4e"``)."""
    positions = group.Wyckoff_positions
    general = positions[0].multiplicity
    counts, labels = [], []
    used_fixed: set[int] = set()
    system = crystal_system_of(int(group.number))
    planned, budget = planned_cell(n_species, spec, rng, system,
                                   min(w.multiplicity for w in positions))
    for i in range(n_species):
        count, chosen = 0, []
        for _ in range(orbits_for(i, n_species, planned, rng)):
            # The old plan let pyxtal place the counts itself, fixed points included.
            options = [j for j, w in enumerate(positions)
                       if w.multiplicity <= budget - count - (n_species - i - 1)
                       and (spec.positions == "prefer-general" or j not in used_fixed)]
            if not options:
                break
            weights = position_weights([general // positions[j].multiplicity for j in options],
                                       spec, system)
            j = options[int(rng.choice(len(options), p=weights / weights.sum()))]
            count += positions[j].multiplicity
            chosen.append(f"{positions[j].multiplicity}{positions[j].letter}")
            if positions[j].get_dof() == 0:
                used_fixed.add(j)
        if count == 0:
            return None
        counts.append(count)
        labels.append(chosen)
        budget -= count
    return counts, labels


def random_crystal(space_group: int, rng: np.random.Generator,
                   spec: RandomCrystalSpec = RandomCrystalSpec(), attempts: int = 6) -> Structure:
    """One random crystal with space-group symmetry ``space_group`` (pyxtal).

    Raises:
        RuntimeError: no valid crystal was found in ``attempts`` tries.
    """
    from pyxtal import pyxtal
    from pyxtal.symmetry import Group

    group = Group(int(space_group))
    last_error = "no compatible composition"
    for _ in range(attempts):
        n_species = int(rng.choice([1, 2, 3, 4], p=[0.05, 0.35, 0.4, 0.2]))
        drawn = _site_counts(group, n_species, spec, rng)
        if drawn is None or not group.check_compatible(drawn[0])[0]:
            continue
        counts, positions = drawn
        # "prefer-general" leaves the choice of positions for the counts to pyxtal, as before.
        sites = None if spec.positions == "prefer-general" else positions
        if n_species == 1:
            species = _pick(rng, spec.cations, 1)
        else:
            anion = _pick(rng, spec.anions, 1)
            species = _pick(rng, spec.cations, n_species - 1, exclude=anion) + anion
        crystal = pyxtal()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                crystal.from_random(3, int(space_group), species, counts,
                                    factor=spec.volume_factor, sites=sites,
                                    random_state=int(rng.integers(2**31)))
        except TimeoutError:  # a caller's time limit (core.generation), not a bad placement
            raise
        except Exception as exc:  # pyxtal signals impossible placements with assorted errors
            last_error = str(exc)
            continue
        if crystal.valid:
            return crystal.to_pymatgen()
    raise RuntimeError(f"space group {space_group}: {last_error}")


def random_crystals(space_groups: Iterable[int], seed: int = 0,
                    spec: RandomCrystalSpec = RandomCrystalSpec()) -> StructureBatch:
    """Random crystals, one per entry of ``space_groups``; failures are skipped and counted.

    The same ``seed`` and ``space_groups`` give the same crystals.
    """
    batch = StructureBatch()
    for index, number in enumerate(space_groups):
        rng = np.random.default_rng([seed, index, int(number)])
        try:
            batch.structures.append(random_crystal(int(number), rng, spec))
            batch.names.append(f"random-sg{int(number)}-{seed}-{index}")
        except RuntimeError as exc:
            batch.failures.append((f"sg{int(number)}", str(exc)))
    return batch


def space_groups_of_systems(systems: Sequence[str]) -> list[int]:
    """All space-group numbers of the given crystal systems."""
    from core.symmetry import space_groups

    wanted = set(systems)
    return [g.number for g in space_groups() if g.crystal_system in wanted]
