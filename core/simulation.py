"""Structure -> peak list ("sticks") with pymatgen's XRDCalculator, labelled by spglib.

Peaks keep one Miller index each so that lattice strain can be applied later without
simulating again: a peak's position follows from its hkl and the (strained) cell.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from core.grid import CU_KA
from core.symmetry import by_number

if TYPE_CHECKING:  # pymatgen loads only where a structure is simulated, not to read datasets
    from pymatgen.core import Structure

# spglib tolerance (Å) for the space-group label; 0.1 Å is the Materials Project's choice and
# forgives the small distortions of refined experimental structures.
SYMPREC = 0.1
DEFAULT_TWO_THETA_RANGE = (5.0, 90.0)
# Largest conventional cell simulated, Å³ (a 63 Å cube; the biggest inorganic cells are near
# 100 000 Å³). Reflections grow with the volume: a 150 Å cell means millions of them,
# gigabytes and many minutes, so a hostile or mistyped CIF is refused instead.
MAX_CELL_VOLUME = 250_000.0

ProgressCallback = Callable[[int, int], None]


@dataclass
class PeakList:
    """A simulated powder pattern as sticks, plus what it was simulated from.

    Attributes:
        two_theta: peak positions, degrees, ascending.
        intensity: peak heights scaled to a maximum of 100.
        d_spacing: interplanar spacing of each peak, Å.
        hkl: (n, 3) Miller index of one reflection family per peak (conventional cell).
        sg_number: space group found by spglib at :data:`SYMPREC`.
        lattice: conventional cell (a, b, c, alpha, beta, gamma), Å and degrees.
        formula: reduced formula.
        n_sites: atoms in the conventional cell.
        wavelength: Å.
    """

    two_theta: np.ndarray
    intensity: np.ndarray
    d_spacing: np.ndarray
    hkl: np.ndarray
    sg_number: int
    lattice: tuple[float, float, float, float, float, float]
    formula: str
    n_sites: int
    wavelength: float

    @property
    def crystal_system(self) -> str:
        return by_number(self.sg_number).crystal_system


def simulate(structure: Structure, wavelength: float = CU_KA,
             two_theta_range: tuple[float, float] = DEFAULT_TWO_THETA_RANGE,
             symprec: float = SYMPREC) -> PeakList:
    """Simulate the powder pattern of ``structure``.

    The structure is first brought to its conventional standard cell (spglib), so that the
    stored lattice and Miller indices obey the crystal system's constraints.

    Args:
        structure: any ordered or disordered pymatgen structure.
        wavelength: X-ray wavelength in Å (Cu Kα by default).
        two_theta_range: (min, max) 2θ in degrees.
        symprec: spglib distance tolerance in Å for the space-group label.

    Raises:
        ValueError: the conventional cell is larger than :data:`MAX_CELL_VOLUME`.
    """
    from pymatgen.analysis.diffraction.xrd import XRDCalculator
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        analyzer = SpacegroupAnalyzer(structure, symprec=symprec)
        sg_number = analyzer.get_space_group_number()
        conventional = analyzer.get_conventional_standard_structure()
        if not conventional.volume <= MAX_CELL_VOLUME:
            raise ValueError(f"unit cell of {conventional.volume:.3g} Å³ is too large to simulate "
                             f"(at most {MAX_CELL_VOLUME:.0f} Å³)")
        pattern = XRDCalculator(wavelength=wavelength).get_pattern(
            conventional, scaled=True, two_theta_range=two_theta_range)
    hkl = np.array([_three_index(peak[0]["hkl"]) for peak in pattern.hkls], dtype=np.int16)
    lat = conventional.lattice
    return PeakList(
        two_theta=np.asarray(pattern.x, dtype=np.float32),
        intensity=np.asarray(pattern.y, dtype=np.float32),
        d_spacing=np.asarray(pattern.d_hkls, dtype=np.float32),
        hkl=hkl.reshape(-1, 3),
        sg_number=int(sg_number),
        lattice=tuple(float(v) for v in (*lat.abc, *lat.angles)),
        formula=conventional.composition.reduced_formula,
        n_sites=len(conventional),
        wavelength=float(wavelength),
    )


def _three_index(hkl: Sequence[int]) -> tuple[int, int, int]:
    """pymatgen writes hexagonal indices as (h, k, i, l); keep (h, k, l)."""
    return (int(hkl[0]), int(hkl[1]), int(hkl[-1]))


def _simulate_or_error(args) -> PeakList | str:
    structure, wavelength, two_theta_range, symprec = args
    try:
        return simulate(structure, wavelength, two_theta_range, symprec)
    except Exception as exc:  # one bad structure must not end a batch
        return f"{exc.__class__.__name__}: {exc}"


def simulate_many(structures: Sequence[Structure], wavelength: float = CU_KA,
                  two_theta_range: tuple[float, float] = DEFAULT_TWO_THETA_RANGE,
                  symprec: float = SYMPREC, processes: int | None = None,
                  progress: ProgressCallback | None = None) -> list[PeakList | str]:
    """Simulate many structures over ``processes`` worker processes.

    Returns one entry per structure, in order: a :class:`PeakList`, or an error message for
    a structure that could not be simulated. ``progress(done, total)`` is called as results
    arrive.
    """
    processes = processes or min(2, os.cpu_count() or 1)
    jobs = [(s, wavelength, two_theta_range, symprec) for s in structures]
    results: list[PeakList | str] = []
    if processes <= 1 or len(jobs) < 4:
        for job in jobs:
            results.append(_simulate_or_error(job))
            if progress:
                progress(len(results), len(jobs))
        return results
    with ProcessPoolExecutor(max_workers=processes) as pool:
        for result in pool.map(_simulate_or_error, jobs, chunksize=4):
            results.append(result)
            if progress:
                progress(len(results), len(jobs))
    return results
