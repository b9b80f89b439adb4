"""Random crystals and their powder patterns, fast enough for hundreds of thousands of them.

pyxtal's random crystals (:mod:`core.structures`) cost about 0.3 s each on a laptop core,
which caps a training set at tens of thousands of crystals, and models trained on that many
start to memorise them. This module draws crystals of the same chemistry itself: atoms go
straight onto Wyckoff positions (the tables come from pyxtal), distances are checked with
numpy, spglib labels every crystal (a crystal found in another group than requested is
rejected, never relabelled), and the pattern comes from a vectorised structure-factor sum
that reproduces pymatgen's ``XRDCalculator`` peak for peak (same scattering factors, Lorentz-
polarisation factor and 2θ merging; tested in ``tests/core/test_fast_crystals.py``).
Symmetry-equivalent reflections share one structure factor, so each family is computed once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from core.grid import CU_KA
from core.simulation import DEFAULT_TWO_THETA_RANGE, SYMPREC, PeakList
from core.structures import (PSEUDO_SYMMETRY_SHIFT, PSEUDO_SYMMETRY_SPACING, RandomCrystalSpec,
                             _pick, orbits_for, planned_cell, position_weights)
from core.symmetry import crystal_system_of

# Volume an anion takes in an inorganic crystal, Å³ (typical values per anion, cations
# packed in between); other elements get the volume of their ionic or atomic sphere.
ANION_VOLUME = {"O": 18.0, "F": 16.0, "Cl": 35.0, "Br": 40.0, "I": 50.0, "S": 32.0,
                "Se": 38.0, "Te": 45.0, "N": 18.0, "P": 30.0, "As": 33.0, "C": 12.0}
# Atoms keep this factor times the sum of their radii apart, and never less than MIN_DISTANCE Å.
MIN_DISTANCE_FACTOR = 0.8
MIN_DISTANCE = 1.1
# pymatgen's XRDCalculator merges reflections closer than this in 2θ (degrees).
TWO_THETA_MERGE_TOL = 1e-5
# ... and drops peaks weaker than this, in percent of the strongest.
SCALED_INTENSITY_TOL = 1e-3


@dataclass(frozen=True)
class _Wyckoff:
    multiplicity: int
    projection: np.ndarray  # (3, 4) affine map from any point onto the position
    free: bool              # has free coordinates (else a fixed point, used at most once)


@dataclass(frozen=True)
class _GroupTables:
    number: int
    system: str
    rotations: np.ndarray      # (m, 3, 3) general-position operations, conventional cell
    translations: np.ndarray   # (m, 3)
    laue: np.ndarray           # (k, 3, 3) distinct rotations and their negatives
    wyckoff: tuple[_Wyckoff, ...]


@lru_cache(maxsize=None)
def _tables(number: int) -> _GroupTables:
    from pyxtal.symmetry import Group

    group = Group(int(number))
    general = group.Wyckoff_positions[0].ops
    rotations = np.array([op.rotation_matrix for op in general])
    translations = np.array([op.translation_vector for op in general]) % 1.0
    distinct = np.unique(np.round(rotations).astype(np.int64), axis=0)
    laue = np.unique(np.concatenate([distinct, -distinct]), axis=0)
    wyckoff = []
    for position in group.Wyckoff_positions:
        affine = np.asarray(position.ops[0].affine_matrix)[:3]
        wyckoff.append(_Wyckoff(int(position.multiplicity), affine,
                                bool(np.abs(affine[:, :3]).sum() > 0)))
    return _GroupTables(int(number), crystal_system_of(int(number)), rotations, translations,
                        laue, tuple(wyckoff))


@dataclass
class RandomCrystal:
    """A crystal in its conventional cell: lattice (a, b, c, α, β, γ), fractional
    coordinates (n, 3) and one element symbol per atom."""

    lattice: tuple[float, float, float, float, float, float]
    frac_coords: np.ndarray
    species: list[str]
    requested_sg: int

    def matrix(self) -> np.ndarray:
        return lattice_matrix(self.lattice)

    def spglib_cell(self) -> tuple[np.ndarray, np.ndarray, list[int]]:
        """(lattice rows, fractional coordinates, one number per element) as spglib takes it."""
        numbers = {s: i + 1 for i, s in enumerate(dict.fromkeys(self.species))}
        return self.matrix(), self.frac_coords, [numbers[s] for s in self.species]

    def to_pymatgen(self):
        from pymatgen.core import Lattice, Structure

        return Structure(Lattice(self.matrix()), self.species, self.frac_coords)


def lattice_matrix(parameters) -> np.ndarray:
    """Row vectors of a cell: a along x, b in the xy plane."""
    a, b, c, alpha, beta, gamma = parameters
    ca, cb, cg = (math.cos(math.radians(x)) for x in (alpha, beta, gamma))
    sg = math.sin(math.radians(gamma))
    cy = (ca - cb * cg) / sg
    cz = math.sqrt(max(1.0 - cb * cb - cy * cy, 0.0))
    return np.array([[a, 0, 0], [b * cg, b * sg, 0], [c * cb, c * cy, c * cz]])


def _random_cell(system: str, volume: float, rng: np.random.Generator) -> tuple:
    """Cell parameters of ``system`` with the given volume; axis ratios up to about 1:3."""
    ratios = np.exp(rng.normal(0.0, 0.35, 3))
    alpha = beta = gamma = 90.0
    if system in ("tetragonal", "trigonal", "hexagonal"):
        ratios[1] = ratios[0]
        if system != "tetragonal":
            gamma = 120.0
    elif system == "cubic":
        ratios[:] = 1.0
    elif system == "monoclinic":
        beta = float(rng.uniform(91.0, 125.0))
    elif system == "triclinic":
        while True:
            alpha, beta, gamma = (float(x) for x in rng.uniform(70.0, 115.0, 3))
            if _volume_factor(alpha, beta, gamma) > 0.5:
                break
    unit = volume / (np.prod(ratios) * _volume_factor(alpha, beta, gamma))
    a, b, c = ratios * unit ** (1 / 3)
    return (float(a), float(b), float(c), alpha, beta, gamma)


def _volume_factor(alpha: float, beta: float, gamma: float) -> float:
    ca, cb, cg = (math.cos(math.radians(x)) for x in (alpha, beta, gamma))
    return math.sqrt(max(1 - ca * ca - cb * cb - cg * cg + 2 * ca * cb * cg, 0.0))


@lru_cache(maxsize=None)
def _element_facts(symbol: str, role: str) -> tuple[float, float]:
    """(volume in a crystal, Å³; radius for distance checks, Å) of an element that is an
    ``anion``, a ``cation`` or a pure ``element``."""
    from pymatgen.core import Element

    element = Element(symbol)
    if role == "anion" and symbol in ANION_VOLUME:
        volume = ANION_VOLUME[symbol]
        return volume, 0.75 * (3 * volume / (4 * math.pi)) ** (1 / 3)
    radius = float(element.average_ionic_radius or 0) if role == "cation" else 0.0
    radius = radius or float(element.atomic_radius or 1.0)
    volume = 4 / 3 * math.pi * radius ** 3
    return (1.4 * volume if role == "element" else volume), radius


def _orbit(tables: _GroupTables, point: np.ndarray) -> np.ndarray:
    """Distinct images of ``point`` under the group, fractional, in [0, 1)."""
    images = (tables.rotations @ point + tables.translations) % 1.0
    grid = np.round(images * 1e4).astype(np.int64) % 10_000
    _, first = np.unique((grid[:, 0] * 10_000 + grid[:, 1]) * 10_000 + grid[:, 2],
                         return_index=True)
    return images[np.sort(first)]


def _fits(matrix: np.ndarray, new: np.ndarray, radius: float, old: np.ndarray,
          old_radii: np.ndarray) -> bool:
    """Whether atoms ``new`` of ``radius`` keep :data:`MIN_DISTANCE_FACTOR` times the sum of
    radii (at least :data:`MIN_DISTANCE` Å) from each other and from ``old`` (nearest image)."""
    points = np.concatenate([new, old])
    radii = np.concatenate([np.full(len(new), radius), old_radii])
    delta = new[:, None, :] - points[None, :, :]
    delta -= np.round(delta)
    distance = np.linalg.norm(delta @ matrix, axis=-1)
    distance[np.arange(len(new)), np.arange(len(new))] = np.inf
    limit = np.maximum(MIN_DISTANCE_FACTOR * (radius + radii), MIN_DISTANCE)
    return bool(np.all(distance >= limit[None, :]))


def _orbit_plan(tables: _GroupTables, n_species: int, spec: RandomCrystalSpec,
                rng: np.random.Generator) -> list[list[int]] | None:
    """Wyckoff position indices per species, chosen by :func:`position_weights`."""
    general = tables.wyckoff[0].multiplicity
    used_fixed: set[int] = set()
    plan: list[list[int]] = []
    planned, budget = planned_cell(n_species, spec, rng, tables.system,
                                   min(w.multiplicity for w in tables.wyckoff))
    for i in range(n_species):
        chosen: list[int] = []
        for _ in range(orbits_for(i, n_species, planned, rng)):
            options = [j for j, w in enumerate(tables.wyckoff)
                       if w.multiplicity <= budget - (n_species - i - 1)
                       and (w.free or j not in used_fixed)]
            if not options:
                break
            weights = position_weights([general // tables.wyckoff[j].multiplicity
                                        for j in options], spec, tables.system)
            j = int(rng.choice(options, p=weights / weights.sum()))
            chosen.append(j)
            budget -= tables.wyckoff[j].multiplicity
            if not tables.wyckoff[j].free:
                used_fixed.add(j)
        if not chosen:
            return None
        plan.append(chosen)
    return plan


def random_crystal_fast(space_group: int, rng: np.random.Generator,
                        spec: RandomCrystalSpec = RandomCrystalSpec(),
                        attempts: int = 8, placements: int = 20) -> RandomCrystal:
    """A random crystal with atoms on Wyckoff positions of ``space_group``.

    Composition as in :func:`core.structures.random_crystal`: mostly anion-centred
    compounds of two to four species, several sites each. Atoms keep apart by 0.8 times
    the sum of their radii (at least 1.1 Å). A share ``spec.pseudo_symmetry`` of the
    crystals draw their free coordinates near the points of a grid (:func:`_grid_steps`).

    Raises:
        RuntimeError: no crystal fitted in ``attempts`` tries.
    """
    tables = _tables(int(space_group))
    plan = None
    for attempt in range(attempts):
        # "few" draws a new plan per attempt. The COD plans keep theirs and loosen the cell
        # instead: random placement jams in large cells, and new draws would favour small ones.
        keep = spec.sites != "few" and plan is not None
        if not keep:
            n_species = int(rng.choice([1, 2, 3, 4], p=[0.05, 0.35, 0.4, 0.2]))
            plan = _orbit_plan(tables, n_species, spec, rng)
        if plan is None:
            continue
        if n_species == 1:
            species, roles = _pick(rng, spec.cations, 1), ["element"]
        else:
            anion = _pick(rng, spec.anions, 1)
            species = _pick(rng, spec.cations, n_species - 1, exclude=anion) + anion
            roles = ["cation"] * (n_species - 1) + ["anion"]
        facts = [_element_facts(s, role) for s, role in zip(species, roles)]
        n_atoms = [sum(tables.wyckoff[j].multiplicity for j in orbits) for orbits in plan]
        volume = sum(n * v for n, (v, _) in zip(n_atoms, facts)) * rng.uniform(0.95, 1.3)
        if spec.sites != "few":
            volume *= 1 + 0.1 * attempt
        cell = _random_cell(tables.system, volume, rng)
        steps = _grid_steps(cell, spec, rng)
        crystal = _place(tables, cell, plan, species, facts, rng, placements, steps)
        if crystal is not None:
            return crystal
    raise RuntimeError(f"space group {space_group}: no random crystal fitted in {attempts} tries")


def _grid_steps(cell: tuple, spec: RandomCrystalSpec, rng: np.random.Generator) -> np.ndarray | None:
    """Grid divisions along a, b and c for a near-grid crystal (one spacing from
    :data:`PSEUDO_SYMMETRY_SPACING` for all three edges), or None for uniform placement.
    Draws nothing when ``spec.pseudo_symmetry`` is 0, so such crystals come out as before."""
    if spec.pseudo_symmetry <= 0 or rng.random() >= spec.pseudo_symmetry:
        return None
    spacing = rng.uniform(*PSEUDO_SYMMETRY_SPACING)
    return np.maximum(np.round(np.asarray(cell[:3]) / spacing), 1)


def _place(tables, cell, plan, species, facts, rng, placements,
           steps: np.ndarray | None = None) -> RandomCrystal | None:
    matrix = lattice_matrix(cell)
    coords = np.zeros((0, 3))
    radii = np.zeros(0)
    symbols: list[str] = []
    for element, (_, radius), orbits in zip(species, facts, plan):
        for j in orbits:
            wyckoff = tables.wyckoff[j]
            for _ in range(placements if wyckoff.free else 1):
                if steps is None:
                    free = rng.random(3)
                else:
                    free = rng.integers(0, steps) / steps + rng.normal(0, PSEUDO_SYMMETRY_SHIFT, 3)
                point = wyckoff.projection @ np.append(free, 1.0)
                atoms = _orbit(tables, point)
                if len(atoms) != wyckoff.multiplicity:
                    continue  # landed on a more special position
                if _fits(matrix, atoms, radius, coords, radii):
                    break
            else:
                return None
            coords = np.concatenate([coords, atoms])
            radii = np.concatenate([radii, np.full(len(atoms), radius)])
            symbols += [element] * len(atoms)
    return RandomCrystal(cell, coords, symbols, tables.number)


def detected_space_group(crystal: RandomCrystal, symprec: float = SYMPREC) -> int:
    """spglib's space-group number of ``crystal`` (0 when spglib finds none)."""
    import spglib

    dataset = spglib.get_symmetry_dataset(crystal.spglib_cell(), symprec=symprec)
    return int(dataset.number) if dataset is not None else 0


