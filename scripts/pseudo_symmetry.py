"""How often is a crystal close to a more symmetric one? For COD's structures (numbers only;
they stay in ``../shared``) or for the fast engine's random crystals.

For each crystal, spglib counts the symmetry operations of the same cell at 0.1 Å and at
looser tolerances; a crystal whose count grows has pseudo-symmetry (its atoms sit within
that distance of a more symmetric arrangement). This is how ``RandomCrystalSpec.pseudo_symmetry``
was checked against real crystals. Run from the project root::

    python scripts/pseudo_symmetry.py cod                          # ../shared/data/cod_cifs
    python scripts/pseudo_symmetry.py generated --pseudo-symmetry 1  # one crystal per COD group
    python scripts/pseudo_symmetry.py generated --groups 2 14 62 --per-group 10
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.symmetry import symmetry_operations  # noqa: E402

COD = ROOT.parent / "shared" / "data" / "cod_cifs"
STRICT = 0.1
LOOSE = (0.25, 0.5, 1.0)
# Larger cells take spglib seconds each and are rare in COD (none of the 704 is skipped).
MAX_ATOMS = 400


def cod_cells(folder: Path):
    """(lattice, fractional coordinates, atomic numbers) of each ordered structure in ``folder``."""
    from core.structures import read_cif_folder

    for structure in read_cif_folder(folder).structures:
        if structure.is_ordered and len(structure) <= MAX_ATOMS:
            yield (structure.lattice.matrix, structure.frac_coords,
                   [site.specie.Z for site in structure])


def generated_cells(groups: list[int], pseudo_symmetry: float, seed: int):
    """One fast-engine crystal per entry of ``groups`` that spglib confirms (up to four tries),
    with sites and atoms like COD's (the plan ``train_v8`` and later sets use)."""
    from core.fast_crystals import detected_space_group, random_crystal_fast
    from core.structures import RandomCrystalSpec

    spec = RandomCrystalSpec(max_atoms=160, sites="cod-cells", positions="cod-system",
                             pseudo_symmetry=pseudo_symmetry)
    rng = np.random.default_rng(seed)
    for number in groups:
        for _ in range(4):
            try:
                crystal = random_crystal_fast(number, rng, spec)
            except RuntimeError:
                continue
            if detected_space_group(crystal) == number:
                yield crystal.spglib_cell()
                break


def shares(cells) -> dict:
    """Number of cells, and per loose tolerance the share whose operation count grows."""
    counts = np.array([[symmetry_operations(*cell, tolerance) for tolerance in (STRICT, *LOOSE)]
                       for cell in cells]).reshape(-1, 1 + len(LOOSE))
    return {"crystals": int(len(counts)),
            "more_symmetric_at": {str(t): round(float((counts[:, i + 1] > counts[:, 0]).mean()), 4)
                                  if len(counts) else 0.0 for i, t in enumerate(LOOSE)}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", choices=("cod", "generated"))
    parser.add_argument("--folder", type=Path, default=COD, help="CIF folder (labels.csv for "
                        "'generated' without --groups)")
    parser.add_argument("--groups", type=int, nargs="+", help="space groups to generate")
    parser.add_argument("--per-group", type=int, default=1)
    parser.add_argument("--pseudo-symmetry", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=901)
    parser.add_argument("--out", type=Path, help="also write the result as JSON here")
    args = parser.parse_args(argv)
    if args.source == "cod":
        cells = cod_cells(args.folder)
    else:
        groups = args.groups
        if not groups:
            import pandas as pd

            groups = [int(n) for n in pd.read_csv(args.folder / "labels.csv")["sg_number"]]
        cells = generated_cells([n for n in groups for _ in range(args.per_group)],
                                args.pseudo_symmetry, args.seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = shares(cells)
    result["source"] = args.source if args.source == "cod" else \
        f"generated (pseudo_symmetry {args.pseudo_symmetry}, seed {args.seed})"
    print(json.dumps(result))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
