"""The committed example files are what core.examples generates, and every reader takes them."""

from __future__ import annotations

import numpy as np
import pytest

from core.examples import (EXAMPLE_GRID, EXAMPLES_DIR, FORMATS, example_files, read_examples,
                           write_examples)
from core.readers import read_dif, read_pattern


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory):
    folder = tmp_path_factory.mktemp("examples")
    return folder, write_examples(folder)


def test_write_examples_regenerates_the_committed_files(regenerated):
    folder, paths = regenerated
    assert [p.name for p in paths] == [f.name for f in example_files()]
    committed = sorted(p.name for p in EXAMPLES_DIR.iterdir() if p.is_file())
    assert committed == sorted(p.name for p in paths), "examples/ holds other files"
    for path in paths:
        assert path.read_bytes() == (EXAMPLES_DIR / path.name).read_bytes(), \
            f"examples/{path.name} is out of date: run `python -m core.examples` and commit"


def test_examples_are_small_and_cover_every_format():
    total = sum((EXAMPLES_DIR / f.name).stat().st_size for f in example_files())
    assert total < 1_000_000
    assert {f.format for f in example_files()} == set(FORMATS)
    assert len({f.structure for f in example_files()}) == 3


@pytest.mark.parametrize("example", example_files(), ids=lambda f: f.name)
def test_each_example_reads_back(example):
    pattern = read_pattern(EXAMPLES_DIR / example.name)
    if example.format == "dif":
        assert pattern.kind == "dif"
        assert pattern.sg_number == example.sg_number
        dif = read_dif(EXAMPLES_DIR / example.name)
        assert dif.mineral == example.structure and dif.n_peaks >= 3
        assert len(dif.cell) == 6 and dif.metadata["rruff_id"] in example.name
        return
    assert pattern.kind == example.format
    assert pattern.two_theta.size == EXAMPLE_GRID.size
    np.testing.assert_allclose(pattern.two_theta[[0, -1]], [5.0, 90.0])
    # Counts: integers, peaks well above the background, noisy (no two neighbours all equal).
    assert np.all(pattern.intensity == np.rint(pattern.intensity))
    assert pattern.intensity.max() > 5 * np.median(pattern.intensity)
    assert np.count_nonzero(np.diff(pattern.intensity)) > 0.5 * pattern.intensity.size
    if example.format == "rruff_xy":
        assert pattern.metadata["rruff_id"] in example.name
        assert pattern.wavelength == pytest.approx(1.54184)
        assert len(pattern.metadata["cell"]) == 6
    else:
        assert pattern.wavelength is None


def test_rruff_pairs_share_their_id_and_the_profile_peaks_match_the_dif():
    for structure in ("LiFePO4", "Si", "TiO2"):
        files = {f.format: f for f in example_files() if f.structure == structure}
        xy = read_pattern(EXAMPLES_DIR / files["rruff_xy"].name)
        dif = read_dif(EXAMPLES_DIR / files["dif"].name)
        assert xy.metadata["rruff_id"] == dif.metadata["rruff_id"]
        # The strongest measured peak lies within half a degree of a DIF peak.
        strongest = xy.two_theta[np.argmax(xy.intensity)]
        assert np.min(np.abs(dif.two_theta - strongest)) < 0.5, structure


def test_read_examples_selects_by_name():
    assert [n for n, _ in read_examples(["Si.xy", "R990002_Si.dif"])] == ["R990002_Si.dif", "Si.xy"]
    everything = read_examples()
    assert len(everything) == len(example_files())
    assert all(isinstance(content, bytes) and content for _, content in everything)
