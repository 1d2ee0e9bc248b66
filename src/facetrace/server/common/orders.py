"""What the API and the web pages both accept and do: the request bodies of a new source, token,
job or search, the bounds on report years, and the job orders both submit."""

from __future__ import annotations

from typing import Literal

from fastapi import Response
from pydantic import BaseModel, Field, model_validator

from facetrace.app.jobs import Job, JobControl, Work
from facetrace.governance.service import Governance
from facetrace.server.common.state import ServerState

#: Upper bounds of a source's limits: far beyond any sensible value, within a 32-bit column.
MAX_RETENTION_DAYS, MAX_PAGES, MAX_DEPTH = 100 * 366, 1_000_000_000, 1000


class NewSource(BaseModel):
    """A source to register; the registry validates it (kinds, seeds, no social networks)."""

    name: str
    kind: str = Field("local", description="local, urls, website or sitemap.")
    legal_basis: str = Field(description="Why collecting this source is lawful.")
    jurisdiction: str = Field(description="Country code, e.g. FR.")
    purpose: str | None = Field(None, description="What the collection is for.")
    seeds: list[str] = Field(default_factory=list, description="Where a crawl starts.")
    allowed: list[str] = Field(
        default_factory=list,
        description="HOST, HOST:PORT, HOST/PATH or https://HOST:PORT/PATH a crawl may fetch "
        "(default: the seeds' hosts, with their ports).",
    )
    retention_days: int | None = Field(None, ge=1, le=MAX_RETENTION_DAYS)
    max_pages: int | None = Field(None, ge=1, le=MAX_PAGES)
    max_depth: int | None = Field(None, ge=1, le=MAX_DEPTH)
    rate_per_s: float | None = Field(
        None, gt=0, allow_inf_nan=False, description="Requests per second per host."
    )
    allow_private_network: bool = Field(
        False,
        description="An intranet source: its crawls may reach loopback, private and link-local "
        "addresses (refused otherwise, after DNS resolution).",
    )


class NewToken(BaseModel):
    name: str = Field("api", min_length=1, max_length=200, description="What the token is for.")
    days: int = Field(90, ge=1, le=3650, description="Valid for this many days.")


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


def crawl_work(gov: Governance, order: NewJob) -> Work:
    """The crawl ``order`` asks for, as ``gov``'s user (it reports to its job after every image)."""

    def work(control: JobControl) -> bool:
        crawled, _ = gov.sources.crawl(order.source, max_pages=order.max_pages, rate=order.rate, job=control)
        return crawled.stopped

    return work


def import_work(gov: Governance, order: NewJob) -> Work:
    """The import ``order`` asks for, as ``gov``'s user (it reports to its job after every image)."""

    def work(control: JobControl) -> bool:
        _, stopped = gov.sources.import_folder(order.source, order.folder or ".", job=control)
        return stopped

    return work


def submit(gov: Governance, state: ServerState, order: NewJob) -> Job:
    """Queue ``order``, after refusing now what would only fail in the background (a user who may
    not collect; a paused, blocked or unknown source; a folder outside the import folder)."""
    if order.kind == "import":
        gov.sources.import_plan(order.source, order.folder or ".")
        work = import_work(gov, order)
    else:
        gov.sources.crawl_plan(order.source, max_pages=order.max_pages, rate=order.rate)
        work = crawl_work(gov, order)
    return state.jobs.submit(order.kind, order.source, gov.actor.name, work, folder=order.folder)


class SearchForm(BaseModel):
    """The form fields of a search besides the photo. The purpose fields are optional here: the
    service refuses (and records) a search without them, with a message saying what is missing."""

    case_ref: str | None = Field(None, description="The case this search serves.")
    offence: str | None = Field(None, description="Offence category (GET /api/v1/policy lists them).")
    justification: str | None = Field(None, description="Why this search is necessary, in words.")
    authorisation_ref: str | None = Field(None, description="Reference of the authorisation, if any.")
    k: int | None = Field(None, ge=1, le=1000, description="How many results (default FACETRACE_SEARCH_K).")
    face: int = Field(1, ge=1, description="Which probe face: 1 = the largest.")
    min_score: float | None = Field(None, allow_inf_nan=False, description="Hide results below this score.")
    source: list[str] = Field(
        [], description="Only faces seen in these sources (by name; repeat the field for several)."
    )
    jurisdiction: list[str] = Field(
        [],
        description="Only faces seen in sources of these jurisdictions (two-letter country codes; "
        "repeat the field for several). With `source` too: sources that match both.",
    )


def crop_response(jpeg: bytes) -> Response:
    """A face crop, kept out of every cache: an erased face must not live on in a browser's."""
    return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "private, no-store"})


#: Calendar years a report may cover (UTC); the upper bound leaves room for the year after it.
FIRST_YEAR, LAST_YEAR = 1970, 9998
