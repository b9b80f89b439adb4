"""Crystals of known cell, and a measured-like profile of one, shared by the indexing and
peak-picking tests."""

from __future__ import annotations

import numpy as np
from pymatgen.core import Lattice, Structure

from core.grid import CU_KA1, CU_KA2, TwoThetaGrid
from core.rendering import render
from core.simulation import simulate

# name -> (structure, crystal family searched, centring, conventional cell)
STRUCTURES = {
    "rock salt": (Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.640), ["Na", "Cl"],
                                            [[0, 0, 0], [0.5, 0.5, 0.5]]),
                  "cubic", "F", (5.640, 5.640, 5.640, 90, 90, 90)),
    "CsCl": (Structure.from_spacegroup("Pm-3m", Lattice.cubic(4.123), ["Cs", "Cl"],
                                       [[0, 0, 0], [0.5, 0.5, 0.5]]),
             "cubic", "P", (4.123, 4.123, 4.123, 90, 90, 90)),
    "rutile": (Structure.from_spacegroup("P4_2/mnm", Lattice.tetragonal(4.594, 2.959), ["Ti", "O"],
                                         [[0, 0, 0], [0.3048, 0.3048, 0]]),
               "tetragonal", "P", (4.594, 4.594, 2.959, 90, 90, 90)),
    "quartz": (Structure.from_spacegroup("P3_221", Lattice.hexagonal(4.913, 5.405), ["Si", "O"],
                                         [[0.4697, 0, 0], [0.4135, 0.2669, 0.1191]]),
               "hexagonal", "P", (4.913, 4.913, 5.405, 90, 90, 120)),
    "corundum": (Structure.from_spacegroup("R-3c", Lattice.hexagonal(4.759, 12.991), ["Al", "O"],
                                           [[0, 0, 0.3523], [0.3064, 0, 0.25]]),
                 "hexagonal", "R", (4.759, 4.759, 12.991, 90, 90, 120)),
    "orthorhombic P": (Structure.from_spacegroup("Pnma", Lattice.orthorhombic(5.21, 6.37, 7.83),
                                                 ["Mg", "Si", "O"],
                                                 [[0.13, 0.25, 0.61], [0.41, 0.25, 0.09],
                                                  [0.29, 0.04, 0.83]]),
                       "orthorhombic", "P", (5.21, 6.37, 7.83, 90, 90, 90)),
    "monoclinic P": (Structure.from_spacegroup("P2_1/c", Lattice.monoclinic(5.43, 7.12, 6.28, 103.4),
                                               ["Zn", "O"], [[0.21, 0.12, 0.37], [0.33, 0.41, 0.08]]),
                     "monoclinic", "P", (5.43, 7.12, 6.28, 90, 103.4, 90)),
}


def measured_profile(structure: Structure, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A Cu Kα1 + Kα2 profile at a 0.01° step with a sloping background and counting noise."""
    peaks = simulate(structure)
    grid = TwoThetaGrid(5.0, 90.0, 0.01)
    ka2 = 2 * np.degrees(np.arcsin(np.sin(np.radians(peaks.two_theta / 2)) * CU_KA2 / CU_KA1))
    positions = np.concatenate([peaks.two_theta, ka2])[None]
    heights = np.concatenate([peaks.intensity, 0.5 * peaks.intensity])[None]
    angles = grid.angles.astype(np.float64)
    signal = render(positions, heights, grid, fwhm=0.08, eta=0.4)[0] * 5000
    counts = rng.poisson(signal + 200 - angles)
    return angles, counts.astype(np.float64)
