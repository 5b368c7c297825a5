"""Explanations computed as jobs that outlive a script run.

Streamlit stops a script at its next command when a widget changes. Work done inside the script would restart
from zero on every click, so each computation runs in a thread of its own, registered under its result's cache
key: a rerun, a page switch or another session asking for the same result finds the running job and watches its
progress instead of starting again. Cancel sets a flag that the job's progress callback turns into `JobCancelled`
at the method's next progress report (methods report after every chunk), so the method's own `finally` blocks
remove its hooks as for any other exception.

No Streamlit call happens in a job's thread: the work is a plain function; watching is done by the script.
"""
from __future__ import annotations

import threading
import time
from typing import Any, Callable, Hashable


class JobCancelled(BaseException):
    """Raised inside a cancelled job; a BaseException so that methods' `except Exception` do not swallow it."""


class Job:
    def __init__(self, key: Hashable):
        self.key = key
        self.fraction, self.stage = 0.0, "starting…"
        self.result: Any = None
        self.error: BaseException | None = None
        self.started = time.monotonic()
        self.seconds: float | None = None  # wall time once done
        self.done = threading.Event()
        self._cancel = threading.Event()

    def progress(self, fraction: float, stage: str) -> None:
        """The progress callback handed to the work; raises `JobCancelled` once the job is cancelled."""
        if self._cancel.is_set():
            raise JobCancelled()
        self.fraction, self.stage = float(min(max(fraction, 0.0), 1.0)), stage

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return isinstance(self.error, JobCancelled)


_jobs: dict[Hashable, Job] = {}
_guard = threading.Lock()


def running(key: Hashable) -> Job | None:
    with _guard:
        return _jobs.get(key)


def start_or_join(key: Hashable, work: Callable[[Callable[[float, str], None]], Any],
                  on_done: Callable[[Job], None] | None = None) -> Job:
    """The running job for `key`, or a new one running `work(progress)`. `on_done(job)` runs in the job's thread
    after the work ends and before the job leaves the registry (store the result there, so that no moment
    exists where a rerun finds neither the job nor its result)."""
    with _guard:
        job = _jobs.get(key)
        if job is not None:
            return job
        job = _jobs[key] = Job(key)

    def run() -> None:
        try:
            job.result = work(job.progress)
        except BaseException as err:  # reported to whoever watches; a thread has nobody else to tell
            job.error = err
        finally:
            job.seconds = time.monotonic() - job.started
            try:
                if on_done is not None:
                    on_done(job)
            finally:
                with _guard:
                    if _jobs.get(key) is job:
                        del _jobs[key]
                job.done.set()

    threading.Thread(target=run, name=f"job-{abs(hash(key)) % 10**8}", daemon=True).start()
    return job


def count() -> int:
    with _guard:
        return len(_jobs)
