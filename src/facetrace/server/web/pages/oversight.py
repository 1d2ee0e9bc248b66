"""The audit log for those who read it (auditors, supervisors for their unit, the DPO): whether
the hash chain holds, the entries by user, action and case, and an export to check offline."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from facetrace.server.web.errors import page_router
from facetrace.server.web.rendering import page
from facetrace.server.web.session import SignedIn

router = page_router()


@router.get("/audit", response_class=HTMLResponse)
def audit_log(
    request: Request, gov: SignedIn, user: str = "", action: str = "", case_ref: str = ""
) -> HTMLResponse:
    filters = {"user": user.strip(), "action": action.strip(), "case_ref": case_ref.strip()}
    chain = gov.audit.verify()
    entries = gov.audit.entries(
        user=filters["user"] or None, action=filters["action"] or None, case_ref=filters["case_ref"] or None
    )
    return page(request, "audit.html", gov, chain=chain, entries=entries, filters=filters)


@router.get("/audit/export", response_model=None)
def export(gov: SignedIn) -> Response:
    """The log (a supervisor's: their unit's entries) with the chain links, as ``facetrace audit
    export`` writes it; ``facetrace audit check-export`` verifies it offline."""
    document = gov.audit.export().document()
    return JSONResponse(document, headers={"content-disposition": 'attachment; filename="audit-export.json"'})
