"""Make datasets: random crystals or given structures -> simulated peak lists -> store rows.

One code path serves the CLI, the dataset page and the tests. Work is spread over local
processes, or over a Dask cluster when a scheduler address (or ``"local"``) is given.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import types
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from core.prior import space_group_prior
from core.simulation import SYMPREC, PeakList, simulate
from core.structures import RandomCrystalSpec, random_crystal

ProgressCallback = Callable[[int, int], None]


def space_groups_by_prior(total: int, seed: int = 0, minimum: int = 1) -> list[int]:
    """Space-group numbers for ``total`` crystals: every group ``minimum`` times, the rest
    drawn from :func:`space_group_prior`, shuffled (``230 * minimum`` numbers when that
    exceeds ``total``)."""
    rng = np.random.default_rng(seed)
    base = np.repeat(np.arange(1, 231), minimum)
    extra = rng.choice(np.arange(1, 231), size=max(0, total - len(base)), p=space_group_prior())
    numbers = np.concatenate([base, extra])
    rng.shuffle(numbers)
    return [int(n) for n in numbers]


@dataclass
class GenerationReport:
    """What a generation run produced and what it skipped."""

    rows: pd.DataFrame
    requested: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    cancelled: bool = False

    @property
    def mismatched(self) -> int:
        """Patterns whose detected space group differs from the one requested."""
        known = self.rows[self.rows["requested_sg"] > 0]
        return int((known["requested_sg"] != known["sg_number"]).sum())


# pyxtal occasionally spends minutes placing atoms for a crowded cell; such a crystal is
# abandoned (and counted as a failure) rather than holding up a whole run.
CRYSTAL_TIME_LIMIT_S = 20.0


class _TimeLimit:
    """Raise TimeoutError in the block after ``seconds`` (main thread of a process only;
    elsewhere, such as in Dask worker threads, the block runs unlimited)."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.armed = threading.current_thread() is threading.main_thread()
        self.expired = False

    def _expire(self, signum, frame):
        self.expired = True
        raise TimeoutError(f"gave up after {self.seconds:g} s")

    def check(self) -> None:
        """Raise TimeoutError if the limit passed, even where library code swallowed the
        error raised at that moment (pyxtal retries after some of its own exceptions)."""
        if self.expired:
            raise TimeoutError(f"gave up after {self.seconds:g} s")

    def __enter__(self) -> "_TimeLimit":
        if self.armed:
            self.previous = signal.signal(signal.SIGALRM, self._expire)
            signal.setitimer(signal.ITIMER_REAL, self.seconds)
        return self

    def __exit__(self, *exc):
        if self.armed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self.previous)
        return False


# Pattern ids of random crystals: "<prefix>-<seed>-<index>-sg<number>". The crystal is drawn
# from exactly (seed, index, number), so an id names one crystal for a given RandomCrystalSpec.
_ID_PREFIX = {"pyxtal": "syn", "fast": "fast"}


def _synthetic_id(engine: str, seed: int, index: int, number: int) -> str:
    return f"{_ID_PREFIX[engine]}-{seed}-{index}-sg{number}"


def _synthetic_job(args) -> tuple[str, int, PeakList | str]:
    number, seed, index, spec, wavelength = args
    rng = np.random.default_rng([seed, index, number])
    name = _synthetic_id("pyxtal", seed, index, number)
    try:
        with _TimeLimit(CRYSTAL_TIME_LIMIT_S) as limit:
            structure = random_crystal(number, rng, spec)
            limit.check()
            return name, number, simulate(structure, wavelength)
    except Exception as exc:  # a failed or abandoned crystal is counted, never fatal
        return name, number, f"{exc.__class__.__name__}: {exc}"


def _fast_job(args) -> tuple[str, int, PeakList | str]:
    from core.fast_crystals import random_pattern

    number, seed, index, spec, wavelength = args
    rng = np.random.default_rng([seed, index, number])
    name = _synthetic_id("fast", seed, index, number)
    try:
        return name, number, random_pattern(number, rng, spec, wavelength)
    except Exception as exc:  # a crystal that did not fit is counted, never fatal
        return name, number, f"{exc.__class__.__name__}: {exc}"


def datasets_with_seeds(seeds: Sequence[int], engine: str) -> dict[str, int]:
    """Stored datasets already holding ``engine``'s random crystals made with one of
    ``seeds``: name -> how many. With the same settings those crystals come out again, and
    datasets that share crystals are not trained together (:func:`core.dataset.combine`).
    Unreadable datasets are passed over."""
    from core import dataset as store

    prefixes = tuple(f"{_ID_PREFIX[engine]}-{int(seed)}-" for seed in seeds)
    found = {}
    for name in store.list_datasets():
        try:
            ids = pd.Series(store.ids(name), dtype=str)
        except store.DatasetError:
            continue
        count = int(ids.str.startswith(prefixes).sum())
        if count:
            found[name] = count
    return found


ENGINES = {"pyxtal": _synthetic_job, "fast": _fast_job}


def _structure_job(args) -> tuple[str, int, PeakList | str]:
    name, structure, wavelength = args
    try:
        return name, -1, simulate(structure, wavelength)
    except Exception as exc:
        return name, -1, f"{exc.__class__.__name__}: {exc}"


