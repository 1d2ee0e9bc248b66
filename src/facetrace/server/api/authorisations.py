"""Authorisations for searches (``facetrace authorisation``): request, decide, record, list."""

from __future__ import annotations

from datetime import UTC, date, datetime

from fastapi import APIRouter, status
from pydantic import BaseModel, Field

from facetrace.governance.services.authorisations import Authorisation
from facetrace.server.common.auth import Acting
from facetrace.server.common.problems import PROBLEM_RESPONSES

router = APIRouter(prefix="/api/v1/authorisations", tags=["authorisations"], responses=PROBLEM_RESPONSES)


class AuthorisationRequest(BaseModel):
    case_ref: str = Field(description="The case the searches will serve.")
    justification: str = Field(description="Why searches are necessary for it.")


class Decision(BaseModel):
    grant: bool
    note: str | None = Field(None, description="Why; required to refuse.")


class ExternalAuthorisation(BaseModel):
    case_ref: str
    authority: str = Field(description="The court or prosecutor that granted it.")
    reference: str = Field(description="The authority's own reference.")
    decided_on: date


class Reference(BaseModel):
    reference: str


class Decided(BaseModel):
    reference: str
    status: str
    search_results_deleted: int = Field(description="Results of searches that relied on a refused request.")


@router.post("", status_code=status.HTTP_201_CREATED, response_model=Reference)
def request_authorisation(gov: Acting, body: AuthorisationRequest) -> Reference:
    """Ask your supervisor for leave to search for a case (investigator)."""
    return Reference(reference=gov.authorisations.request(body.case_ref, body.justification))


@router.get("", response_model=list[Authorisation])
def list_authorisations(gov: Acting, pending: bool = False) -> list[Authorisation]:
    """Those you may see: your own requests, your unit's as a supervisor, all as auditor or DPO."""
    return gov.authorisations.listing(pending_only=pending)


@router.post("/{reference}/decision", response_model=Decided)
def decide(gov: Acting, reference: str, body: Decision) -> Decided:
    """Grant or refuse a pending request of your unit, not your own (supervisor)."""
    deleted = gov.authorisations.decide(reference, grant=body.grant, note=body.note)
    return Decided(
        reference=reference, status="granted" if body.grant else "refused", search_results_deleted=deleted
    )


@router.post("/external", status_code=status.HTTP_201_CREATED, response_model=Reference)
def record_external(gov: Acting, body: ExternalAuthorisation) -> Reference:
    """Record an authorisation granted by an outside judicial or administrative authority (supervisor)."""
    decided_on = datetime(body.decided_on.year, body.decided_on.month, body.decided_on.day, tzinfo=UTC)
    made = gov.authorisations.record_external(body.case_ref, body.authority, body.reference, decided_on)
    return Reference(reference=made)
