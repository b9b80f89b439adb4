"""Example pattern files that the project makes itself, for the "Try an example" buttons.

Three of pymatgen's bundled structures are simulated at Cu Kα and rendered as realistic
measured profiles (broadening, Kα2, texture, background, counting noise: see
:mod:`core.augmentation`) with a fixed seed, on a 0.01° grid from 5 to 90° 2θ, scaled to
counts. Each is written in three formats:

* ``R99000k_<name>_XY.txt``: RRUFF-style XY (``##NAMES=``, ``##RRUFFID=`` ... headers,
  comma-separated data, ``##END=``);
* ``R99000k_<name>.dif``: RRUFF-style DIF (mineral name, CELL PARAMETERS, SPACE GROUP and the
  2-THETA INTENSITY D-SPACING H K L table), which carries the ground truth and pairs with the
  XY file through the shared id;
* ``<name>.xy``: a plain two-column file (another seed), with no ground truth.

The ids R990001–R990003 are made up and are not RRUFF samples. The files are committed under
``examples/``; :func:`write_examples` regenerates them byte for byte.

Run ``python -m core.examples [folder]`` to rewrite them.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.augmentation import Augmentation, StickBatch, augment_profiles
from core.grid import CU_KA, TwoThetaGrid
from core.paths import PROJECT_ROOT
from core.simulation import PeakList, simulate
from core.symmetry import CRYSTAL_SYSTEMS, by_number

EXAMPLES_DIR = PROJECT_ROOT / "examples"
EXAMPLE_GRID = TwoThetaGrid(5.0, 90.0, 0.01)
EXAMPLE_STRUCTURES: tuple[str, ...] = ("LiFePO4", "Si", "TiO2")
SEED = 20240601
PEAK_COUNTS = 6000.0
# Realistic but recognisable: a well-crystallised pure sample measured over 5–90°, so
# small cell strain, crystallites of 40 nm and more, no impurity phase and no truncation.
EXAMPLE_AUGMENTATION = Augmentation(lattice_strain=0.003, angle_strain_deg=0.1,
                                    crystallite_nm=(40.0, 200.0), impurity_probability=0.0,
                                    truncate_probability=0.0, hump_probability=0.0)
FORMATS = ("rruff_xy", "dif", "xy")


@dataclass(frozen=True)
class ExampleFile:
    """One generated example file.

    Attributes:
        name: file name inside the examples folder.
        structure: the bundled structure it was simulated from.
        format: ``rruff_xy``, ``dif`` or ``xy``.
        sg_number: the structure's space group (what a perfect classifier answers).
    """

    name: str
    structure: str
    format: str
    sg_number: int


def _rruff_id(index: int) -> str:
    return f"R99{index + 1:04d}"


def example_files() -> list[ExampleFile]:
    """The example files :func:`write_examples` writes, in order (no simulation needed)."""
    numbers = {"LiFePO4": 62, "Si": 227, "TiO2": 12}
    files = []
    for index, name in enumerate(EXAMPLE_STRUCTURES):
        rid = _rruff_id(index)
        files += [ExampleFile(f"{rid}_{name}_XY.txt", name, "rruff_xy", numbers[name]),
                  ExampleFile(f"{rid}_{name}.dif", name, "dif", numbers[name]),
                  ExampleFile(f"{name}.xy", name, "xy", numbers[name])]
    return files


def _peak_lists() -> list[PeakList]:
    from core.structures import bundled_structures

    batch = bundled_structures()
    missing = [n for n in EXAMPLE_STRUCTURES if n not in batch.names]
    if missing:
        raise RuntimeError(f"pymatgen no longer bundles {missing}; pick other example structures")
    return [simulate(batch.structures[batch.names.index(n)], CU_KA) for n in EXAMPLE_STRUCTURES]


def _sticks(peaks: list[PeakList]) -> StickBatch:
    width = max(len(p.two_theta) for p in peaks)
    n = len(peaks)
    tt, ii = np.zeros((n, width), np.float32), np.zeros((n, width), np.float32)
    hkl = np.zeros((n, width, 3), np.int16)
    for row, p in enumerate(peaks):
        m = len(p.two_theta)
        tt[row, :m], ii[row, :m], hkl[row, :m] = p.two_theta, p.intensity, p.hkl
    lattice = np.array([p.lattice for p in peaks], np.float64)
    system = np.array([CRYSTAL_SYSTEMS.index(p.crystal_system) for p in peaks], np.int64)
    return StickBatch(tt, ii, hkl, lattice, system)


def _counts(profiles: np.ndarray) -> np.ndarray:
    return np.rint(np.asarray(profiles, np.float64) * PEAK_COUNTS).astype(np.int64)


def _rows(counts: np.ndarray, separator: str) -> str:
    angles = EXAMPLE_GRID.start + EXAMPLE_GRID.step * np.arange(EXAMPLE_GRID.size)
    return "".join(f"{a:.2f}{separator}{c:d}\n" for a, c in zip(angles, counts))


def _cell_text(lattice) -> str:
    a, b, c, alpha, beta, gamma = lattice
    return (f"a: {a:.4f}  b: {b:.4f}  c: {c:.4f}  alpha: {alpha:.3f}  beta: {beta:.3f}  "
            f"gamma: {gamma:.3f}")


def rruff_xy_text(name: str, rruff_id: str, peaks: PeakList, counts: np.ndarray) -> str:
    """A RRUFF-style XY file: ``##KEY=value`` header, ``2θ, counts`` rows, ``##END=``."""
    system = by_number(peaks.sg_number).crystal_system
    header = [
        f"##NAMES={name}",
        f"##RRUFFID={rruff_id}",
        f"##IDEAL CHEMISTRY={peaks.formula}",
        "##LOCALITY=none: simulated by xrd-classify from a structure bundled with pymatgen",
        "##SOURCE=xrd-classify core/examples.py",
        "##DESCRIPTION=Simulated powder pattern with instrumental and size broadening, "
        "Kα2, texture, background and counting noise (not a RRUFF sample)",
        "##STATUS=example",
        f"##CELL PARAMETERS={_cell_text(peaks.lattice)}  crystal system: {system}",
        f"##X-RAY WAVELENGTH={CU_KA:.5f}",
    ]
    return "\n".join(header) + "\n" + _rows(counts, ", ") + "##END=\n"


