"""Training jobs that run outside the user interface, in background threads.

A :class:`JobRegistry` starts :func:`core.training.train` in a daemon thread and keeps a
:class:`Job` record of it: status, every progress event, the epoch history, the error and the
saved run's metadata. The interface only reads these records (polling them), so nothing in
the training thread ever talks to a user interface, and a page that is closed or reloaded
can reattach to the job by name. By default one job runs at a time; starting another while
one runs raises :class:`JobBusyError`.

While a job trains, ``keras.backend.clear_session()`` called from any other thread does
nothing: Streamlit calls it after every script run, and it would wipe the training thread's
Keras state (layer-name counters, scopes) in the middle of building or fitting its model.
"""

from __future__ import annotations

import functools
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pandas as pd

from core import registry
from core.training import TrainingConfig, train

QUEUED, RUNNING, DONE, STOPPED, FAILED = "queued", "running", "done", "stopped", "failed"
ACTIVE = (QUEUED, RUNNING)
FINISHED = (DONE, STOPPED, FAILED)

DatasetLoader = Callable[[str], object]


_training_threads: dict[threading.Thread, "Job"] = {}  # every running job of any registry
_training_lock = threading.Lock()


def running_jobs() -> list["Job"]:
    """Jobs training right now in this process, whichever registry started them."""
    with _training_lock:
        return list(_training_threads.values())


def _defer_keras_clear_session() -> None:
    """Make ``keras.backend.clear_session`` a no-op outside training threads while any job
    trains (installed once, when the first job starts)."""
    import keras

    original = keras.backend.clear_session
    if getattr(original, "_deferred_while_training", False):
        return

    @functools.wraps(original)
    def clear_session(*args, **kwargs):
        with _training_lock:
            busy = bool(_training_threads) and threading.current_thread() not in _training_threads
        return None if busy else original(*args, **kwargs)

    clear_session._deferred_while_training = True
    keras.backend.clear_session = clear_session


class JobBusyError(RuntimeError):
    """Another training job is still running; the message names it."""


