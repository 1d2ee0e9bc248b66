"""Collection jobs (crawls, folder imports, command-line ingests) kept in the catalog.

Every job is a row of ``collection_jobs`` from the moment it is asked for: who started it, what it
reads, its state and its running totals. The process that runs a job owns it (a random token per
:class:`JobLedger`) and, while the job is queued or running, renews its heartbeat every third of
``FACETRACE_JOB_LEASE_S``. A process killed with ``kill -9`` renews nothing: whoever finds a heartbeat
older than the lease (a server at its start and every few seconds after, ``facetrace jobs``) marks
the job *interrupted* and writes a ``jobs.interrupted`` audit entry naming it, with its counts. The
images it stored stay: they were accounted for by the entry the job wrote when it started, and a
crawl resumes from its frontier, an import skips what is already in, when it is run again.

Progress is written at most once per tick (a second) per job, whatever the rate of reports, and a
cancel asked in another process reaches the job at the next tick.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from facetrace.collect.crawler import CrawlStats
from facetrace.core.config import Settings
from facetrace.core.errors import ConflictError, FacetraceError, NotFoundError
from facetrace.governance import audit
from facetrace.governance.audit import Record
from facetrace.governance.audit_keys import STARTUP
from facetrace.governance.job_listing import MAX_LISTED
from facetrace.ingest.pipeline import IngestStats
from facetrace.store.base import utcnow
from facetrace.store.catalog_models import CollectionJob, Sighting, Source

log = logging.getLogger(__name__)

#: How often a ledger writes pending progress and picks up cancels asked elsewhere, at most.
TICK_S = 1.0


class JobState(StrEnum):
    QUEUED = "queued"  # waiting for the job before it to finish
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"  # stopped on request: before it started, or at a safe point
    INTERRUPTED = "interrupted"  # its process stopped or died before the job finished


ACTIVE = (JobState.QUEUED.value, JobState.RUNNING.value)


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
    """What a job is and how far it got, as the catalog holds it."""

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
    folder: str | None = None  # what an import or ingest reads
    started_entry: int | None = None  # the audit entry written when it started running

    @classmethod
    def of(cls, row: CollectionJob) -> Job:
        return cls(
            id=row.id,
            kind=row.kind,
            source=row.source,
            started_by=row.started_by,
            created_at=row.created_at,
            state=JobState(row.state),
            cancel_requested=row.cancel_requested,
            started_at=row.started_at,
            finished_at=row.finished_at,
            progress=Progress(**row.progress),
            error=row.error,
            folder=row.folder,
            started_entry=row.started_entry,
        )


@dataclass(frozen=True, slots=True)
class JobControl:
    """A running job's line to its ledger: which job it is, whether to stop, where its totals go."""

    job_id: int
    should_stop: Callable[[], bool]
    report: Callable[[Progress], None]


def failure(exc: BaseException) -> str:
    """What a failed job shows: Facetrace's own refusals as they are, anything else by its kind only
    (the details go to the server log)."""
    if isinstance(exc, FacetraceError):
        return str(exc)
    return "an unexpected error; the log has the details"


def note_started_entry(session: Session, job_id: int, seq: int) -> None:
    """Link the job to the audit entry it wrote when it started (in that entry's transaction)."""
    session.execute(update(CollectionJob).where(CollectionJob.id == job_id).values(started_entry=seq))


@contextmanager
def foreground(
    settings: Settings,
    sessions: sessionmaker[Session],
    kind: str,
    source: str,
    started_by: str,
    *,
    folder: str | None = None,
) -> Iterator[JobControl]:
    """A job this process runs in the caller's thread (the command line's crawl and ingest): kept
    in the catalog like the server's, so a killed command is found and marked interrupted too."""
    ledger = JobLedger(settings, sessions)
    try:
        job = ledger.add(kind, source, started_by, folder=folder, running=True)
        try:
            yield ledger.control(job.id)
        except KeyboardInterrupt:
            ledger.finish(job.id, JobState.CANCELLED, error="stopped at the terminal")
            raise
        except BaseException as exc:
            ledger.finish(job.id, JobState.FAILED, error=failure(exc))
            raise
        stopped = ledger.stop_requested(job.id)
        ledger.finish(job.id, JobState.CANCELLED if stopped else JobState.DONE)
    finally:
        ledger.close()


def listed(session: Session, *, limit: int = 100, before: int | None = None) -> list[Job]:
    """The newest ``limit`` jobs (older than job ``before``, if given), newest first."""
    query = select(CollectionJob).order_by(CollectionJob.id.desc()).limit(min(limit, MAX_LISTED))
    if before is not None:
        query = query.where(CollectionJob.id < before)
    return [Job.of(row) for row in session.scalars(query)]


