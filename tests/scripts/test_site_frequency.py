"""The committed site-count table is what scripts/site_frequency.py tallies from COD."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import COD_CIFS, PROJECT, needs_cod

SCRIPT = PROJECT / "scripts" / "site_frequency.py"
TABLE = PROJECT / "core" / "data" / "site_frequency.json"


@needs_cod
def test_committed_table_is_reproduced_from_cod(tmp_path):
    out = tmp_path / "site_frequency.json"
    subprocess.run([sys.executable, str(SCRIPT), "--folder", str(COD_CIFS), "--out", str(out)],
                   check=True, cwd=PROJECT, capture_output=True, timeout=600)
    tallied, committed = json.loads(out.read_text()), json.loads(TABLE.read_text())
    assert tallied["counts"] == committed["counts"]
    assert tallied["by_system"] == committed["by_system"]
    assert tallied["site_orders"] == committed["site_orders"]
    assert tallied["site_orders_by_system"] == committed["site_orders_by_system"]
    assert tallied["cells_by_system"] == committed["cells_by_system"]
    assert sum(sum(c.values()) for c in committed["cells_by_system"].values()) == 704
    assert sum(committed["site_orders"].values()) == sum(
        int(k) * v for k, v in committed["counts"].items())  # one order per independent site
    assert sum(committed["counts"].values()) == 704


def test_a_folder_of_structures_is_tallied_per_crystal_system(tmp_path):
    """Without ../shared: two CIFs written here (rock salt, and a triclinic cell)."""
    from pymatgen.core import Lattice, Structure

    folder = tmp_path / "cifs"
    folder.mkdir()
    Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"],
                              [[0, 0, 0], [0.5, 0.5, 0.5]]).to(filename=str(folder / "nacl.cif"))
    Structure(Lattice.from_parameters(5.1, 6.2, 7.3, 81, 95, 103), ["Si", "O", "O"],
              [[0.1, 0.2, 0.3], [0.4, 0.15, 0.7], [0.8, 0.6, 0.05]]).to(
                  filename=str(folder / "p1.cif"))
    out = tmp_path / "table.json"
    subprocess.run([sys.executable, str(SCRIPT), "--folder", str(folder), "--out", str(out)],
                   check=True, cwd=PROJECT, capture_output=True, timeout=300)
    table = json.loads(out.read_text())
    assert table["counts"] == {"2": 1, "3": 1}
    assert table["by_system"] == {"cubic": {"2": 1}, "triclinic": {"3": 1}}
    # Na and Cl of rock salt sit on Fm-3m's 4a and 4b (site symmetry m-3m, order 48); the
    # triclinic cell is P1, all of whose sites are general.
    assert table["site_orders_by_system"] == {"cubic": {"48": 2}, "triclinic": {"1": 3}}
    assert table["site_orders"] == {"1": 3, "48": 2}
    # Rock salt's conventional cell holds 8 atoms on its 2 sites; the P1 cell 3 on 3.
    assert table["cells_by_system"] == {"cubic": {"2,8": 1}, "triclinic": {"3,3": 1}}
    assert "2 COD inorganic structures" in table["description"]
