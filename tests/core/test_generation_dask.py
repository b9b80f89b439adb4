"""Generation on Dask: an existing cluster given by scheduler address, and ``"local"``.

Both go through the same ``core.generation`` code path as the process pool; the results must
be the same crystals (ids, labels) as a plain in-process run with the same seed.
"""

from __future__ import annotations

import sys
import threading
import time
import types

import pytest

from core.generation import generate_from_structures, generate_synthetic, neutral_main
from core.sources import SourceError, check_scheduler
from core.structures import RandomCrystalSpec

distributed = pytest.importorskip("dask.distributed")

GROUPS = [2, 14, 62, 139, 194, 225]          # six crystals, one per group
SPEC = RandomCrystalSpec(max_atoms=24)


@pytest.fixture(scope="module")
def cluster():
    with neutral_main():  # as if started elsewhere: not by whatever __main__ a test left
        local = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                         dashboard_address=None)
    with local:
        yield local


@pytest.fixture(scope="module")
def reference():
    """The same request run in this process, without Dask."""
    return generate_synthetic(GROUPS, seed=5, spec=SPEC, processes=1)


def test_existing_cluster_by_address(cluster, reference):
    calls = []
    report = generate_synthetic(GROUPS, seed=5, spec=SPEC, scheduler=cluster.scheduler_address,
                                progress=lambda done, total: calls.append((done, total)))
    assert report.requested == len(GROUPS)
    assert not report.cancelled
    assert len(report.rows) + len(report.failures) == len(GROUPS)
    assert len(report.rows) >= 4
    # Same seed -> same crystals, in request order, whoever computed them.
    assert list(report.rows["id"]) == list(reference.rows["id"])
    assert list(report.rows["sg_number"]) == list(reference.rows["sg_number"])
    assert set(report.rows["requested_sg"]) <= set(GROUPS)
    assert report.rows["sg_number"].between(1, 230).all()
    assert all(len(t) > 0 for t in report.rows["two_theta"])
    assert calls and calls[-1] == (len(GROUPS), len(GROUPS))
    # The cluster is the caller's: it is still up after the run.
    with distributed.Client(cluster.scheduler_address) as client:
        assert len(client.scheduler_info()["workers"]) == 2


def test_structures_on_existing_cluster(cluster):
    from pymatgen.core import Lattice, Structure

    nacl = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"],
                                     [[0, 0, 0], [0.5, 0.5, 0.5]])
    report = generate_from_structures([nacl, nacl], ["a", "b"], "cif",
                                      scheduler=cluster.scheduler_address)
    assert list(report.rows["id"]) == ["a", "b"]
    assert list(report.rows["sg_number"]) == [225, 225]
    assert (report.rows["source"] == "cif").all()


def test_local_cluster(reference):
    """``scheduler="local"`` starts (and closes) a Dask cluster on this machine."""
    report = generate_synthetic(GROUPS[:2], seed=5, spec=SPEC, scheduler="local", processes=1)
    assert report.requested == 2 and not report.cancelled
    assert len(report.rows) + len(report.failures) == 2
    first_two = [i for i in reference.rows["id"] if i.split("-")[2] in ("0", "1")]
    assert list(report.rows["id"]) == first_two


def test_local_cluster_starts_under_a_page_script_as_main(tmp_path, reference):
    """Streamlit runs each page as ``__main__``; spawned Dask workers must not re-run it."""
    page = tmp_path / "page.py"
    page.write_text("raise SystemExit('a page script ran in a worker process')\n")
    fake = types.ModuleType("__main__")
    fake.__file__ = str(page)
    saved = sys.modules["__main__"]
    sys.modules["__main__"] = fake
    try:
        report = generate_synthetic(GROUPS[:1], seed=5, spec=SPEC, scheduler="local", processes=1)
        assert sys.modules["__main__"] is fake  # the page's own __main__ is given back
    finally:
        sys.modules["__main__"] = saved
    assert len(report.rows) + len(report.failures) == 1
    assert list(report.rows["id"]) == [i for i in reference.rows["id"] if i.split("-")[2] == "0"]


def test_cancel_before_start_returns_nothing(cluster):
    cancel = threading.Event()
    cancel.set()
    report = generate_synthetic(GROUPS, seed=5, spec=SPEC, scheduler=cluster.scheduler_address,
                                cancel=cancel)
    assert report.cancelled
    assert len(report.rows) <= 1  # at most the first result that finished before the check


def test_scheduler_check(cluster):
    """The page checks an address before starting a build: Dask's own connect timeout is
    30 s, too long to leave a person waiting on a typo."""
    check_scheduler(cluster.scheduler_address)
    check_scheduler("local")
    check_scheduler("")
    started = time.monotonic()
    with pytest.raises(SourceError, match="no Dask scheduler answers"):
        check_scheduler("tcp://127.0.0.1:9", timeout=2)
    assert time.monotonic() - started < 15
    for typo in ("foo bar", "http://host:1", "tcp://127.0.0.1:port"):
        with pytest.raises(SourceError, match="not a Dask scheduler address"):
            check_scheduler(typo)