def _run(jobs: list, worker: Callable, processes: int, scheduler: str | None,
         progress: ProgressCallback | None, cancel: threading.Event | None):
    """Yield worker results in order; stop early when ``cancel`` is set."""
    total = len(jobs)
    if scheduler:
        yield from _run_dask(jobs, worker, scheduler, processes, progress, cancel)
        return
    if processes <= 1:
        for done, job in enumerate(jobs, 1):
            if cancel is not None and cancel.is_set():
                return
            yield worker(job)
            if progress:
                progress(done, total)
        return
    with ProcessPoolExecutor(max_workers=processes) as pool:
        futures = [pool.submit(worker, job) for job in jobs]
        for done, future in enumerate(futures, 1):
            if cancel is not None and cancel.is_set():
                pool.shutdown(wait=True, cancel_futures=True)
                return
            yield future.result()
            if progress:
                progress(done, total)


@contextlib.contextmanager
def neutral_main() -> Iterator[None]:
    """Let worker processes start without re-running the caller's ``__main__``.

    A spawned process (how Dask starts local workers) first re-runs the parent's
    ``__main__`` file. Under Streamlit that is the page being shown, which fails outside
    the app and takes the worker with it ("Nanny failed to start"), so a bare module stands
    in for ``__main__`` while the workers start.
    """
    saved = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        if saved is not None:
            sys.modules["__main__"] = saved


def _run_dask(jobs, worker, scheduler, processes, progress, cancel):
    from dask.distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler == "local":
        with neutral_main():
            cluster = LocalCluster(n_workers=processes, threads_per_worker=1, processes=True,
                                   dashboard_address=None)
        client = Client(cluster)
    else:
        client = Client(scheduler)
    try:
        futures = client.map(worker, jobs, pure=False)
        results: dict[int, object] = {}
        index_of = {f.key: i for i, f in enumerate(futures)}
        for done, future in enumerate(as_completed(futures), 1):
            if cancel is not None and cancel.is_set():
                client.cancel(futures)
                break
            results[index_of[future.key]] = future.result()
            if progress:
                progress(done, len(jobs))
        for i in sorted(results):
            yield results[i]
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _collect(results, source: str, requested: int, cancel) -> GenerationReport:
    from core.dataset import rows_from_peaklists

    peaks, ids, wanted, failures = [], [], [], []
    for name, number, result in results:
        if isinstance(result, str):
            failures.append((name, result))
        else:
            peaks.append(result)
            ids.append(name)
            wanted.append(number if number > 0 else None)
    rows = rows_from_peaklists(peaks, ids, source, wanted)
    return GenerationReport(rows=rows, requested=requested, failures=failures,
                            cancelled=bool(cancel is not None and cancel.is_set()))


def generate_synthetic(space_groups: Sequence[int], seed: int = 0,
                       spec: RandomCrystalSpec = RandomCrystalSpec(),
                       wavelength: float = 1.54184, processes: int | None = None,
                       scheduler: str | None = None, progress: ProgressCallback | None = None,
                       cancel: threading.Event | None = None,
                       engine: str = "pyxtal") -> GenerationReport:
    """Random crystals for each entry of ``space_groups`` (repeat a number for several),
    simulated and labelled by spglib.

    Args:
        space_groups: requested group of each crystal.
        seed: makes the run reproducible.
        processes: local worker processes (default: all cores, at most 2 on a laptop run).
        scheduler: a Dask scheduler address, or ``"local"`` for a local Dask cluster;
            ``None`` uses a process pool.
        progress: ``progress(done, total)`` after each crystal.
        cancel: set it to stop early; what was done so far is returned.
        engine: ``pyxtal`` (pyxtal's crystals, pymatgen's XRDCalculator; about 7 crystals/s
            on 2 cores) or ``fast`` (:mod:`core.fast_crystals`: the same chemistry and the
            same patterns 15-25 times faster; a crystal spglib finds in another group
            than requested is redrawn, then counted as failed).

    Raises:
        ValueError: unknown engine, or ``spec.pseudo_symmetry`` with the pyxtal engine
            (which places atoms itself).
    """
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r} ({', '.join(ENGINES)})")
    if engine == "pyxtal" and spec.pseudo_symmetry > 0:
        raise ValueError("near-grid crystals (pseudo-symmetry) need the fast engine: pyxtal "
                         "places atoms itself")
    processes = processes or min(2, os.cpu_count() or 1)
    jobs = [(int(n), seed, i, spec, wavelength) for i, n in enumerate(space_groups)]
    results = _run(jobs, ENGINES[engine], processes, scheduler, progress, cancel)
    return _collect(results, "synthetic" if engine == "pyxtal" else "fast", len(jobs), cancel)


def generate_from_structures(structures: Sequence, names: Sequence[str], source: str,
                             wavelength: float = 1.54184, processes: int | None = None,
                             scheduler: str | None = None,
                             progress: ProgressCallback | None = None,
                             cancel: threading.Event | None = None) -> GenerationReport:
    """Simulate given structures (CIFs, Materials Project, pymatgen's bundled set)."""
    processes = processes or min(2, os.cpu_count() or 1)
    jobs = [(str(n), s, wavelength) for n, s in zip(names, structures)]
    results = _run(jobs, _structure_job, processes, scheduler, progress, cancel)
    return _collect(results, source, len(jobs), cancel)


__all__ = ["GenerationReport", "generate_synthetic", "generate_from_structures",
           "space_group_prior", "space_groups_by_prior", "SYMPREC"]
