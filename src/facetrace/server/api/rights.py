"""Data-subject requests (``facetrace rights``): file, the queue, verify or refuse, dry run, execute."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response, status
from pydantic import BaseModel, Field

from facetrace.governance.services.rights import RightsRequest
from facetrace.server.api.erasure import ErasureDryRun, dry_run_view
from facetrace.server.common.auth import Acting
from facetrace.server.common.downloads import private_attachment
from facetrace.server.common.problems import PROBLEM_RESPONSES, UPLOAD_RESPONSES
from facetrace.server.common.state import ServerState, server_state
from facetrace.server.common.uploads import ImageForm, multipart_openapi

router = APIRouter(prefix="/api/v1/rights", tags=["rights requests"], responses=PROBLEM_RESPONSES)


class RightsForm(BaseModel):
    """A request received (by mail, at the desk), besides the optional photo."""

    kind: str = Field(description="access, erasure or objection.")
    url: list[str] = Field(default_factory=list, description="An image or page URL (repeatable).")
    contact: str | None = Field(None, description="How to answer the person.")
    consent_template: bool = Field(
        False, description="Objection: the person consents to keeping one template to block their face."
    )


class Reference(BaseModel):
    reference: str
    code: str = Field(
        description="The secret code to give the person with the reference: both are needed "
        "to follow the request on the public portal. Shown only now."
    )


class Move(BaseModel):
    status: Literal["verified", "refused"]
    note: str | None = Field(None, description="Identity and scope checked; or the reason for a refusal.")


class RightsDryRun(BaseModel):
    reference: str
    erasure: ErasureDryRun | None = Field(
        description="What executing the request would delete now; none for an access request."
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=Reference,
    responses=UPLOAD_RESPONSES,
    openapi_extra=multipart_openapi(
        RightsForm, {"photo": "The person's photo: matched in memory, never stored."}, ()
    ),
)
def file_request(
    gov: Acting, form: ImageForm, state: Annotated[ServerState, Depends(server_state)]
) -> Reference:
    """Record a request; the answer is due in FACETRACE_RIGHTS_DEADLINE_DAYS (DPO, public portal)."""
    fields = form.parse(RightsForm)
    photo = form.files.get("photo")
    filed = gov.rights.file(
        fields.kind,
        urls=fields.url,
        photo=photo.data if photo else None,
        analyzer=state.analyzer if photo else None,
        contact=fields.contact,
        consent_to_keep_template=fields.consent_template,
    )
    return Reference(reference=filed.reference, code=filed.code)


@router.get("", response_model=list[RightsRequest])
def queue(gov: Acting, include_closed: Annotated[bool, Query(alias="all")] = False) -> list[RightsRequest]:
    """The queue, overdue first (DPO)."""
    return gov.rights.queue(include_closed)


@router.get("/{reference}", response_model=RightsRequest)
def request_status(gov: Acting, reference: str) -> RightsRequest:
    """One request, with its history and outcome (DPO)."""
    return gov.rights.get(reference)


@router.get(
    "/{reference}/report",
    response_class=Response,
    responses={200: {"content": {"application/json": {}}, "description": "The access report."}},
)
def access_report(gov: Acting, reference: str) -> Response:
    """An executed access request's report, while it is kept (FACETRACE_RIGHTS_REPORT_DAYS) (DPO)."""
    return private_attachment(gov.rights.access_report(reference), f"{reference}-access.json")


@router.post("/{reference}/status", status_code=status.HTTP_204_NO_CONTENT)
def move(gov: Acting, reference: str, body: Move) -> Response:
    """Mark a request verified (identity and scope checked) or refused, with the reason (DPO)."""
    gov.rights.move(reference, body.status, body.note)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{reference}/dry-run", response_model=RightsDryRun)
def dry_run(gov: Acting, reference: str) -> RightsDryRun:
    """What executing an erasure or objection request would delete, before it is executed (DPO)."""
    plan = gov.rights.plan(reference)
    return RightsDryRun(reference=reference, erasure=dry_run_view(plan) if plan else None)


@router.post("/{reference}/execute", response_model=dict[str, Any])
def execute(gov: Acting, reference: str) -> dict[str, Any]:
    """Answer a verified request: the access report, or erasure with its certificate (and blocks on
    future collection, for an objection). Returns what was produced (DPO)."""
    return gov.rights.execute(reference).as_json()
