"""Running a dataset build in a background thread so that the page stays responsive: a
:class:`BackgroundJob` runs its work function in a daemon thread, keeps the progress the work
reports, its result or error (never lost in the thread), and lets the page ask it to stop,
storing or dropping what was finished.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class BackgroundJob:
    """Run ``work(job)`` in a thread; the page polls progress and may stop it.

    ``work`` reports through :meth:`progress`, watches :attr:`cancel`, and reads
    :attr:`keep_partial` to decide whether a stopped run stores what it finished.
    """

    def __init__(self, label: str, work: Callable[["BackgroundJob"], object]) -> None:
        self.label = label
        self.stage = "starting"
        self.cancel = threading.Event()
        self.keep_partial = True
        self.done = 0
        self.total = 0
        self.result: object = None
        self.error: BaseException | None = None
        self.started = time.monotonic()
        self.finished_at: float | None = None
        self._work = work
        self._thread = threading.Thread(target=self._run, name=f"dataset-job-{label}", daemon=True)

    def start(self) -> "BackgroundJob":
        self.started = time.monotonic()
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            self.result = self._work(self)
        except BaseException as exc:  # reported to the page, never lost in the thread
            self.error = exc
        finally:
            self.finished_at = time.monotonic()

    def progress(self, done: int, total: int) -> None:
        self.done, self.total = int(done), int(total)

    def stop(self, keep_partial: bool) -> None:
        """Ask the work to stop; ``keep_partial`` stores what was finished."""
        self.keep_partial = keep_partial
        self.cancel.set()

    @property
    def running(self) -> bool:
        return self.finished_at is None

    @property
    def elapsed(self) -> float:
        return (self.finished_at or time.monotonic()) - self.started

    @property
    def eta(self) -> float | None:
        """Seconds left, from the pace so far (None before the first item)."""
        if not self.done or not self.total:
            return None
        return self.elapsed / self.done * max(self.total - self.done, 0)

    def wait(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return not self.running
