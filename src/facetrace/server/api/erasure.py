"""Erasure, purges and retention (``facetrace erase|purge|retention``): dry run first, then deletion
with a certificate, which can be downloaded again by its reference."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, StringConstraints

from facetrace.core.errors import FacetraceError
from facetrace.governance.erasure import ErasurePlan, ErasureScope
from facetrace.governance.service import Governance
from facetrace.server.common.auth import Acting
from facetrace.server.common.params import MAX_ID
from facetrace.server.common.problems import PROBLEM_RESPONSES

router = APIRouter(prefix="/api/v1", tags=["erasure"], responses=PROBLEM_RESPONSES)

#: Places a dry run lists for review; a jurisdiction's purge may reach millions.
MAX_LOCATIONS = 1000
#: What retention deletes is not asked for by anyone: its certificate says why.
RETENTION_REASON = "retention period over"

FaceId = Annotated[int, Field(ge=1, le=MAX_ID)]
Name = Annotated[str, StringConstraints(min_length=1)]


class Execution(BaseModel):
    dry_run: bool = Field(True, description="Only say what would be deleted (the default).")
    reason: str | None = Field(
        None, description="Needed to execute: the rights request, order or decision it carries out."
    )


class ErasureOrder(Execution):
    """What to erase: faces, every image seen at some URLs or paths, or sources (then blocked)."""

    face_ids: list[FaceId] = Field(default_factory=list)
    urls: list[Name] = Field(
        default_factory=list, description="Image or page URLs, or file paths: the images seen there, whole."
    )
    sources: list[Name] = Field(default_factory=list, description="Sources, blocked for good afterwards.")


class PurgeOrder(Execution):
    """Everything a jurisdiction's sources gave; they are blocked, as is any new source there."""

    jurisdiction: str = Field(min_length=2, max_length=8, description="Country code, e.g. FR.")


class RetentionOrder(BaseModel):
    dry_run: bool = Field(True, description="Only say what has expired (the default).")


class ErasureCounts(BaseModel):
    faces: int
    images: int
    sightings: int
    sources_blocked: int


class ErasureDryRun(BaseModel):
    dry_run: Literal[True] = True
    counts: ErasureCounts
    blocked_sources: list[str]
    locations: list[str] = Field(
        description=f"Where the images to delete were seen (the first {MAX_LOCATIONS})."
    )
    locations_total: int


class Approver(BaseModel):
    user: str
    roles: list[str]
    unit: str | None


class AuditLink(BaseModel):
    seq: int
    hash: str


class Erased(BaseModel):
    """What was deleted, each value by its keyed hash (HMAC-SHA256 with the deployment's erasure key)."""

    keyed_hash: str
    key_id: str = Field(description="Names the key the hashes were made with (never the key).")
    locations: list[str] = Field(description="Image URLs or paths and page URLs of the deleted images.")
    face_removed_at: list[str] = Field(description="Where images that lost a face but stay were seen.")
    image_sha256: list[str]
    face_ids: list[str]


class Certificate(BaseModel):
    """Proof of deletion: what, when, who and why, with counts and keyed hashes, never the data."""

    certificate: str = Field(description="Its reference, to download it again.")
    executed_at: str
    executed_and_approved_by: Approver
    reason: str
    scope: dict[str, Any] = Field(description="How many faces and places were named, never which.")
    counts: ErasureCounts
    blocked_sources: list[str]
    # None in a certificate written before erasures were recorded by keyed hash.
    erased: Erased | None = None
    sha256_of_erased: str | None = None
    how_to_check: str | None = None
    index_files_rewritten: list[str]
    audit_entry: AuditLink


class PlaceToCheck(BaseModel):
    url: Name = Field(description="A URL or file path, exactly as it was collected.")


class CheckAnswer(BaseModel):
    certificate: str
    covered: bool
    how: Literal["erased", "face removed"] | None = Field(
        description="erased: the images seen there were deleted; face removed: a face was deleted "
        "from the image seen there."
    )


#: An execution's answer; a dry run's is the route's own (200).
EXECUTED: dict[int | str, dict[str, Any]] = {
    201: {"model": Certificate, "description": "Deleted: the deletion certificate"},
}


def dry_run_view(plan: ErasurePlan) -> ErasureDryRun:
    return ErasureDryRun(
        counts=ErasureCounts(**plan.counts()),
        blocked_sources=plan.blocked_sources,
        locations=plan.locations[:MAX_LOCATIONS],
        locations_total=len(plan.locations),
    )


def carry_out(gov: Governance, scope: ErasureScope, order: Execution) -> ErasureDryRun | JSONResponse:
    """The dry run, or the erasure itself: 201 with the certificate, whose address is in Location."""
    if order.dry_run:
        return dry_run_view(gov.erasure.plan(scope))
    if not order.reason:
        raise FacetraceError(
            "executing an erasure needs its reason: the request, order or decision reference"
        )
    certificate = Certificate.model_validate(gov.erasure.erase(scope, order.reason))
    return JSONResponse(
        certificate.model_dump(mode="json"),
        status_code=status.HTTP_201_CREATED,
        headers={"Location": f"{router.prefix}/erasures/certificates/{certificate.certificate}"},
    )


@router.post("/erasures", response_model=ErasureDryRun, responses=EXECUTED)
def erase(gov: Acting, order: ErasureOrder) -> ErasureDryRun | JSONResponse:
    """Erase faces, images or sources for good (GDPR art. 17); a dry run unless dry_run is false (DPO)."""
    scope = ErasureScope(
        face_ids=tuple(order.face_ids), locations=tuple(order.urls), sources=tuple(order.sources)
    )
    return carry_out(gov, scope, order)


@router.post("/purges", response_model=ErasureDryRun, responses=EXECUTED)
def purge(gov: Acting, order: PurgeOrder) -> ErasureDryRun | JSONResponse:
    """Delete all that a jurisdiction's sources gave and block them; a dry run unless dry_run is
    false (DPO)."""
    return carry_out(gov, ErasureScope(jurisdiction=order.jurisdiction.upper()), order)


@router.post("/retention", response_model=ErasureDryRun, responses=EXECUTED)
def retention(gov: Acting, order: RetentionOrder) -> ErasureDryRun | JSONResponse:
    """Delete every sighting older than its source's retention period, and images nobody else saw;
    a dry run unless dry_run is false (DPO)."""
    execution = Execution(dry_run=order.dry_run, reason=RETENTION_REASON)
    answer = carry_out(gov, ErasureScope(expired=True), execution)
    if not order.dry_run:  # and what rights requests keep past their time (each step audited)
        gov.rights.housekeeping()
    return answer


@router.get("/erasures/certificates/{reference}", response_model=Certificate)
def certificate(gov: Acting, reference: str, response: Response) -> dict[str, Any]:
    """Download a deletion certificate again, by its reference (DPO)."""
    document = gov.erasure.certificate(reference)
    response.headers["Content-Disposition"] = f'attachment; filename="{document["certificate"]}.json"'
    return document


@router.post("/erasures/certificates/{reference}/check", response_model=CheckAnswer)
def check(gov: Acting, reference: str, place: PlaceToCheck) -> CheckAnswer:
    """Whether a deletion certificate covers a URL (DPO); the URL is sent in the body, kept nowhere."""
    answer = gov.erasure.check(reference, place.url)
    return CheckAnswer(certificate=reference, covered=answer is not None, how=answer)
