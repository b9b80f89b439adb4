"""Dataset generation: random crystals labelled by spglib, given structures, cancelling,
time limits and the real-world space-group prior."""

from __future__ import annotations

import threading
import time

import numpy as np
import pandas as pd
import pytest
from pymatgen.core import Lattice, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from core import generation
from core.generation import (
    GenerationReport,
    generate_from_structures,
    generate_synthetic,
    space_group_prior,
    space_groups_by_prior,
)
from core.structures import RandomCrystalSpec, bundled_structures, random_crystal

SPEC = RandomCrystalSpec(max_atoms=24)
GROUPS = [2, 14, 62, 225]


@pytest.fixture(scope="module")
def report() -> tuple[GenerationReport, list[tuple[int, int]]]:
    calls: list[tuple[int, int]] = []
    result = generate_synthetic(GROUPS, seed=0, spec=SPEC, processes=1,
                                progress=lambda done, total: calls.append((done, total)))
    return result, calls


def test_synthetic_rows_and_progress(report):
    result, calls = report
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert result.requested == 4 and not result.cancelled
    assert len(result.rows) + len(result.failures) == 4
    assert len(result.rows) >= 3
    rows = result.rows
    assert rows["source"].unique().tolist() == ["synthetic"]
    assert rows["id"].is_unique
    for _, row in rows.iterrows():
        index = int(row["id"].split("-")[2])
        assert row["id"] == f"syn-0-{index}-sg{GROUPS[index]}"
        assert row["requested_sg"] == GROUPS[index]
        assert len(row["two_theta"]) == len(row["h"]) > 0


def test_labels_come_from_spglib(report):
    result, _ = report
    for _, row in result.rows.iterrows():
        index = int(row["id"].split("-")[2])
        number = GROUPS[index]
        # The job's crystal, rebuilt from the same seed, is labelled as stored.
        structure = random_crystal(number, np.random.default_rng([0, index, number]), SPEC)
        detected = SpacegroupAnalyzer(structure, symprec=0.1).get_space_group_number()
        assert row["sg_number"] == detected
        assert row["formula"] == structure.composition.reduced_formula


def test_mismatched_count(report):
    result, _ = report
    rows = result.rows
    assert result.mismatched == int((rows["requested_sg"] != rows["sg_number"]).sum())
    edited = rows.copy()
    edited["sg_number"] = 1  # every label now differs from the request
    edited.loc[edited.index[0], "requested_sg"] = -1  # ... except a row with no request
    assert GenerationReport(rows=edited).mismatched == len(rows) - 1


def test_synthetic_is_reproducible(report):
    result, _ = report
    again = generate_synthetic(GROUPS[:2], seed=0, spec=SPEC, processes=1)
    first = result.rows[result.rows["requested_sg"].isin(GROUPS[:2])].reset_index(drop=True)
    assert again.rows["id"].tolist() == first["id"].tolist()
    for a, b in zip(again.rows["two_theta"], first["two_theta"]):
        np.testing.assert_allclose(a, b)
    other = generate_synthetic(GROUPS[:1], seed=1, spec=SPEC, processes=1)
    assert other.rows["id"].tolist() == ["syn-1-0-sg2"]
    assert not np.array_equal(other.rows["two_theta"][0], first["two_theta"][0])


def test_process_pool_gives_the_same_rows(report):
    result, _ = report
    calls = []
    pooled = generate_synthetic(GROUPS, seed=0, spec=SPEC, processes=2,
                                progress=lambda d, t: calls.append(d))
    assert calls == [1, 2, 3, 4]
    pd.testing.assert_series_equal(pooled.rows["id"], result.rows["id"])
    assert pooled.rows["sg_number"].tolist() == result.rows["sg_number"].tolist()


def test_cancel_stops_early():
    cancel = threading.Event()
    result = generate_synthetic([2, 2, 2, 2, 2, 2], seed=0, spec=SPEC, processes=1,
                                progress=lambda done, total: cancel.set(), cancel=cancel)
    assert result.cancelled
    assert result.requested == 6
    assert len(result.rows) + len(result.failures) == 1


def test_cancel_before_start():
    cancel = threading.Event()
    cancel.set()
    result = generate_synthetic([2, 14], seed=0, spec=SPEC, processes=1, cancel=cancel)
    assert result.cancelled and len(result.rows) == 0 and result.failures == []
    assert list(result.rows.columns)[:4] == ["id", "source", "formula", "sg_number"]


def test_impossible_requests_are_failures_not_errors():
    result = generate_synthetic([229], seed=0, spec=RandomCrystalSpec(max_atoms=1), processes=1)
    assert len(result.rows) == 0
    assert len(result.failures) == 1
    name, reason = result.failures[0]
    assert name == "syn-0-0-sg229" and "RuntimeError" in reason


