"""The source registry: register, list, pause, resume and remove sources (admin), each audited."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from facetrace.collect import crawl_job, sources
from facetrace.collect.crawler import CrawlPlan, CrawlStats
from facetrace.collect.sources import SourceSpec
from facetrace.core.errors import FacetraceError
from facetrace.governance import audit, collection_jobs, erasure
from facetrace.governance.audit import Record
from facetrace.governance.collection_jobs import JobControl, Progress
from facetrace.governance.collection_policy import GovernedCollection
from facetrace.governance.roles import Action
from facetrace.governance.services.base import ServiceBase
from facetrace.ingest.import_dir import images_in_import_dir
from facetrace.ingest.inputs import InputImage, InputProblem
from facetrace.ingest.pipeline import IngestStats, ingest, ingest_items
from facetrace.store.catalog_models import Source as SourceRecord


class Source(BaseModel):
    """A registered source as the registry describes it."""

    model_config = ConfigDict(frozen=True)

    name: str
    kind: str
    status: str = Field(description="active, paused or blocked.")
    jurisdiction: str | None
    legal_basis: str | None
    purpose: str | None
    seeds: list[str]
    allowed: list[str]
    retention_days: int | None
    max_pages: int | None
    max_depth: int | None
    rate_per_s: float | None
    allow_private_network: bool = Field(description="Its crawls may reach private addresses.")
    sightings: int
    created_at: str
    blocked: str | None = Field(description="Why the source was blocked, if it was.")


class SourceService(ServiceBase):
    """``gov.sources``: the source registry and collection from it (crawls, imports, ingests)."""

    def add(self, spec: SourceSpec) -> Source:
        self.allow(Action.MANAGE_SOURCES)
        with self.sessions.begin() as session:
            source = sources.register(session, spec)
            described = sources.describe(session, source)
            audit.append(session, self.actor, Record(action="sources.add", details=described))
        return Source(**described)

    def listing(self) -> list[Source]:
        self.allow(Action.VIEW_STATS)
        with self.sessions() as session:
            query = select(SourceRecord).order_by(SourceRecord.name)
            return [Source(**sources.describe(session, s)) for s in session.scalars(query)]

    def get(self, name: str) -> Source:
        self.allow(Action.VIEW_STATS)
        with self.sessions() as session:
            return Source(**sources.describe(session, sources.named(session, name)))

    def pause(self, name: str, *, paused: bool = True) -> None:
        """Pause a source (nothing is collected from it until resumed), or resume it."""
        self.allow(Action.MANAGE_SOURCES)
        with self.sessions.begin() as session:
            sources.named(session, name).status = "paused" if paused else "active"
            action = "sources.pause" if paused else "sources.resume"
            audit.append(session, self.actor, Record(action=action, details={"source": name}))

    def set_private_network(self, name: str, *, allowed: bool) -> None:
        """Let the crawls of a source reach loopback, private and link-local addresses (an intranet
        site registered before it could say so), or stop them again (admin, audited)."""
        self.allow(Action.MANAGE_SOURCES)
        with self.sessions.begin() as session:
            sources.named(session, name).allow_private_network = allowed
            details = {"source": name, "allow_private_network": allowed}
            audit.append(session, self.actor, Record(action="sources.private_network", details=details))

    def remove(self, name: str) -> None:
        self.allow(Action.MANAGE_SOURCES)
        with self.sessions.begin() as session:
            sources.remove(session, sources.named(session, name))
            audit.append(session, self.actor, Record(action="sources.remove", details={"source": name}))

    def crawl_plan(self, name: str, *, max_pages: int | None = None, rate: float | None = None) -> CrawlPlan:
        """The limits a crawl of ``name`` would run with; refuses, before anything runs, a user who
        may not crawl and a source that cannot be crawled (unknown, paused, blocked, not crawled)."""
        self.allow(Action.MANAGE_SOURCES)
        with self.sessions() as session:
            return crawl_job.plan_for(
                self.settings, sources.named(session, name), max_pages=max_pages, rate=rate
            )

    def import_plan(self, name: str, folder: str) -> int:
        """How many images an import of ``folder`` (inside FACETRACE_IMPORT_DIR) into the local
        source ``name`` would read; refuses, before anything runs, what cannot be imported."""
        self.allow(Action.MANAGE_SOURCES)
        self._check_importable(name)
        return len(images_in_import_dir(self.settings, folder))

    def import_folder(
        self,
        name: str,
        folder: str,
        *,
        workers: int | None = None,
        on_progress: Callable[[IngestStats], None] | None = None,
        should_stop: Callable[[], bool] = lambda: False,
        job: JobControl | None = None,
    ) -> tuple[IngestStats, bool]:
        """Ingest the images of ``folder`` (inside FACETRACE_IMPORT_DIR) into the registered local
        source ``name``, as ``job`` (one of this process, run here, if none is given). Returns the
        totals, and whether it stopped early because ``should_stop`` or the job's cancel (asked
        before each image) said so: importing the folder again resumes, since images already in the
        catalog are not analysed twice."""
        with self.action(Action.MANAGE_SOURCES, command="import", source=name, folder=folder) as details:
            self._check_importable(name)
            items = images_in_import_dir(self.settings, folder)
            stopped = False
            with self._job_run(job, details, folder=folder) as control:

                def until_stopped() -> Iterator[InputImage | InputProblem]:
                    nonlocal stopped
                    for item in items:
                        if should_stop() or control.should_stop():
                            stopped = True
                            return
                        yield item

                stats = ingest_items(
                    self.settings,
                    until_stopped(),
                    total=len(items),
                    policy=GovernedCollection(self.settings),
                    source_name=name,
                    workers=workers,
                    on_progress=_reporting(control, Progress.of_import, on_progress),
                    sessions=self.sessions,
                )
                control.report(Progress.of_import(stats, completed=not stopped))
            details.update(
                images=len(items),
                new_images=stats.new_images,
                faces=stats.faces,
                failures=len(stats.failures),
                stopped=stopped,
                do_not_collect=stats.do_not_collect_summary(),
            )
        return stats, stopped

    def ingest_files(
        self,
        name: str,
        paths: Sequence[str],
        *,
        demo: bool = False,
        workers: int | None = None,
        engine: str | None = None,
        ray_address: str | None = None,
        on_progress: Callable[[IngestStats], None] | None = None,
        job: JobControl | None = None,
    ) -> IngestStats:
        """Ingest files, folders, list files or ``file://`` URLs into the registered local source
        ``name`` (``facetrace ingest`` on the server's own command line); ``demo``: into the demo
        gallery that test searches use, under the same registration. A source nobody registered
        (``facetrace source add``) is refused: ingest never creates one."""
        gallery = "demo" if demo else "production"
        with self.action(Action.MANAGE_SOURCES, command="ingest", source=name, gallery=gallery) as details:
            with self.sessions() as session:
                source = session.scalar(select(SourceRecord).where(SourceRecord.name == name))
                if source is None:
                    raise FacetraceError(
                        f"no source named {name!r}: an admin registers it first, with its legal basis and "
                        f"jurisdiction: 'facetrace source add {name} --legal-basis TEXT --jurisdiction CC'"
                    )
                sources.check_collectable(source, ("local",), "ingested from files")
                registered = {
                    "jurisdiction": source.jurisdiction,
                    "legal_basis": source.legal_basis,
                    "retention_days": source.retention_days,
                }
            chosen = {"ingest_engine": engine, "ray_address": ray_address}
            settings = self.settings.model_copy(update={k: v for k, v in chosen.items() if v is not None})
            with self._job_run(
                job, details, folder=" ".join(paths)[:1000], paths=list(paths)[:100]
            ) as control:
                target = settings.demo() if demo else settings
                stats = ingest(
                    target,
                    list(paths),
                    policy=GovernedCollection(target),
                    source_name=name,
                    workers=workers,
                    on_progress=_reporting(control, Progress.of_import, on_progress),
                    **registered,
                )
                control.report(Progress.of_import(stats, completed=True))
            details.update(
                new_images=stats.new_images,
                faces=stats.faces,
                failures=len(stats.failures),
                skipped_do_not_collect=stats.skipped_do_not_collect,
                faces_dropped_do_not_collect=stats.faces_dropped_do_not_collect,
                do_not_collect=stats.do_not_collect_summary(),
            )
        return stats

    @contextmanager
    def _job_run(
        self, job: JobControl | None, details: dict[str, Any], *, folder: str | None = None, **what: Any
    ) -> Iterator[JobControl]:
        """Run the body as ``job`` (or as a job of this process, run here): first the
        ``<command>.started`` audit entry naming the job, who started it and what it reads, so that
        whatever the body stores is accounted for even if the process dies; the closing entry (the
        action's, with the counts) names the job too."""
        command, source = details["command"], details["source"]
        run = (
            nullcontext(job)
            if job is not None
            else collection_jobs.foreground(
                self.settings, self.sessions, command, source, self.actor.name, folder=folder
            )
        )
        with run as control:
            details["job"] = control.job_id
            started = {key: value for key, value in details.items() if value is not None} | what
            with self.sessions.begin() as session:
                entry = audit.append(
                    session, self.actor, Record(action=f"{command}.started", details=started)
                )
                collection_jobs.note_started_entry(session, control.job_id, entry.id)
            yield control

    def _check_importable(self, name: str) -> None:
        with self.sessions() as session:
            sources.check_collectable(sources.named(session, name), ("local",), "imported from folders")

    def crawl(
        self,
        name: str,
        *,
        max_pages: int | None = None,
        rate: float | None = None,
        workers: int | None = None,
        on_progress: Callable[[CrawlStats, IngestStats], None] | None = None,
        should_stop: Callable[[], bool] = lambda: False,
        delete_gone: bool = False,
        job: JobControl | None = None,
    ) -> tuple[CrawlStats, IngestStats]:
        """Collect a registered source as ``job`` (one of this process, run here, if none is given):
        fetch what it allows, ingest the images with their page URLs.

        ``should_stop`` and the job's cancel are asked before each URL (and while a fetch waits); a
        crawl stopped so resumes from its frontier next time. ``delete_gone``: after a complete
        crawl, delete what the source no longer shows (an image somebody took down should not stay
        findable), with a certificate like any erasure.
        """
        with self.action(Action.MANAGE_SOURCES, command="crawl", source=name) as details:
            with self.sessions() as session:
                source = sources.named(session, name)
                plan = crawl_job.plan_for(self.settings, source, max_pages=max_pages, rate=rate)
            with self._job_run(job, details) as control:
                crawled, ingested = crawl_job.crawl(
                    self.settings,
                    plan,
                    source,
                    self.sessions,
                    policy=GovernedCollection(self.settings),
                    workers=workers,
                    on_progress=_reporting(control, Progress.of_crawl, on_progress),
                    should_stop=lambda: should_stop() or control.should_stop(),
                )
                control.report(Progress.of_crawl(crawled, ingested))  # pages and errors after the last image
            details.update(
                resumed=crawled.resumed,
                pages=crawled.pages,
                images_fetched=crawled.images,
                refused_by_robots=crawled.refused_by_robots,
                images_withheld_by_page=crawled.images_withheld_by_page,
                urls_refused_by_scheme=dict(crawled.urls_refused_by_scheme),
                fetch_errors=len(crawled.errors),
                new_images=ingested.new_images,
                faces=ingested.faces,
                do_not_collect=ingested.do_not_collect_summary(),
                completed=crawled.completed,
                stopped=crawled.stopped,
                gone=crawled.gone,
            )
            if delete_gone and crawled.completed:
                with self.sessions() as session:
                    gone = erasure.plan(session, erasure.ErasureScope(gone_from=name))
                if gone.sighting_ids:
                    certificate = erasure.execute(
                        self.settings, self.sessions, self.actor, gone, reason=f"gone from source {name}"
                    )
                    details["gone_deleted"] = certificate["counts"]
        return crawled, ingested


def _reporting(
    control: JobControl, totals: Callable[..., Progress], also: Callable[..., None] | None
) -> Callable[..., None]:
    """An ``on_progress`` that reports the job's totals to its ledger, and passes them on to ``also``."""

    def report(*args: Any, **kwargs: Any) -> None:
        control.report(totals(*args, **kwargs))
        if also is not None:
            also(*args, **kwargs)

    return report
