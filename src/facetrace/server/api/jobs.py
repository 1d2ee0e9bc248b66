"""Background jobs: ``facetrace crawl`` and ``facetrace ingest FOLDER`` over HTTP. Start one,
follow its progress, cancel it; list every job the catalog holds (the command line's too), also
those a stopped or killed server left (shown as interrupted).

A crawl collects a registered website, sitemap or urls source. An import reads a folder, but only
one inside ``FACETRACE_IMPORT_DIR`` (see :mod:`facetrace.ingest.import_dir`), into a registered
local source.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Response, status
from pydantic import BaseModel, Field

from facetrace.app.jobs import JobState
from facetrace.governance.job_listing import MAX_LISTED
from facetrace.server.common.auth import Acting
from facetrace.server.common.orders import NewJob, submit
from facetrace.server.common.params import MAX_ID
from facetrace.server.common.problems import PROBLEM_RESPONSES, documented
from facetrace.server.common.state import ServerState, server_state

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"], responses=PROBLEM_RESPONSES)

State = Annotated[ServerState, Depends(server_state)]
JobId = Annotated[int, Path(ge=1, le=MAX_ID)]


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
    kind: Literal["crawl", "import", "ingest"] = Field(
        description="ingest: 'facetrace ingest' on the server's command line."
    )
    source: str
    folder: str | None = Field(
        description="What an import reads, inside FACETRACE_IMPORT_DIR (an ingest: its paths)."
    )
    started_by: str
    state: JobState = Field(
        description="queued, running, done, failed, cancelled, or interrupted (its process stopped or "
        "died first; running it again resumes it)."
    )
    cancel_requested: bool = Field(
        description="Asked to stop; a running crawl stops between two URLs, an import between two images."
    )
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    progress: JobProgress
    error: str | None = Field(description="Why a failed job failed, or an interrupted one stopped.")
    started_entry: int | None = Field(
        description="The audit entry written when it started running: what it stored is accounted for."
    )


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=JobView)
def start_job(gov: Acting, state: State, order: NewJob, response: Response) -> dict[str, Any]:
    """Start a crawl or a folder import in the background; it waits while another job runs (admin)."""
    job = submit(gov, state, order)
    response.headers["Location"] = f"{router.prefix}/{job.id}"
    return asdict(job)


@router.get("", response_model=list[JobView])
def list_jobs(
    gov: Acting,
    limit: Annotated[int, Query(ge=1, le=MAX_LISTED, description="At most this many jobs.")] = 100,
    before: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="Only jobs older than this one (the next page).")
    ] = None,
) -> list[dict[str, Any]]:
    """The jobs the catalog holds, newest first: this server's, earlier servers' (those a stopped or
    killed server left show as interrupted) and the command line's (admin)."""
    return [asdict(job) for job in gov.jobs.listing(limit=limit, before=before)]


@router.get("/{job_id}", response_model=JobView)
def show_job(gov: Acting, job_id: JobId) -> dict[str, Any]:
    """One job, with its progress so far (admin)."""
    return asdict(gov.jobs.get(job_id))


@router.post(
    "/{job_id}/cancel",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobView,
    responses=documented((409, "The job has already finished")),
)
def cancel_job(gov: Acting, state: State, job_id: JobId) -> dict[str, Any]:
    """Stop a job: a queued one at once, a running crawl between two URLs (it resumes from there at
    the next crawl of its source), an import between two images (admin)."""
    job = gov.jobs.cancel(job_id)
    state.jobs.stop(job_id)
    return asdict(job)