@dataclass
class Job:
    """One training run and everything known about it so far.

    Attributes:
        name: the run's name (also its model folder).
        dataset_name: the dataset it trains on (loaded inside the job's thread); several
            datasets show as ``a+b`` (see :func:`core.dataset.combine`).
        dataset_names: the datasets themselves, in order.
        config: the training settings.
        status: ``queued``, ``running``, ``done``, ``stopped`` or ``failed``.
        error: ``"ExceptionType: message"`` when the job failed.
        details: the failure's traceback, for the curious.
        created, started, finished: wall-clock times (``time.time()``); None until reached.
        stop_event: set by :meth:`request_stop`; training ends after the current batch.
        metadata: the saved run's metadata once training has ended.
        evaluation: the saved run's test-split evaluation once training has ended.
        history: per-epoch history written by the trainer once training has ended.
    """

    name: str
    dataset_name: str
    config: TrainingConfig
    dataset_names: tuple[str, ...] = ()
    status: str = QUEUED
    error: str = ""
    details: str = ""
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    stop_event: threading.Event = field(default_factory=threading.Event)
    metadata: registry.ModelMetadata | None = None
    evaluation: dict = field(default_factory=dict)
    history: pd.DataFrame | None = None
    thread: threading.Thread | None = field(default=None, repr=False)
    _events: list[dict] = field(default_factory=list, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # -- written by the training thread -------------------------------------------------
    def record(self, event: dict) -> None:
        """Progress hook for :func:`core.training.train`: store a copy of ``event``."""
        stamped = dict(event, logs=dict(event.get("logs", {})), time=time.time())
        with self._lock:
            self._events.append(stamped)

    # -- read by anyone -----------------------------------------------------------------
    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    @property
    def stop_requested(self) -> bool:
        return self.stop_event.is_set()

    def events(self) -> list[dict]:
        """A snapshot of the progress events so far (oldest first)."""
        with self._lock:
            return list(self._events)

    def latest(self) -> dict | None:
        """The most recent progress event, or None before the first batch is reported."""
        with self._lock:
            return self._events[-1] if self._events else None

    def epoch_history(self) -> pd.DataFrame:
        """One row per finished epoch: ``epoch``, the Keras logs and ``learning_rate``."""
        return epoch_frame(self.events())

    def batch_history(self) -> pd.DataFrame:
        """One row per reported batch, with ``step`` = fractional epoch."""
        return batch_frame(self.events())

    def elapsed(self) -> float:
        """Seconds since the job started (up to its end once finished)."""
        if self.started is None:
            return 0.0
        return (self.finished or time.time()) - self.started

    def request_stop(self) -> None:
        """Ask training to end after the current batch, keeping the best weights so far."""
        self.stop_event.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job's thread ends (at most ``timeout`` s); True if it ended."""
        if self.thread is not None:
            self.thread.join(timeout)
        return not self.active


def epoch_frame(events: list[dict]) -> pd.DataFrame:
    """Epoch events as a history table shaped like the saved ``history.csv``."""
    rows = [{"epoch": e["epoch"], **e.get("logs", {}), "learning_rate": e.get("lr")}
            for e in events if e.get("type") == "epoch"]
    return pd.DataFrame(rows, columns=None if rows else ["epoch", "learning_rate"])


def batch_frame(events: list[dict]) -> pd.DataFrame:
    """Batch events as a table: ``step`` (epochs as a fraction), ``epoch``, ``batch``,
    ``lr`` and the running Keras logs (mean over the epoch so far)."""
    rows = []
    for e in events:
        if e.get("type") != "batch":
            continue
        step = e["epoch"] + e["batch"] / max(e.get("batches", 1), 1)
        rows.append({"step": step, "epoch": e["epoch"] + 1, "batch": e["batch"],
                     "lr": e.get("lr"), **e.get("logs", {})})
    return pd.DataFrame(rows, columns=None if rows else ["step", "epoch", "batch", "lr"])


class JobRegistry:
    """Starts training jobs in background threads and remembers them.

    Args:
        max_concurrent: how many jobs may run at once.
        loader: ``name -> Dataset`` (default :func:`core.dataset.load`); called in the
            job's thread so that starting a job returns at once.
    """

    def __init__(self, max_concurrent: int = 1, loader: DatasetLoader | None = None):
        if max_concurrent < 1:
            raise ValueError("max_concurrent must be at least 1")
        self.max_concurrent = max_concurrent
        self._loader = loader
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def start(self, dataset_name: str | Sequence[str], config: TrainingConfig) -> Job:
        """Start training ``config`` on dataset ``dataset_name`` (or on several datasets
        together, each keeping its own split) in a daemon thread.

        Raises:
            JobBusyError: ``max_concurrent`` jobs are already running.
            registry.ModelError: the run name is invalid, or a saved model or a running
                job already uses it.
            ValueError: no dataset, or one named twice.
        """
        registry.check_name(config.name)
        names = (dataset_name,) if isinstance(dataset_name, str) else tuple(dataset_name)
        if not names:
            raise ValueError("choose a dataset to train on")
        if len(set(names)) != len(names):
            raise ValueError(f"a dataset is chosen twice: {', '.join(names)}")
        with self._lock:
            running = [job for job in self._jobs.values() if job.active]
            if len(running) >= self.max_concurrent:
                names = ", ".join(f"'{job.name}'" for job in running)
                raise JobBusyError(
                    f"training run {names} is still running; only {self.max_concurrent} "
                    "run at a time. Stop it or wait for it to finish before starting another.")
            earlier = self._jobs.get(config.name)
            taken = earlier is not None and earlier.active
            if taken or registry.model_path(config.name).exists():
                raise registry.ModelError(
                    f"a run named {config.name!r} already exists; choose another name")
            job = Job(name=config.name, dataset_name="+".join(names), config=config,
                      dataset_names=names)
            job.thread = threading.Thread(target=self._run, args=(job,), daemon=True,
                                          name=f"train-{config.name}")
            self._jobs[job.name] = job
        _defer_keras_clear_session()
        with _training_lock:
            _training_threads[job.thread] = job
        try:
            job.thread.start()
        except RuntimeError as exc:  # e.g. the interpreter cannot start more threads
            with _training_lock:
                _training_threads.pop(job.thread, None)
            job.status, job.error, job.finished = FAILED, f"RuntimeError: {exc}", time.time()
            raise
        return job

    def _run(self, job: Job) -> None:
        job.status, job.started = RUNNING, time.time()
        try:
            dataset = self._load(job.dataset_names or (job.dataset_name,))
            result = train(dataset, job.config, progress=job.record, stop=job.stop_event)
            job.metadata, job.evaluation, job.history = (result.metadata, result.evaluation,
                                                         result.history)
            job.status = result.metadata.status if result.metadata.status in FINISHED else DONE
        except BaseException as exc:  # the job must record every failure, even MemoryError
            job.error = f"{exc.__class__.__name__}: {exc}"
            job.details = traceback.format_exc()
            job.status = FAILED
        finally:
            job.finished = time.time()
            with _training_lock:
                _training_threads.pop(threading.current_thread(), None)

    def _load(self, names: Sequence[str]):
        from core import dataset as store

        load = self._loader or store.load
        return store.combine([load(name) for name in names])

    def current(self) -> Job | None:
        """The running (or queued) job, newest first; None when idle."""
        with self._lock:
            active = [job for job in self._jobs.values() if job.active]
        return max(active, key=lambda job: job.created) if active else None

    def latest(self) -> Job | None:
        """The running job, else the most recently started one; None if there were none."""
        with self._lock:
            jobs = list(self._jobs.values())
        if not jobs:
            return None
        return self.current() or max(jobs, key=lambda job: job.created)

    def get(self, name: str) -> Job | None:
        with self._lock:
            return self._jobs.get(name)

    def jobs(self) -> list[Job]:
        """Every job started by this registry, newest first."""
        with self._lock:
            return sorted(self._jobs.values(), key=lambda job: job.created, reverse=True)

    def request_stop(self, name: str | None = None) -> Job | None:
        """Ask job ``name`` (default: the current one) to stop; returns it, or None."""
        job = self.get(name) if name else self.current()
        if job is not None:
            job.request_stop()
        return job

    def forget(self, name: str) -> None:
        """Drop a finished job's record (e.g. after its run was renamed or deleted)."""
        with self._lock:
            job = self._jobs.get(name)
            if job is not None and not job.active:
                del self._jobs[name]
