"""Background jobs of the API: run one at a time by a worker thread the server owns, kept in the catalog.

A job is a function given a :class:`JobControl`: it reports its progress there and asks it,
at points where stopping leaves everything consistent, whether it should stop. Cancelling is
that request: a crawl stops between two URLs (or within one fetch deadline) and resumes from its
frontier at the next crawl, as a killed one would; a folder import stops between two images, and
importing the folder again skips what is already in.

Every job is a row of the catalog (:mod:`facetrace.governance.collection_jobs`), so its history
outlives the server. A server that stops stops its running job the same cooperative way and marks
it, and those still queued, interrupted; one that is killed leaves them to the next server, which
marks them interrupted once their heartbeat is a lease old. Re-running the job resumes it.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

from sqlalchemy.orm import Session, sessionmaker

from facetrace.core.config import Settings
from facetrace.core.errors import FacetraceError
from facetrace.governance import collection_jobs
from facetrace.governance.collection_jobs import Job, JobControl, JobLedger, JobState, Progress, failure

__all__ = ["Job", "JobControl", "JobRunner", "JobState", "Progress", "Work"]

log = logging.getLogger(__name__)

#: A job's body. Returns True when it stopped early because it was asked to.
Work = Callable[[JobControl], bool]


class JobRunner:
    """Runs submitted jobs one at a time, oldest first, on its own thread."""

    def __init__(self, settings: Settings, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions
        self.ledger = JobLedger(settings, sessions, sweeping=True)
        self._closing = threading.Event()
        self._queue: queue.SimpleQueue[tuple[int, Work] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="facetrace-jobs", daemon=True)
        self._thread.start()

    def submit(
        self, kind: str, source: str, started_by: str, work: Work, *, folder: str | None = None
    ) -> Job:
        job = self.ledger.add(kind, source, started_by, folder=folder, running=False)
        self._queue.put((job.id, work))
        return job

    def stop(self, job_id: int) -> None:
        """Stop this server's job ``job_id`` at its next safe point, now that its cancel is stored
        (see :meth:`CollectionJobService.cancel`, ``gov.jobs.cancel``); a job of another process
        hears of it from its ledger."""
        self.ledger.stop(job_id)

    def close(self) -> None:
        """Stop the running job at its next safe point, mark it and the queued ones interrupted,
        and wait for the thread."""
        self._closing.set()
        for job_id in self.ledger.active():
            self.ledger.stop(job_id)
        self._queue.put(None)
        self._thread.join()
        for job_id in self.ledger.active():  # queued, never started
            self.ledger.finish(job_id, JobState.INTERRUPTED, error="the server stopped before it ran")
        self.ledger.close()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            if not self._closing.is_set():
                self._run_one(*item)

    def _run_one(self, job_id: int, work: Work) -> None:
        if not self.ledger.begin(job_id):
            return  # cancelled while it waited
        try:
            stopped = work(self.ledger.control(job_id))
        except Exception as exc:
            if not isinstance(exc, FacetraceError):
                log.exception("job %s failed", job_id)
            self.ledger.finish(job_id, JobState.FAILED, error=failure(exc))
            return
        if not stopped:
            self.ledger.finish(job_id, JobState.DONE)
        elif self._closing.is_set() and not self._cancel_requested(job_id):
            self.ledger.finish(job_id, JobState.INTERRUPTED, error="the server stopped")
        else:
            self.ledger.finish(job_id, JobState.CANCELLED)

    def _cancel_requested(self, job_id: int) -> bool:
        with self.sessions() as session:
            return collection_jobs.one(session, job_id).cancel_requested