def one(session: Session, job_id: int) -> Job:
    row = session.get(CollectionJob, job_id)
    if row is None:
        raise NotFoundError(f"no job {job_id}")
    return Job.of(row)


def request_cancel(sessions: sessionmaker[Session], job_id: int) -> Job:
    """Ask a job to stop: a queued one is cancelled at once, a running one by the process that runs
    it, at its next safe point (within a tick of its ledger and one fetch)."""
    with sessions.begin() as session:
        row = session.get(CollectionJob, job_id, with_for_update=True)
        if row is None:
            raise NotFoundError(f"no job {job_id}")
        if row.state not in ACTIVE:
            raise ConflictError(f"job {job_id} has already finished ({row.state})")
        row.cancel_requested = True
        if row.state == JobState.QUEUED:
            row.state, row.finished_at = JobState.CANCELLED.value, utcnow()
        return Job.of(row)


def sweep(settings: Settings, sessions: sessionmaker[Session], *, spare: str | None = None) -> list[int]:
    """Mark interrupted, with an audit entry each, the jobs whose process stopped renewing their
    heartbeat a lease ago (all but those of the ledger ``spare``). Returns their ids."""
    cutoff = utcnow() - timedelta(seconds=settings.job_lease_s)
    stale = (
        CollectionJob.state.in_(ACTIVE),
        CollectionJob.heartbeat_at < cutoff,
        CollectionJob.owner != (spare or ""),
    )
    with sessions() as session:
        ids = list(session.scalars(select(CollectionJob.id).where(*stale)))
    return [
        job_id
        for job_id in ids
        if interrupt(sessions, job_id, "its process stopped renewing it (killed or crashed)", *stale)
    ]


def interrupt(sessions: sessionmaker[Session], job_id: int, reason: str, *still: Any) -> bool:
    """Mark job ``job_id`` interrupted if it is still active (and matches ``still``) and record it.

    The entry names the job, its source and what it read, the entry written when it started, its
    counts as last reported, and the sightings the catalog holds of its source since it started
    (exact, where the reported counts may lag by a tick). Returns whether it was marked."""
    now = utcnow()
    with sessions.begin() as session:
        marked = session.execute(
            update(CollectionJob)
            .where(CollectionJob.id == job_id, CollectionJob.state.in_(ACTIVE), *still)
            .values(state=JobState.INTERRUPTED.value, finished_at=now, error=f"interrupted: {reason}")
        )
        if cast("CursorResult[Any]", marked).rowcount != 1:  # an UPDATE's result is a cursor's
            return False
        row = session.get(CollectionJob, job_id, populate_existing=True)
        assert row is not None  # it was just marked, in this transaction
        job = Job.of(row)
        details: dict[str, Any] = {
            "job": job.id,
            "kind": job.kind,
            "source": job.source,
            "folder": job.folder,
            "started_by": job.started_by,
            "started_entry": job.started_entry,
            "reason": reason,
            **asdict(job.progress),
        }
        if job.started_at is not None:
            details["sightings_added"] = session.scalar(
                select(func.count(Sighting.id))
                .join(Source, Source.id == Sighting.source_id)
                .where(Source.name == job.source, Sighting.first_seen >= job.started_at)
            )
        audit.append(session, STARTUP, Record(action="jobs.interrupted", outcome="failed", details=details))
    log.warning("job %s (%s of %s) marked interrupted: %s", job_id, job.kind, job.source, reason)
    return True


