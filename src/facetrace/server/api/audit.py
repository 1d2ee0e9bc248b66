"""The audit log (``facetrace audit``): verify the chain, query entries, export a range, get the
public key and a signed anchor of the head."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from facetrace.governance.services.audit import Anchor, AuditExport, PublicKeys
from facetrace.server.common.auth import Acting
from facetrace.server.common.params import MAX_ID
from facetrace.server.common.problems import PROBLEM_RESPONSES

router = APIRouter(prefix="/api/v1/audit", tags=["audit"], responses=PROBLEM_RESPONSES)


class ChainReport(BaseModel):
    ok: bool
    entries: int
    head_seq: int
    head_hash: str
    first_broken: int | None = Field(description="Sequence number of the first bad entry, if any.")
    problem: str | None
    signed: int = Field(description="Entries whose signature was checked.")
    trusted_keys: list[str] = Field(
        description="Ids (sha256 of the public key) of the keys trusted: the server's key file's, and "
        "those linked to it by signed rotations; never a key only the catalog lists."
    )
    anchor_seq: int | None = None
    note: str | None = None


@router.get("/verify", response_model=ChainReport)
def verify(gov: Acting) -> dict[str, Any]:
    """Check every entry's hash and link; report the first broken entry."""
    return asdict(gov.audit.verify())


class AuditEntry(BaseModel):
    seq: int
    at: str
    user: str
    unit: str | None
    action: str
    outcome: str = Field(description="done, denied, refused or failed.")
    case_ref: str | None
    offence: str | None
    purpose: str | None
    authorisation_ref: str | None
    result_count: int | None
    details: dict[str, Any]


@router.get("/entries", response_model=list[AuditEntry])
def entries(
    gov: Acting,
    user: Annotated[str | None, Query(max_length=200, description="Only this user's entries.")] = None,
    action: Annotated[
        str | None, Query(max_length=64, description="An action, or its start (search, rights., data.erase).")
    ] = None,
    case_ref: Annotated[str | None, Query(max_length=200, description="Only this case's entries.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[dict[str, Any]]:
    """Entries, newest first (a supervisor: their unit's). The query is itself recorded."""
    return gov.audit.entries(user=user, action=action, case_ref=case_ref, limit=limit)


@router.get("/export", response_model=AuditExport)
def export(
    gov: Acting,
    first: Annotated[
        int, Query(alias="from", ge=1, le=MAX_ID, description="First entry (sequence number).")
    ] = 1,
    last: Annotated[
        int | None, Query(alias="to", ge=1, le=MAX_ID, description="Last entry (default: newest).")
    ] = None,
) -> AuditExport:
    """A range of the log with the head hash, so an outside body can check it later."""
    return gov.audit.export(first, last)


@router.get("/public-key", response_model=PublicKeys)
def public_key(gov: Acting) -> PublicKeys:
    """The public key the log is signed with, and every earlier one, so exports can be checked
    without any secret."""
    return gov.audit.public_keys()


@router.get("/anchor", response_model=Anchor)
def anchor(gov: Acting) -> Anchor:
    """A signed head of the log (sequence number, hash, time, key) to keep elsewhere."""
    return gov.audit.anchor()
