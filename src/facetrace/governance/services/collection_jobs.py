"""Collection jobs (crawls, imports, ingests): list them, follow one, ask one to stop; admin only."""

from __future__ import annotations

from facetrace.governance import collection_jobs
from facetrace.governance.audit import Record
from facetrace.governance.collection_jobs import Job
from facetrace.governance.roles import Action
from facetrace.governance.services.base import ServiceBase


class CollectionJobService(ServiceBase):
    """``gov.jobs``: the collection runs the catalog holds, whichever process runs them."""

    def oversee(self) -> None:
        """Refuse (and record) a user who may not follow or stop collection runs (the API's jobs)."""
        self.allow(Action.MANAGE_SOURCES)

    def listing(self, *, limit: int = 100, before: int | None = None) -> list[Job]:
        """The crawls, imports and ingests the catalog holds, newest first (older than job ``before``),
        after marking interrupted those whose process died (their heartbeat is a lease old)."""
        self.allow(Action.MANAGE_SOURCES)
        collection_jobs.sweep(self.settings, self.sessions)
        with self.sessions() as session:
            return collection_jobs.listed(session, limit=limit, before=before)

    def get(self, job_id: int) -> Job:
        self.allow(Action.MANAGE_SOURCES)
        with self.sessions() as session:
            return collection_jobs.one(session, job_id)

    def cancel(self, job_id: int) -> Job:
        """Ask a job to stop (recorded): a queued one is cancelled at once, a running one stops at its
        next safe point, whichever process runs it (its ledger relays the request within a tick)."""
        self.allow(Action.MANAGE_SOURCES)
        job = collection_jobs.request_cancel(self.sessions, job_id)
        details = {"job": job.id, "kind": job.kind, "source": job.source, "state": job.state.value}
        self.record(Record(action="jobs.cancel", details=details))
        return job
