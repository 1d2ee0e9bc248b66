"""Background jobs (``facetrace crawl`` over HTTP): start a crawl, follow its progress, cancel it.

Only crawls of registered sources: ingesting a folder of the server's disk would need a setting
that confines it to an import folder, and there is none yet.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Response, status
from pydantic import BaseModel, Field

from facetrace.governance.service import Governance
from facetrace.server.auth import Acting
from facetrace.server.jobs import JobControl, JobState, Progress, Work
from facetrace.server.problems import PROBLEM_RESPONSES, documented
from facetrace.server.routes.sources import MAX_PAGES
from facetrace.server.state import ServerState, server_state

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"], responses=PROBLEM_RESPONSES)

State = Annotated[ServerState, Depends(server_state)]


class NewJob(BaseModel):
    """A crawl of a registered website, sitemap or urls source, into the gallery."""

    kind: Literal["crawl"] = "crawl"
    source: str = Field(min_length=1, description="The registered source to crawl.")
    max_pages: int | None = Field(
        None, ge=1, le=MAX_PAGES, description="At most this many pages (default: the source's)."
    )
    rate: float | None = Field(
        None, gt=0, allow_inf_nan=False, description="Requests per second per host (default: the source's)."
    )


class JobProgress(BaseModel):
    pages: int
    images_fetched: int
    new_images: int = Field(description="Images whose bytes were not in the catalog yet.")
    faces: int = Field(description="Faces found in the new images.")
    errors: int = Field(description="URLs not fetched, and images that could not be analysed.")
    resumed: bool = Field(description="Picked up where an earlier crawl of the source stopped.")
    completed: bool = Field(description="Went through the whole source: the next crawl starts afresh.")


class JobView(BaseModel):
    id: int
    kind: Literal["crawl"]
    source: str
    started_by: str
    state: JobState = Field(description="queued, running, done, failed or cancelled.")
    cancel_requested: bool = Field(description="Asked to stop; a running crawl stops between two URLs.")
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


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=JobView)
def start_job(gov: Acting, state: State, order: NewJob, response: Response) -> dict[str, Any]:
    """Start a crawl in the background; it waits while another job runs (admin)."""
    gov.crawl_plan(order.source, max_pages=order.max_pages, rate=order.rate)  # refused now, not later
    job = state.jobs.submit(order.kind, order.source, gov.actor.name, crawl_work(gov, order))
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
    """Stop a job: a queued one at once, a running crawl between two URLs; it resumes from where it
    stopped at the next crawl of its source (admin)."""
    gov.oversee_collection()
    return asdict(state.jobs.cancel(job_id))