@lru_cache(maxsize=None)
def _scattering(symbol: str) -> tuple[int, np.ndarray]:
    from pymatgen.analysis.diffraction.xrd import ATOMIC_SCATTERING_PARAMS
    from pymatgen.core import Element

    return int(Element(symbol).Z), np.asarray(ATOMIC_SCATTERING_PARAMS[symbol], dtype=float)


def _reflections(inverse_metric: np.ndarray, lengths: np.ndarray, q_min: float,
                 q_max: float) -> tuple[np.ndarray, np.ndarray]:
    """All hkl with q_min <= 1/d <= q_max, and their 1/d."""
    limits = np.floor(q_max * lengths).astype(int)
    axes = [np.arange(-n, n + 1) for n in limits]
    hkl = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    q = np.sqrt(np.einsum("ni,ij,nj->n", hkl, inverse_metric, hkl))
    keep = (q >= q_min) & (q <= q_max) & (q > 0)
    return hkl[keep], q[keep]


def _families(hkl: np.ndarray, laue: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of one representative per symmetry-equivalent set, and the set sizes."""
    images = np.einsum("ni,kij->nkj", hkl, laue)                    # h' = h R
    span = int(np.abs(hkl).max()) * 3 + 1 if len(hkl) else 1
    codes = ((images[..., 0] * span + images[..., 1]) * span + images[..., 2])
    canonical = codes.max(axis=1)
    _, first, counts = np.unique(canonical, return_index=True, return_counts=True)
    return first, counts


def simulate_crystal(crystal: RandomCrystal, sg_number: int, wavelength: float = CU_KA,
                     two_theta_range: tuple[float, float] = DEFAULT_TWO_THETA_RANGE) -> PeakList:
    """The powder pattern of ``crystal`` as sticks, as pymatgen's ``XRDCalculator`` computes
    it for the same cell (no thermal factors, intensities scaled to a maximum of 100).

    Each peak keeps one Miller index (the largest of its family) for the augmentation's
    strain and texture. Reflections are grouped by the point group of
    ``crystal.requested_sg``, so the crystal must have (at least) that symmetry, as every
    crystal of :func:`random_crystal_fast` has.
    """
    lattice = np.asarray(crystal.lattice, dtype=float)
    matrix = lattice_matrix(lattice)
    inverse_metric = np.linalg.inv(matrix @ matrix.T)
    q_min, q_max = (2 * math.sin(math.radians(t / 2)) / wavelength for t in two_theta_range)
    hkl, q = _reflections(inverse_metric, lattice[:3], q_min, q_max)
    if not len(hkl):
        raise ValueError("no reflection in the 2θ range")
    tables = _tables(crystal.requested_sg)
    first, multiplicity = _families(hkl, tables.laue)
    hkl, q = hkl[first], q[first]

    s2 = (q / 2) ** 2
    phases = np.exp(2j * math.pi * (hkl @ crystal.frac_coords.T))     # (families, atoms)
    structure_factor = np.zeros(len(hkl), dtype=complex)
    symbols = np.asarray(crystal.species)
    for symbol in dict.fromkeys(crystal.species):
        z, coefficients = _scattering(symbol)
        form = z - 41.78214 * s2 * np.sum(coefficients[:, 0] *
                                          np.exp(-coefficients[:, 1] * s2[:, None]), axis=1)
        structure_factor += form * phases[:, symbols == symbol].sum(axis=1)
    theta = np.arcsin(np.clip(wavelength * q / 2, -1, 1))
    lorentz = (1 + np.cos(2 * theta) ** 2) / (np.sin(theta) ** 2 * np.cos(theta))
    intensity = np.abs(structure_factor) ** 2 * lorentz * multiplicity
    two_theta = np.degrees(2 * theta)

    bins = np.round(two_theta / TWO_THETA_MERGE_TOL).astype(np.int64)
    keys, inverse = np.unique(bins, return_inverse=True)
    merged = np.bincount(inverse, weights=intensity)
    # Each merged peak takes the position, d and hkl of its lowest-q member, as pymatgen's.
    order = np.lexsort((-hkl[:, 2], -hkl[:, 1], -hkl[:, 0], q))
    lead = order[np.unique(inverse[order], return_index=True)[1]]
    keep = merged / merged.max() * 100 > SCALED_INTENSITY_TOL
    lead, merged = lead[keep], merged[keep]
    return PeakList(
        two_theta=two_theta[lead].astype(np.float32),
        intensity=(merged / merged.max() * 100).astype(np.float32),
        d_spacing=(1 / q[lead]).astype(np.float32),
        hkl=hkl[lead].astype(np.int16),
        sg_number=int(sg_number),
        lattice=tuple(float(v) for v in lattice),
        formula=_reduced_formula(crystal.species),
        n_sites=len(crystal.species),
        wavelength=float(wavelength),
    )


def _reduced_formula(species: list[str]) -> str:
    from pymatgen.core import Composition

    return Composition(" ".join(species)).reduced_formula


def _roomier(spec: RandomCrystalSpec, space_group: int) -> RandomCrystalSpec:
    """``spec`` with room for two general-position orbits: in groups whose general position
    alone exceeds ``max_atoms`` (Fd-3, F432, F-43c, Fm-3c, Fd-3c with the default 72), atoms
    on special positions only nearly always show a higher symmetry."""
    from dataclasses import replace

    general = _tables(int(space_group)).wyckoff[0].multiplicity
    return replace(spec, max_atoms=max(spec.max_atoms, 2 * general))


def random_pattern(space_group: int, rng: np.random.Generator,
                   spec: RandomCrystalSpec = RandomCrystalSpec(), wavelength: float = CU_KA,
                   symprec: float = SYMPREC, attempts: int = 4) -> PeakList:
    """A random crystal of ``space_group`` that spglib confirms, simulated. The second half
    of the ``attempts`` may use a larger cell (:func:`_roomier`).

    Raises:
        RuntimeError: every attempt failed or came out in another space group.
    """
    found = 0
    for attempt in range(attempts):
        if attempt >= attempts // 2:
            spec = _roomier(spec, space_group)
        crystal = random_crystal_fast(space_group, rng, spec)
        found = detected_space_group(crystal, symprec)
        if found == space_group:
            return simulate_crystal(crystal, found, wavelength)
    raise RuntimeError(f"space group {space_group}: random crystals came out in group {found}")


__all__ = ["RandomCrystal", "random_crystal_fast", "detected_space_group", "simulate_crystal",
           "random_pattern", "lattice_matrix"]
