"""Background jobs of the API: run one at a time by a worker thread the server owns, with live progress.

A job is a function given a :class:`JobControl`: it reports its progress there and asks it,
at points where stopping leaves everything consistent, whether it should stop. Cancelling is
that request: a crawl stops between two URLs and resumes from its frontier at the next crawl,
as a killed one would; a folder import stops between two images, and importing the folder
again skips what is already in. Jobs are kept in memory for the server's life; a restart forgets them
(and stops the one running, the same cooperative way).
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from facetrace.collect.crawler import CrawlStats
from facetrace.errors import ConflictError, FacetraceError, NotFoundError
from facetrace.ingest.pipeline import IngestStats

log = logging.getLogger(__name__)


class JobState(StrEnum):
    QUEUED = "queued"  # waiting for the job before it to finish
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"  # stopped on request: before it started, or at a safe point


FINISHED = frozenset({JobState.DONE, JobState.FAILED, JobState.CANCELLED})


@dataclass(frozen=True, slots=True)
class Progress:
    """A job's running totals (``pages`` only for a crawl, ``images_total`` only for an import)."""

    pages: int = 0
    images_fetched: int = 0  # read from disk, for an import
    images_total: int | None = None
    new_images: int = 0
    faces: int = 0
    errors: int = 0  # URLs not fetched, and images that could not be analysed
    resumed: bool = False  # picked up where an earlier crawl stopped
    completed: bool = False  # went through the whole source (not stopped by a limit or a cancel)

    @classmethod
    def of_crawl(cls, crawled: CrawlStats, ingested: IngestStats) -> Progress:
        return cls(
            pages=crawled.pages,
            images_fetched=crawled.images,
            new_images=ingested.new_images,
            faces=ingested.faces,
            errors=len(crawled.errors) + len(ingested.failures),
            resumed=crawled.resumed,
            completed=crawled.completed,
        )

    @classmethod
    def of_import(cls, ingested: IngestStats, *, completed: bool = False) -> Progress:
        return cls(
            images_fetched=ingested.done + ingested.skipped_do_not_collect,
            images_total=ingested.total,
            new_images=ingested.new_images,
            faces=ingested.faces,
            errors=len(ingested.failures),
            completed=completed,
        )


@dataclass(frozen=True, slots=True)
class Job:
    """What a job is and how far it got; the runner replaces it whole at every change."""

    id: int
    kind: str
    source: str
    started_by: str
    created_at: datetime
    state: JobState = JobState.QUEUED
    cancel_requested: bool = False
    started_at: datetime | None = None
    finished_at: datetime | None = None
    progress: Progress = field(default_factory=Progress)
    error: str | None = None
    folder: str | None = None  # what an import reads, inside the import folder


@dataclass(frozen=True, slots=True)
class JobControl:
    """A running job's line to its runner: whether to stop, and where its progress goes."""

    should_stop: Callable[[], bool]
    report: Callable[[Progress], None]


#: A job's body. Returns True when it stopped early because it was asked to.
Work = Callable[[JobControl], bool]


class JobRunner:
    """Runs submitted jobs one at a time, oldest first, on its own thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[int, Job] = {}
        self._stops: dict[int, threading.Event] = {}
        self._ids = itertools.count(1)
        self._queue: queue.SimpleQueue[tuple[int, Work] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="facetrace-jobs", daemon=True)
        self._thread.start()

    def submit(
        self, kind: str, source: str, started_by: str, work: Work, *, folder: str | None = None
    ) -> Job:
        with self._lock:
            job = Job(next(self._ids), kind, source, started_by, created_at=_now(), folder=folder)
            self._jobs[job.id] = job
            self._stops[job.id] = threading.Event()
        self._queue.put((job.id, work))
        return job

    def jobs(self) -> list[Job]:
        """Every job of this server's life, newest first."""
        with self._lock:
            return sorted(self._jobs.values(), key=lambda job: job.id, reverse=True)

    def job(self, job_id: int) -> Job:
        with self._lock:
            if job_id not in self._jobs:
                raise NotFoundError(f"no job {job_id}")
            return self._jobs[job_id]

    def cancel(self, job_id: int) -> Job:
        """Ask a job to stop: a queued one is cancelled at once, a running one at its next safe point."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                raise NotFoundError(f"no job {job_id}")
            if job.state in FINISHED:
                raise ConflictError(f"job {job_id} has already finished ({job.state})")
            return self._request_stop(job)

    def close(self) -> None:
        """Stop every job (the running one at its next safe point) and wait for the thread."""
        with self._lock:
            for job in self._jobs.values():
                if job.state not in FINISHED:
                    self._request_stop(job)
        self._queue.put(None)
        self._thread.join()

    def _request_stop(self, job: Job) -> Job:
        self._stops[job.id].set()
        changed = replace(job, cancel_requested=True)
        if job.state is JobState.QUEUED:
            changed = replace(changed, state=JobState.CANCELLED, finished_at=_now())
        self._jobs[job.id] = changed
        return changed

    def _update(self, job_id: int, **changes: Any) -> None:
        with self._lock:
            self._jobs[job_id] = replace(self._jobs[job_id], **changes)

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            self._run_one(*item)

    def _run_one(self, job_id: int, work: Work) -> None:
        with self._lock:
            if self._jobs[job_id].state is not JobState.QUEUED:
                return  # cancelled while it waited
            self._jobs[job_id] = replace(self._jobs[job_id], state=JobState.RUNNING, started_at=_now())
        control = JobControl(
            self._stops[job_id].is_set, lambda progress: self._update(job_id, progress=progress)
        )
        try:
            stopped = work(control)
        except FacetraceError as exc:
            self._update(job_id, state=JobState.FAILED, error=str(exc), finished_at=_now())
        except Exception:
            log.exception("job %s failed", job_id)
            error = "an unexpected error; the server log has the details"
            self._update(job_id, state=JobState.FAILED, error=error, finished_at=_now())
        else:
            state = JobState.CANCELLED if stopped else JobState.DONE
            self._update(job_id, state=state, finished_at=_now())


def _now() -> datetime:
    return datetime.now(UTC)
