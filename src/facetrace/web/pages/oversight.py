"""The audit log for those who read it (auditors, supervisors for their unit, the DPO): whether
the hash chain holds, the entries by user, action and case, and an export to check offline."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from facetrace.errors import FacetraceError
from facetrace.web.rendering import page, problem_page
from facetrace.web.session import SignedIn

router = APIRouter(include_in_schema=False)


@router.get("/audit", response_class=HTMLResponse)
def audit_log(
    request: Request, gov: SignedIn, user: str = "", action: str = "", case_ref: str = ""
) -> HTMLResponse:
    filters = {"user": user.strip(), "action": action.strip(), "case_ref": case_ref.strip()}
    try:
        chain = gov.verify_audit()
        entries = gov.audit_entries(**{k: v or None for k, v in filters.items()})
    except FacetraceError as exc:
        return problem_page(request, gov, exc)
    return page(request, "audit.html", gov, chain=chain, entries=entries, filters=filters)


@router.get("/audit/export", response_model=None)
def export(request: Request, gov: SignedIn) -> Response:
    """The log (a supervisor's: their unit's entries) with the chain links, as ``facetrace audit
    export`` writes it; ``facetrace audit check-export`` verifies it offline."""
    try:
        document = gov.export_audit()
    except FacetraceError as exc:
        return problem_page(request, gov, exc)
    return JSONResponse(document, headers={"content-disposition": 'attachment; filename="audit-export.json"'})
