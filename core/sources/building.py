"""Turning structures into stored dataset rows: checking the target dataset
(:func:`check_target`), simulating random crystals (:func:`synthesize_and_store`) or the
structures of a batch (:func:`simulate_and_store`) and writing the patterns in one atomic
write (:func:`store_rows`), reporting what was added and skipped as a :class:`BuildResult`.
Builds may run on worker processes or a Dask scheduler (:func:`check_scheduler`), and report
progress and watch for cancellation through a :class:`~core.sources.background.BackgroundJob`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pandas as pd

from core import dataset as store
from core.generation import GenerationReport, generate_from_structures, generate_synthetic
from core.grid import CU_KA
from core.sources.errors import SourceError
from core.structures import RandomCrystalSpec, StructureBatch

if TYPE_CHECKING:
    from core.sources.background import BackgroundJob


def check_target(name: str, mode: str) -> None:
    """Check that rows can go to dataset ``name`` (``mode`` ``"new"`` or ``"append"``).

    Raises:
        SourceError: an invalid or taken name for a new dataset, a missing or protected one
            to append to.
    """
    name = (name or "").strip()
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}", name):
        raise SourceError(f"dataset name {name!r}: use 1-64 letters, digits, '-', '_' or '.', "
                          "starting with a letter or digit")
    path = store.dataset_path(name)
    if name == "default" or path == store.bundled_dataset_path():
        raise SourceError("the bundled dataset 'default' is read-only: create a new dataset "
                          "or append to one you made")
    if mode == "new" and path.exists():
        raise SourceError(f"dataset {name!r} already exists: choose another name, or append to it")
    if mode == "append" and not path.exists():
        raise SourceError(f"dataset {name!r} does not exist: create it as a new dataset")
    if mode not in ("new", "append"):
        raise SourceError(f"unknown target mode {mode!r} (new or append)")


def store_rows(name: str, rows: pd.DataFrame, mode: str, command: str = "", **meta) -> int:
    """Write ``rows`` to dataset ``name`` in one atomic write; returns the rows added.

    Rows whose id is already in the dataset (the same CIF or material imported twice) are not
    added again.

    Raises:
        SourceError: see :func:`check_target`; also when there is nothing to store.
    """
    check_target(name, mode)
    rows = rows.drop_duplicates("id")
    if rows.empty:
        raise SourceError("nothing to store: no pattern could be simulated")
    if mode == "new":
        store.create(name, rows, command=command, **meta)
        return len(rows)
    before = len(store.load(name))
    return len(store.append(name, rows)) - before


@dataclass
class BuildResult:
    """What a build stored: the dataset, the patterns added, and what was skipped."""

    dataset: str
    added: int
    requested: int
    failures: list[tuple[str, str]] = field(default_factory=list)
    mismatched: int = 0
    cancelled: bool = False
    saved: bool = True


def _finish(report: GenerationReport, name: str, mode: str, command: str,
            read_failures: Sequence[tuple[str, str]], keep_partial: bool) -> BuildResult:
    failures = [*read_failures, *report.failures]
    if report.cancelled and not keep_partial:
        return BuildResult(name, 0, report.requested, failures, report.mismatched, True, False)
    added = store_rows(name, report.rows, mode, command=command) if len(report.rows) else 0
    if not len(report.rows) and not report.cancelled:
        raise SourceError("nothing to store: no pattern could be simulated"
                          + (f" ({failures[0][0]}: {failures[0][1]})" if failures else ""))
    return BuildResult(name, added, report.requested, failures, report.mismatched,
                       report.cancelled, bool(added))


def synthesize_and_store(space_groups: Sequence[int], name: str, mode: str, seed: int = 0,
                         spec: RandomCrystalSpec = RandomCrystalSpec(), command: str = "",
                         processes: int | None = None, scheduler: str | None = None,
                         job: "BackgroundJob | None" = None, engine: str = "pyxtal") -> BuildResult:
    """Random crystals for ``space_groups`` (repeat a number for several), simulated and
    stored by ``engine`` (see :func:`core.generation.generate_synthetic`). With a ``job``,
    progress and cancellation go through it."""
    check_target(name, mode)
    if job:
        job.stage = "generating random crystals"
    report = generate_synthetic(space_groups, seed=seed, spec=spec, wavelength=CU_KA,
                                processes=processes, scheduler=scheduler,
                                progress=job.progress if job else None,
                                cancel=job.cancel if job else None, engine=engine)
    return _finish(report, name, mode, command, [], job.keep_partial if job else True)


def simulate_and_store(batch: StructureBatch, source: str, name: str, mode: str,
                       command: str = "", processes: int | None = None,
                       scheduler: str | None = None,
                       job: "BackgroundJob | None" = None) -> BuildResult:
    """Simulate the structures of ``batch`` (ids are ``batch.names``) and store them; the
    batch's read failures are reported with the simulation failures."""
    check_target(name, mode)
    if not batch.structures:
        reasons = "; ".join(f"{n}: {r}" for n, r in batch.failures[:3])
        raise SourceError("no structure to simulate" + (f" ({reasons})" if reasons else ""))
    if job:
        job.stage = f"simulating {len(batch.structures)} structures"
    report = generate_from_structures(batch.structures, batch.names, source, wavelength=CU_KA,
                                      processes=processes, scheduler=scheduler,
                                      progress=job.progress if job else None,
                                      cancel=job.cancel if job else None)
    return _finish(report, name, mode, command, batch.failures,
                   job.keep_partial if job else True)


def check_scheduler(address: str, timeout: float = 5.0) -> None:
    """Check that a Dask scheduler answers at ``address`` (``"local"`` always does).

    Raises:
        SourceError: nothing answers there within ``timeout`` seconds.
    """
    if not address or address == "local":
        return
    if not re.fullmatch(r"((tcp|tls|ws|wss)://)?[\w.\-\[\]:]+:\d{1,5}/?", address.strip()):
        raise SourceError(f"{address!r} is not a Dask scheduler address: write it as "
                          "tcp://host:8786, or 'local' for a cluster on this machine")
    from dask.distributed import Client

    try:
        with Client(address, timeout=timeout):
            pass
    except Exception as exc:  # OSError or TimeoutError mostly; distributed raises others too
        detail = ((str(exc).strip().splitlines() or ["no answer"])[0][:160]
                  if isinstance(exc, (OSError, TimeoutError))
                  else "something answers there, but not as a Dask scheduler")
        raise SourceError(f"no Dask scheduler answers at {address!r} within {timeout:g} s "
                          f"({detail}); start one with `dask scheduler`, or leave the field "
                          "empty to use worker processes here") from None
