"""How often does indexing (:mod:`core.indexing`) find the right cell of real patterns?

Usage (from the project root)::

    python benchmarks/indexing.py [--quick] [--out DIR]

Sets, where ``../shared`` has them:

* RRUFF ``rruff_dev``: 222 measured patterns, peaks picked as the Classify page picks them;
* the DIF peak lists of the same minerals;
* COD ``cod_cifs``: 704 structures simulated with pymatgen (peaks of at least 1 % height).

The best cell is scored against the reference cell: the right crystal family (trigonal and
hexagonal are one family here), the right Bravais lattice, and the right volume per lattice
point (within 2 %, so that any setting of the right lattice counts). Triclinic cells are
searched only when no cell of higher symmetry indexes every line convincingly. Also reported:
the same over the patterns whose best cell has M20 >= 20, which the Classify page calls
convincing, and seconds per pattern.

Where the lattice is right, the systematic absences of the indexed lines
(:mod:`core.absences`) are scored too: whether the true space group allows every indexed line,
and whether it is among the groups of its lattice with the most absences (the fewest allowed
reflections). What indexing adds to the bundled model's ranking is in ``accuracy.py``'s
paired differences (the app indexes by default).

Writes ``indexing.json`` and the indexing section of ``results.md`` in ``--out``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import accuracy  # noqa: E402 - needs HERE on the path
import run_all  # noqa: E402

run_all.setup_paths()

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from core.indexing import CONVINCING_M20, FAMILY_OF_SYSTEM, LATTICE_POINTS  # noqa: E402

JSON_FILE = "indexing.json"
QUICK_PATTERNS = 12
VOLUME_TOLERANCE = 0.02


def score(two_theta: np.ndarray, wavelength: float, sg_number: int, cell: tuple,
          cell_sg_number: int | None = None) -> dict:
    """Index one pattern's peaks and compare the best cell with the reference ``cell`` (whose
    centring is that of ``cell_sg_number``, else of ``sg_number``)."""
    from pymatgen.core import Lattice

    from core.absences import best_cell
    from core.symmetry import bravais_lattice_of, by_number

    started = time.perf_counter()
    best, evidence = best_cell(two_theta, wavelength)
    seconds = time.perf_counter() - started
    lattice = bravais_lattice_of(sg_number)
    system = by_number(sg_number).crystal_system
    centring = bravais_lattice_of(cell_sg_number or sg_number)[1]
    reduced = Lattice.from_parameters(*cell).volume / LATTICE_POINTS[centring]
    lattice_right = bool(best and best.bravais_lattice == lattice)
    true = evidence.get(sg_number) if lattice_right else None
    rivals = [e.allowed for n, e in evidence.items()
              if e.consistent and bravais_lattice_of(n) == lattice]
    return {
        "absences_consistent": bool(true and true.consistent),
        "absences_most": bool(true and true.consistent and true.allowed == min(rivals)),
        "system": system, "seconds": seconds, "found": best is not None,
        "m20": best.m20 if best else 0.0,
        "family_right": bool(best and best.system == FAMILY_OF_SYSTEM[system]),
        "lattice_right": lattice_right,
        "volume_right": bool(best and abs(best.volume / best.lattice_points - reduced)
                             < VOLUME_TOLERANCE * reduced),
    }


def rruff_rows(column: str, count: int | None) -> list[tuple]:
    """(peaks, wavelength, sg_number, cell) of the RRUFF patterns or of their DIF lists."""
    from core.grid import CU_KA
    from core.peaks import pattern_peaks
    from core.readers import read_pattern

    labels = pd.read_csv(accuracy.RRUFF_DEV / "labels.csv")
    rows = []
    for _, row in labels.iloc[:count].iterrows():
        pattern = read_pattern(accuracy.RRUFF_DEV / row[column])
        cell = tuple(float(row[k]) for k in ("a", "b", "c", "alpha", "beta", "gamma"))
        rows.append((pattern_peaks(pattern), pattern.wavelength or CU_KA, int(row.sg_number), cell))
    return rows


def cod_rows(count: int | None, scratch: Path) -> list[tuple]:
    """(peaks of at least 1 % height, wavelength, sg_number, cell) of the COD structures,
    simulated with pymatgen; the cell is the conventional one the simulation used."""
    from core.simulation import simulate
    from core.structures import read_cif

    folder = accuracy.COD_CIFS
    if count is not None:
        folder = accuracy.subset_folder(folder, "file", count, scratch / "cod")
    rows = []
    for file, number in pd.read_csv(folder / "labels.csv")[["file", "sg_number"]].itertuples(index=False):
        try:
            peaks = simulate(read_cif(Path(accuracy.COD_CIFS) / Path(file).name))
        except Exception:  # noqa: BLE001 - a CIF that cannot be simulated is left out
            continue
        # Volume per lattice point from the simulated cell, whose centring is spglib's.
        rows.append((peaks.two_theta[peaks.intensity >= 1.0], peaks.wavelength, int(number),
                     peaks.lattice, peaks.sg_number))
    return rows


def summarise(label: str, results: list[dict]) -> dict:
    frame = pd.DataFrame(results)
    convincing = frame[frame.m20 >= CONVINCING_M20]

    def shares(part: pd.DataFrame) -> dict:
        return {key: int(part[key].sum()) for key in (
            "found", "family_right", "lattice_right", "volume_right", "absences_consistent",
            "absences_most")} | {"n": len(part)}

    return {
        "set": label, **shares(frame),
        "convincing": shares(convincing),
        "by_system": {system: shares(part) for system, part in frame.groupby("system")},
        "seconds_median": float(frame.seconds.median()),
        "seconds_max": float(frame.seconds.max()),
    }


def markdown(data: dict) -> str:
    lines = ["## Indexing (real data)", "",
             f"`python benchmarks/indexing.py`{' --quick' if data['quick'] else ''}, "
             f"{data['date']}. The best cell of each pattern against the reference cell: "
             "crystal family (trigonal and hexagonal together), Bravais lattice, and volume per "
             f"lattice point within {VOLUME_TOLERANCE:.0%}. Triclinic cells are searched when no "
             "higher one convinces. "
             f"*Convincing*: best cell with M20 >= {CONVINCING_M20:g}.", "",
             "| Set | n | cell found | family right | lattice right | volume right | "
             "convincing (share) | family right when convincing | lattice right when "
             "convincing | s per pattern (median / max) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]

    def pct(k: int, n: int) -> str:
        return f"{k / n:.1%}" if n else "–"

    for entry in data["results"]:
        n, c = entry["n"], entry["convincing"]
        lines.append(
            f"| {entry['set']} | {n} | {pct(entry['found'], n)} | {pct(entry['family_right'], n)} "
            f"| {pct(entry['lattice_right'], n)} | {pct(entry['volume_right'], n)} "
            f"| {c['n']} ({pct(c['n'], n)}) | {pct(c['family_right'], c['n'])} "
            f"| {pct(c['lattice_right'], c['n'])} "
            f"| {entry['seconds_median']:.2f} / {entry['seconds_max']:.1f} |")
    for entry in data["results"]:
        lines += ["", f"Family right by true crystal system, {entry['set']}: " + "; ".join(
            f"{system} {s['family_right']} of {s['n']}" for system, s in entry["by_system"].items())]
    lines += ["", "Systematic absences, over the patterns whose best cell has the right Bravais "
              "lattice: the true space group allows every indexed line (consistent), and it is "
              "among the consistent groups of its lattice with the fewest allowed reflections "
              "(most absences), which the re-ranking favours.", "",
              "| Set | lattice right | true group consistent | true group has the most absences |",
              "|---|---:|---:|---:|"]
    for entry in data["results"]:
        k = entry["lattice_right"]
        lines.append(f"| {entry['set']} | {k} | {pct(entry['absences_consistent'], k)} | "
                     f"{pct(entry['absences_most'], k)} |")
    for note in data["skipped"]:
        lines += ["", f"Skipped {note['set']}: {note['reason']}."]
    return "\n".join(lines) + "\n"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help=f"first {QUICK_PATTERNS} of each set")
    p.add_argument("--out", type=Path, default=HERE, help="folder for the result files")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    count = QUICK_PATTERNS if args.quick else None
    results, skipped = [], []
    quick = " (quick run)" if args.quick else ""
    if accuracy.RRUFF_DEV.is_dir():
        for column, label in (("pattern_file", "RRUFF rruff_dev, measured"),
                              ("structure_file", "RRUFF rruff_dev, DIF peak lists")):
            rows = rruff_rows(column, count)
            results.append(summarise(label + quick, [score(*row) for row in rows]))
            print(f"{label}: done", flush=True)
    else:
        skipped.append({"set": "RRUFF rruff_dev", "reason": f"{accuracy.RRUFF_DEV} not present"})
    if accuracy.COD_CIFS.is_dir():
        rows = cod_rows(count, args.out / "indexing_scratch")
        results.append(summarise("COD cod_cifs, simulated" + quick, [score(*row) for row in rows]))
    else:
        skipped.append({"set": "COD cod_cifs", "reason": f"{accuracy.COD_CIFS} not present"})
    data = {"date": run_all.now(), "quick": args.quick, "machine": run_all.machine_facts(),
            "results": results, "skipped": skipped}
    run_all.write_json(args.out / JSON_FILE, data)
    run_all.update_section(args.out, "indexing", markdown(data))
    print(markdown(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