def test_time_limit_abandons_a_slow_crystal(monkeypatch):
    """A crystal that takes longer than the limit is abandoned and counted as a failure, even
    when the limit expires inside pyxtal (whose errors random_crystal otherwise retries)."""
    generate_synthetic([2], seed=0, spec=SPEC, processes=1)  # imports and caches warm
    monkeypatch.setattr(generation, "CRYSTAL_TIME_LIMIT_S", 0.3)
    started = time.perf_counter()
    # Hexagonal group 194 with seed 1 needs about 2 s of pyxtal placement attempts.
    result = generate_synthetic([194], seed=1, spec=SPEC, processes=1)
    elapsed = time.perf_counter() - started
    assert len(result.rows) == 0, f"finished after {elapsed:.2f} s despite the 0.3 s limit"
    assert result.failures[0][1].startswith("TimeoutError")


def test_generate_from_structures_reports_failures():
    batch = bundled_structures()
    silicon = batch.structures[batch.names.index("Si")]
    rock_salt = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"],
                                          [[0, 0, 0], [0.5, 0.5, 0.5]])
    empty = Structure(Lattice.cubic(3.0), [], [])
    calls = []
    result = generate_from_structures([silicon, empty, rock_salt], ["si", "empty", "nacl"],
                                      "cif", processes=1, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(1, 3), (2, 3), (3, 3)]
    assert result.rows["id"].tolist() == ["si", "nacl"]
    assert result.rows["sg_number"].tolist() == [227, 225]
    assert result.rows["source"].unique().tolist() == ["cif"]
    assert result.rows["requested_sg"].tolist() == [-1, -1]
    assert result.mismatched == 0
    assert [name for name, _ in result.failures] == ["empty"]
    assert result.requested == 3 and not result.cancelled


def test_space_group_prior():
    prior = space_group_prior()
    assert prior.shape == (230,)
    assert prior.sum() == pytest.approx(1.0)
    assert np.all(prior > 0)  # smoothing: every group can be drawn
    # Common inorganic groups are far more likely than the rarest ones.
    assert prior[13] > 10 * prior.min() and prior[224] > 10 * prior.min()


@pytest.mark.parametrize("total, minimum", [(500, 1), (100, 1), (600, 2), (50, 0)])
def test_space_groups_by_prior(total, minimum):
    numbers = space_groups_by_prior(total, seed=0, minimum=minimum)
    assert len(numbers) == max(total, 230 * minimum)
    counts = np.bincount(numbers, minlength=231)[1:]
    assert counts.min() >= minimum
    assert all(isinstance(n, int) and 1 <= n <= 230 for n in numbers)
    assert space_groups_by_prior(total, seed=0, minimum=minimum) == numbers
    assert space_groups_by_prior(total, seed=1, minimum=minimum) != numbers


def test_space_groups_by_prior_follows_the_prior():
    numbers = space_groups_by_prior(20000, seed=0, minimum=0)
    observed = np.bincount(numbers, minlength=231)[1:] / len(numbers)
    prior = space_group_prior()
    common = np.argsort(prior)[-5:]
    np.testing.assert_allclose(observed[common], prior[common], rtol=0.15)


def test_time_limit_check_catches_an_expiry_that_library_code_swallowed():
    with generation._TimeLimit(0.05) as limit:
        try:
            time.sleep(1.0)  # the alarm raises here, inside "library code" ...
        except TimeoutError:
            pass  # ... which swallows it, as pyxtal does with some of its own retries
        with pytest.raises(TimeoutError, match="gave up after 0.05 s"):
            limit.check()
    with generation._TimeLimit(5.0) as limit:
        limit.check()  # not expired: nothing raised


def test_datasets_with_seeds_finds_crystals_already_made():
    from core import dataset as store
    from core.paths import datasets_dir

    rows = generate_synthetic([2, 14, 62], seed=913, processes=1, engine="fast").rows
    store.create("seed_913", rows, command="test")
    assert generation.datasets_with_seeds([913], "fast") == {"seed_913": len(rows)}
    assert generation.datasets_with_seeds([914], "fast") == {}
    assert generation.datasets_with_seeds([913], "pyxtal") == {}  # other ids, other crystals
    # "fast-91-..." must not match seed 9 or 91 by prefix alone.
    assert generation.datasets_with_seeds([91, 9], "fast") == {}
    (datasets_dir() / "broken_seed.parquet").write_bytes(b"not parquet")
    try:
        assert generation.datasets_with_seeds([913, 914], "fast") == {"seed_913": len(rows)}
    finally:
        (datasets_dir() / "broken_seed.parquet").unlink()
        store.delete("seed_913")