def dif_text(name: str, rruff_id: str, peaks: PeakList) -> str:
    """A RRUFF-style DIF file of ``peaks``: cell, space group and the peak table."""
    a, b, c, alpha, beta, gamma = peaks.lattice
    group = by_number(peaks.sg_number)
    lines = [
        f"      {name}",
        f"      Diffraction data computed by xrd-classify for example {rruff_id}",
        "      from the structure bundled with pymatgen (not a RRUFF sample)",
        "",
        f"      CELL PARAMETERS: {a:9.4f}{b:9.4f}{c:9.4f}{alpha:9.3f}{beta:9.3f}{gamma:9.3f}",
        f"      SPACE GROUP: {group.symbol}",
        f"      X-RAY WAVELENGTH: {CU_KA:11.6f}",
        "      The INTENSITY cut off value is   1.00",
        "",
        "               2-THETA      INTENSITY    D-SPACING   H   K   L",
    ]
    for tt, intensity, d, (h, k, l) in zip(peaks.two_theta, peaks.intensity, peaks.d_spacing,
                                           peaks.hkl):
        if round(float(intensity), 2) >= 1.0:
            lines.append(f"{tt:22.2f}{intensity:15.2f}{d:14.4f}{h:5d}{k:4d}{l:4d}")
    lines.append("=" * 80)
    return "\n".join(lines) + "\n"


def plain_xy_text(name: str, counts: np.ndarray) -> str:
    """A plain two-column file with one comment line."""
    return (f"# {name}: simulated by xrd-classify (Cu Ka, 2theta in degrees, counts)\n"
            + _rows(counts, " "))


def example_texts() -> dict[str, str]:
    """File name -> content of every example file (simulates; about a second)."""
    peaks = _peak_lists()
    sticks = _sticks(peaks)
    measured = _counts(augment_profiles(sticks, EXAMPLE_GRID, EXAMPLE_AUGMENTATION,
                                        np.random.default_rng(SEED)))
    plain = _counts(augment_profiles(sticks, EXAMPLE_GRID, EXAMPLE_AUGMENTATION,
                                     np.random.default_rng(SEED + 1)))
    texts = {}
    for index, (name, p) in enumerate(zip(EXAMPLE_STRUCTURES, peaks)):
        rid = _rruff_id(index)
        texts[f"{rid}_{name}_XY.txt"] = rruff_xy_text(name, rid, p, measured[index])
        texts[f"{rid}_{name}.dif"] = dif_text(name, rid, p)
        texts[f"{name}.xy"] = plain_xy_text(name, plain[index])
    return texts


def write_examples(folder: str | Path = EXAMPLES_DIR) -> list[Path]:
    """Write the example files into ``folder`` (created if needed); returns their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in example_texts().items():
        path = folder / name
        path.write_bytes(text.encode("utf-8"))
        paths.append(path)
    return paths


def read_examples(names: list[str] | None = None,
                  folder: str | Path = EXAMPLES_DIR) -> list[tuple[str, bytes]]:
    """(name, bytes) of committed example files (all, or those named), in listing order."""
    wanted = [f.name for f in example_files() if names is None or f.name in names]
    return [(name, (Path(folder) / name).read_bytes()) for name in wanted
            if (Path(folder) / name).is_file()]


if __name__ == "__main__":
    for written in write_examples(sys.argv[1] if len(sys.argv) > 1 else EXAMPLES_DIR):
        print(written)