class JobLedger:
    """The jobs this process runs, in the catalog: it adds them, writes their progress and end, renews
    their heartbeat and relays cancels asked elsewhere; ``sweeping``: it also marks interrupted the
    jobs of processes that died (a server does, so a restart finds what its predecessor left)."""

    def __init__(
        self, settings: Settings, sessions: sessionmaker[Session], *, sweeping: bool = False
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.owner = secrets.token_hex(16)
        self._sweeping = sweeping
        self._lock = threading.Lock()
        self._stops: dict[int, threading.Event] = {}  # this ledger's queued and running jobs
        self._pending: dict[int, Progress] = {}  # reported, not written yet
        self._writing = threading.Lock()  # progress is taken and written in one go, never out of order
        self._closed = threading.Event()
        if sweeping:
            sweep(settings, sessions, spare=self.owner)
        self._ticker = threading.Thread(target=self._tick, name="facetrace-job-ledger", daemon=True)
        self._ticker.start()

    def add(self, kind: str, source: str, started_by: str, *, folder: str | None, running: bool) -> Job:
        """A new job of this process: queued, or ``running`` from now on."""
        now = utcnow()
        row = CollectionJob(
            kind=kind,
            source=source,
            folder=folder,
            started_by=started_by,
            state=(JobState.RUNNING if running else JobState.QUEUED).value,
            cancel_requested=False,
            created_at=now,
            started_at=now if running else None,
            heartbeat_at=now,
            owner=self.owner,
            progress=asdict(Progress()),
        )
        with self.sessions.begin() as session:
            session.add(row)
            session.flush()
            job = Job.of(row)
        with self._lock:
            self._stops[job.id] = threading.Event()
        return job

    def begin(self, job_id: int) -> bool:
        """Move a queued job to running; False if it is no longer queued (cancelled meanwhile)."""
        with self.sessions.begin() as session:
            started = session.execute(
                update(CollectionJob)
                .where(CollectionJob.id == job_id, CollectionJob.state == JobState.QUEUED.value)
                .values(state=JobState.RUNNING.value, started_at=utcnow())
            )
        if cast("CursorResult[Any]", started).rowcount != 1:  # an UPDATE's result is a cursor's
            self._forget(job_id)
            return False
        return True

    def control(self, job_id: int) -> JobControl:
        return JobControl(job_id, lambda: self.stop_requested(job_id), lambda p: self.report(job_id, p))

    def stop_requested(self, job_id: int) -> bool:
        with self._lock:
            stop = self._stops.get(job_id)
        return stop is not None and stop.is_set()

    def stop(self, job_id: int) -> None:
        """Tell a job of this ledger to stop at its next safe point (the cancel was stored already)."""
        with self._lock:
            if job_id in self._stops:
                self._stops[job_id].set()

    def report(self, job_id: int, progress: Progress) -> None:
        """Keep the job's newest totals; the ticker writes them (at most once a tick)."""
        with self._lock:
            self._pending[job_id] = progress

    def finish(self, job_id: int, state: JobState, *, error: str | None = None) -> None:
        """Write the job's end with its last totals (unless it was already marked interrupted);
        an interrupted one with its audit entry, ``error`` saying why."""
        if state is JobState.INTERRUPTED:
            self._flush()
            interrupt(self.sessions, job_id, error or "its process stopped")
            self._forget(job_id)
            return
        values: dict[str, Any] = {"state": state.value, "finished_at": utcnow(), "error": error}
        with self._writing:
            with self._lock:
                progress = self._pending.pop(job_id, None)
            if progress is not None:
                values["progress"] = asdict(progress)
            with self.sessions.begin() as session:
                session.execute(
                    update(CollectionJob)
                    .where(CollectionJob.id == job_id, CollectionJob.state.in_(ACTIVE))
                    .values(**values)
                )
        self._forget(job_id)

    def active(self) -> list[int]:
        with self._lock:
            return list(self._stops)

    def close(self) -> None:
        """Stop the ticker after a last write of pending progress."""
        self._closed.set()
        self._ticker.join()
        self._flush()

    def _forget(self, job_id: int) -> None:
        with self._lock:
            self._stops.pop(job_id, None)
            self._pending.pop(job_id, None)

    def _tick(self) -> None:
        renew_every = self.settings.job_lease_s / 3
        interval = min(TICK_S, renew_every)
        renewed = utcnow()
        while not self._closed.wait(interval):
            try:
                self._flush()
                self._relay_cancels()
                if (utcnow() - renewed).total_seconds() >= renew_every:
                    renewed = utcnow()
                    self._renew()
                    if self._sweeping:
                        sweep(self.settings, self.sessions, spare=self.owner)
            except Exception:  # the catalog may be briefly unreachable; the next tick tries again
                log.exception("the job ledger could not reach the catalog")

    def _flush(self) -> None:
        with self._writing:
            with self._lock:
                pending, self._pending = self._pending, {}
            if not pending:
                return
            with self.sessions.begin() as session:
                for job_id, progress in pending.items():
                    session.execute(
                        update(CollectionJob)
                        .where(CollectionJob.id == job_id, CollectionJob.state.in_(ACTIVE))
                        .values(progress=asdict(progress))
                    )

    def _renew(self) -> None:
        with self.sessions.begin() as session:
            session.execute(
                update(CollectionJob)
                .where(CollectionJob.owner == self.owner, CollectionJob.state.in_(ACTIVE))
                .values(heartbeat_at=utcnow())
            )

    def _relay_cancels(self) -> None:
        ids = self.active()
        if not ids:
            return
        with self.sessions() as session:
            asked = session.scalars(
                select(CollectionJob.id).where(
                    CollectionJob.id.in_(ids), CollectionJob.cancel_requested.is_(True)
                )
            )
            for job_id in asked:
                self.stop(job_id)
