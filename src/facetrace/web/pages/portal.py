"""The public rights portal (no login): anyone may ask what Facetrace holds about them, to erase
it, or to object to its collection — by the URLs of images or pages, or by a selfie that is
matched in memory and dropped — and follow the request by its reference.

Rate-limited per client address (``FACETRACE_PORTAL_REQUESTS_PER_HOUR``, moving window, the
``limits`` library); the answer never says whether or what the photo matched.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from limits import RateLimitItemPerHour
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from facetrace.errors import FacetraceError
from facetrace.governance import rights
from facetrace.governance.service import Governance
from facetrace.server.state import ServerState, server_state
from facetrace.web.errors import page_router
from facetrace.web.rendering import page
from facetrace.web.session import CheckedForm, field, photo

router = page_router()
State = Annotated[ServerState, Depends(server_state)]


def limiter() -> MovingWindowRateLimiter:
    """One per app (kept on ``app.state``): counts in this process's memory."""
    return MovingWindowRateLimiter(MemoryStorage())


@router.get("/portal", response_class=HTMLResponse)
def portal(request: Request) -> HTMLResponse:
    return page(request, "portal.html", kinds=rights.KINDS, form={})


@router.post("/portal", response_class=HTMLResponse)
def file_request(request: Request, form: CheckedForm, state: State) -> HTMLResponse:
    values = {name: field(form, name) for name in ("kind", "urls", "contact")}
    limit = RateLimitItemPerHour(state.settings.portal_requests_per_hour)
    client = request.client.host if request.client else "unknown"
    if not request.app.state.portal_limiter.hit(limit, "portal", client):
        error = "Too many requests from your address in the last hour. Please try again later."
        return page(request, "portal.html", kinds=rights.KINDS, form=values, error=error, status_code=429)
    if values["kind"] not in rights.KINDS:
        return page(request, "portal.html", kinds=rights.KINDS, form=values, error="Choose what you ask for.")
    selfie = photo(form)
    portal_gov = Governance.public_portal(state.settings, state.sessions)
    try:
        with state.vision_lock:
            reference = portal_gov.file_rights_request(
                values["kind"],
                urls=values["urls"].split(),
                photo=selfie,
                analyzer=state.analyzer if selfie else None,
                contact=values["contact"] or None,
                consent_to_keep_template=field(form, "consent") == "yes",
            )
    except FacetraceError as exc:
        return page(request, "portal.html", kinds=rights.KINDS, form=values, error=str(exc), status_code=400)
    return page(request, "portal_filed.html", status=portal_gov.rights_request_status(reference))


@router.get("/portal/status", response_class=HTMLResponse)
def status(request: Request, state: State, reference: str = "") -> HTMLResponse:
    portal_gov = Governance.public_portal(state.settings, state.sessions)
    try:
        found = portal_gov.rights_request_status(reference.strip()) if reference.strip() else None
    except FacetraceError:
        found = None
    return page(request, "portal_status.html", reference=reference, status=found)
