"""Tally how many symmetry-independent sites COD structures have, and how special the
Wyckoff positions of those sites are, overall and per crystal system, into
``core/data/site_frequency.json`` (numbers only; the structures stay in ``../shared``).
Run from the project root: ``python scripts/site_frequency.py``."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.structures import read_cif_folder  # noqa: E402
from core.symmetry import crystal_system_of, site_symmetry_order  # noqa: E402

FOLDER = ROOT.parent / "shared" / "data" / "cod_cifs"
OUT = ROOT / "core" / "data" / "site_frequency.json"


def _keyed(counts: Counter) -> dict[str, int]:
    """``counts`` in numeric order, with string keys as JSON needs."""
    return {str(k): v for k, v in sorted(counts.items())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Tally COD's independent-site counts.")
    parser.add_argument("--folder", type=Path, default=FOLDER, help="CIF folder to tally")
    parser.add_argument("--out", type=Path, default=OUT, help="JSON file to write")
    args = parser.parse_args(argv)
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    batch = read_cif_folder(args.folder)
    overall: Counter = Counter()
    by_system: dict[str, Counter] = defaultdict(Counter)
    orders: Counter = Counter()
    orders_by_system: dict[str, Counter] = defaultdict(Counter)
    cells_by_system: dict[str, Counter] = defaultdict(Counter)
    for structure in batch.structures:
        analyzer = SpacegroupAnalyzer(structure, symprec=0.01)
        number = analyzer.get_space_group_number()
        system = crystal_system_of(number)
        symmetrized = analyzer.get_symmetrized_structure()
        overall[len(symmetrized.equivalent_sites)] += 1
        by_system[system][len(symmetrized.equivalent_sites)] += 1
        atoms = len(analyzer.get_conventional_standard_structure())
        cells_by_system[system][(len(symmetrized.equivalent_sites), atoms)] += 1
        for orbit in symmetrized.equivalent_indices:
            order = site_symmetry_order(number, symmetrized.wyckoff_letters[orbit[0]])
            orders[order] += 1
            orders_by_system[system][order] += 1
    data = {
        "description": (
            f"Number of symmetry-independent atomic sites (Wyckoff orbits) in "
            f"{sum(overall.values())} COD inorganic structures (numbers only), overall and per "
            "crystal system, tallied with pymatgen's SpacegroupAnalyzer (symprec 0.01) from "
            "../shared/data/cod_cifs by scripts/site_frequency.py. Used by core.fast_crystals "
            "to draw how many sites a random crystal gets. Source: Crystallography Open "
            "Database (CC0)."),
        "counts": _keyed(overall),
        "by_system": {system: _keyed(counts) for system, counts in sorted(by_system.items())},
        "site_orders_description": (
            "Independent sites by the order of their site-symmetry group (1: general "
            "position; 2: e.g. an inversion centre), overall and per crystal system. Used by "
            "core.structures to choose Wyckoff positions like real crystals do."),
        "site_orders": _keyed(orders),
        "site_orders_by_system": {system: _keyed(counts)
                                  for system, counts in sorted(orders_by_system.items())},
        "cells_description": (
            "Per crystal system, how many structures have each combination \"independent "
            "sites,atoms in the conventional standard cell\". Used by core.structures to size random "
            "crystals like real ones (sites=\"cod-cells\")."),
        "cells_by_system": {system: {f"{sites},{atoms}": n
                                     for (sites, atoms), n in sorted(counts.items())}
                            for system, counts in sorted(cells_by_system.items())},
    }
    args.out.write_text(json.dumps(data, indent=1) + "\n")
    print(f"{sum(overall.values())} structures ({len(batch.failures)} unreadable) -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
