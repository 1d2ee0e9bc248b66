"""Background jobs: ``facetrace crawl`` and ``facetrace ingest FOLDER`` over HTTP. Start one,
follow its progress, cancel it.

A crawl collects a registered website, sitemap or urls source. An import reads a folder, but only
one inside ``FACETRACE_IMPORT_DIR`` (see :mod:`facetrace.ingest.import_dir`), into a registered
local source.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Response, status
from pydantic import BaseModel, Field, model_validator

from facetrace.governance.service import Governance
from facetrace.server.auth import Acting
from facetrace.server.jobs import Job, JobControl, JobState, Progress, Work
from facetrace.server.problems import PROBLEM_RESPONSES, documented
from facetrace.server.routes.sources import MAX_PAGES
from facetrace.server.state import ServerState, server_state

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"], responses=PROBLEM_RESPONSES)

State = Annotated[ServerState, Depends(server_state)]


class NewJob(BaseModel):
    """A crawl of a registered website, sitemap or urls source, or an import of a folder inside
    FACETRACE_IMPORT_DIR into a registered local source."""

    kind: Literal["crawl", "import"] = "crawl"
    source: str = Field(min_length=1, description="The registered source to crawl, or to import into.")
    folder: str | None = Field(
        None,
        max_length=1000,
        description="Import only: the folder, relative to FACETRACE_IMPORT_DIR ('.' for all of it).",
    )
    max_pages: int | None = Field(
        None, ge=1, le=MAX_PAGES, description="Crawl only: at most this many pages (default: the source's)."
    )
    rate: float | None = Field(
        None,
        gt=0,
        allow_inf_nan=False,
        description="Crawl only: requests per second per host (default: the source's).",
    )

    @model_validator(mode="after")
    def _fits_its_kind(self) -> NewJob:
        if self.kind == "import" and self.folder is None:
            raise ValueError("an import names its folder, relative to FACETRACE_IMPORT_DIR")
        if self.kind == "import" and (self.max_pages is not None or self.rate is not None):
            raise ValueError("max_pages and rate are for crawls")
        if self.kind == "crawl" and self.folder is not None:
            raise ValueError("folder is for imports")
        return self


class JobProgress(BaseModel):
    pages: int = Field(description="Pages fetched (a crawl).")
    images_fetched: int = Field(description="Images downloaded (a crawl) or read from disk (an import).")
    images_total: int | None = Field(description="Images in the folder (an import; null for a crawl).")
    new_images: int = Field(description="Images whose bytes were not in the catalog yet.")
    faces: int = Field(description="Faces found in the new images.")
    errors: int = Field(description="URLs not fetched, and images that could not be analysed.")
    resumed: bool = Field(description="Picked up where an earlier crawl of the source stopped.")
    completed: bool = Field(
        description="Went through the whole source or folder: the next crawl starts afresh."
    )


class JobView(BaseModel):
    id: int
    kind: Literal["crawl", "import"]
    source: str
    folder: str | None = Field(description="What an import reads, inside FACETRACE_IMPORT_DIR.")
    started_by: str
    state: JobState = Field(description="queued, running, done, failed or cancelled.")
    cancel_requested: bool = Field(
        description="Asked to stop; a running crawl stops between two URLs, an import between two images."
    )
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    progress: JobProgress
    error: str | None = Field(description="Why a failed job failed.")


def crawl_work(gov: Governance, order: NewJob) -> Work:
    """The crawl ``order`` asks for, as ``gov``'s user, reporting after every image."""

    def work(control: JobControl) -> bool:
        crawled, ingested = gov.crawl(
            order.source,
            max_pages=order.max_pages,
            rate=order.rate,
            on_progress=lambda crawled, ingested: control.report(Progress.of_crawl(crawled, ingested)),
            should_stop=control.should_stop,
        )
        control.report(Progress.of_crawl(crawled, ingested))  # pages and errors after the last image
        return crawled.stopped

    return work


def import_work(gov: Governance, order: NewJob) -> Work:
    """The import ``order`` asks for, as ``gov``'s user, reporting after every image."""

    def work(control: JobControl) -> bool:
        ingested, stopped = gov.import_folder(
            order.source,
            order.folder or ".",
            on_progress=lambda ingested: control.report(Progress.of_import(ingested)),
            should_stop=control.should_stop,
        )
        control.report(Progress.of_import(ingested, completed=not stopped))
        return stopped

    return work


def submit(gov: Governance, state: ServerState, order: NewJob) -> Job:
    """Queue ``order``, after refusing now what would only fail in the background (a user who may
    not collect; a paused, blocked or unknown source; a folder outside the import folder)."""
    if order.kind == "import":
        gov.import_plan(order.source, order.folder or ".")
        work = import_work(gov, order)
    else:
        gov.crawl_plan(order.source, max_pages=order.max_pages, rate=order.rate)
        work = crawl_work(gov, order)
    return state.jobs.submit(order.kind, order.source, gov.actor.name, work, folder=order.folder)


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=JobView)
def start_job(gov: Acting, state: State, order: NewJob, response: Response) -> dict[str, Any]:
    """Start a crawl or a folder import in the background; it waits while another job runs (admin)."""
    job = submit(gov, state, order)
    response.headers["Location"] = f"{router.prefix}/{job.id}"
    return asdict(job)


@router.get("", response_model=list[JobView])
def list_jobs(gov: Acting, state: State) -> list[dict[str, Any]]:
    """Every job since the server started, newest first (admin)."""
    gov.oversee_collection()
    return [asdict(job) for job in state.jobs.jobs()]


@router.get("/{job_id}", response_model=JobView)
def show_job(gov: Acting, state: State, job_id: int) -> dict[str, Any]:
    """One job, with its progress so far (admin)."""
    gov.oversee_collection()
    return asdict(state.jobs.job(job_id))


@router.post(
    "/{job_id}/cancel",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobView,
    responses=documented((409, "The job has already finished")),
)
def cancel_job(gov: Acting, state: State, job_id: int) -> dict[str, Any]:
    """Stop a job: a queued one at once, a running crawl between two URLs (it resumes from there at
    the next crawl of its source), an import between two images (admin)."""
    gov.oversee_collection()
    return asdict(state.jobs.cancel(job_id))
