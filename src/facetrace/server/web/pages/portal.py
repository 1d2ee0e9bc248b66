"""The public rights portal (no login): anyone may ask what Facetrace holds about them, to erase
it, or to object to its collection — by the URLs of images or pages, or by a selfie that is
matched in memory and dropped — and follow the request by its reference and code.

The portal is no face search: its answer to a request never depends on the gallery. A photo is
refused only for what it is (not an image, no face or several faces); once accepted, the same
search runs whatever it shows, and the page that comes back is the same but for the new
reference and code. What the photo matched is kept with the request for the DPO alone.

Before a byte of a request's body is read, the client's address (see
:mod:`facetrace.server.common.client_address`) is counted against FACETRACE_PORTAL_REQUESTS_PER_HOUR
(moving window, the ``limits`` library) and the session's CSRF token, which the form sends in
its action's query string, is checked; the body is then read in memory within
FACETRACE_PORTAL_MAX_UPLOAD_BYTES.

A photo is decoded and analysed in the portal's own lane (:mod:`facetrace.app.analysis_lanes`):
its own analyzers and workers, FACETRACE_PORTAL_ANALYSIS_CONCURRENCY at once and
FACETRACE_PORTAL_QUEUE waiting, past which it is refused with 503 before it is decoded; never by
the analyzers investigators' searches check out.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from functools import partial
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from limits import RateLimitItemPerHour
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from facetrace.core.errors import BusyError, FacetraceError, NotFoundError
from facetrace.governance import rights
from facetrace.governance.service import Governance
from facetrace.governance.services.rights import FiledRequest
from facetrace.server.common.client_address import client_address
from facetrace.server.common.downloads import private_attachment
from facetrace.server.common.state import ServerState, server_state
from facetrace.server.common.uploads import UploadedForm, read_form, refuse_unread
from facetrace.server.web.errors import page_router
from facetrace.server.web.rendering import page
from facetrace.server.web.session import BROWSER_FILE_TYPES, field, photo
from facetrace.vision.analyzer import FaceAnalyzer
from facetrace.vision.analyzer_pool import AnalysedPhoto

router = page_router()
State = Annotated[ServerState, Depends(server_state)]
#: A lookup by reference and code sends two short fields.
LOOKUP_BYTES = 4096


def limiter() -> MovingWindowRateLimiter:
    """One per app (kept on ``app.state``): counts in this process's memory."""
    return MovingWindowRateLimiter(MemoryStorage())


async def portal_form(request: Request, state: State) -> UploadedForm:
    """The posted request, if its sender is within the rate limit and its CSRF token is the session's:
    both checked before the body is read; the body is then read within its limit."""
    cap = state.settings.portal_max_upload_bytes
    limit = RateLimitItemPerHour(state.settings.portal_requests_per_hour)
    portal_limiter: MovingWindowRateLimiter = request.app.state.portal_limiter
    address = client_address(request)
    if not portal_limiter.hit(limit, "portal", address):
        reset_at, _remaining = portal_limiter.get_window_stats(limit, "portal", address)
        wait = max(1, int(reset_at - time.time()))
        message = "too many requests from your address in the last hour: please try again later"
        raise await refuse_unread(request, HTTPException(429, message, {"Retry-After": str(wait)}), cap)
    sent = request.query_params.get("csrf", "")
    expected = request.session.get("csrf", "")
    if not expected or not secrets.compare_digest(sent, expected):
        message = "this form has expired or came from another site: reload the page"
        raise await refuse_unread(request, HTTPException(403, message), cap)
    return await read_form(
        request,
        max_file_bytes=min(cap, state.settings.max_image_bytes),
        file_types=BROWSER_FILE_TYPES,
        max_body_bytes=cap,
    )


@router.get("/portal", response_class=HTMLResponse)
def portal(request: Request) -> HTMLResponse:
    return page(request, "portal.html", kinds=rights.KINDS, form={})


@router.post("/portal", response_class=HTMLResponse)
async def file_request(
    request: Request, form: Annotated[UploadedForm, Depends(portal_form)], state: State
) -> HTMLResponse:
    values = {name: field(form, name) for name in ("kind", "urls", "contact")}
    if values["kind"] not in rights.KINDS:
        return page(
            request,
            "portal.html",
            kinds=rights.KINDS,
            form=values,
            error="Choose what you ask for.",
            status_code=400,
        )
    portal_gov = await run_in_threadpool(Governance.public_portal, state.settings, state.sessions)
    filing = partial(
        portal_gov.rights.file,
        values["kind"],
        urls=values["urls"].split(),
        contact=values["contact"] or None,
        consent_to_keep_template=field(form, "consent") == "yes",
    )
    selfie = photo(form)
    try:
        if selfie is None:
            filed = await run_in_threadpool(filing)
        else:
            filed = await state.portal_lane.run(partial(_file_matched, filing, selfie))
    except BusyError as exc:
        raise HTTPException(503, str(exc), {"Retry-After": str(exc.retry_after_s)}) from None
    except FacetraceError as exc:
        return page(request, "portal.html", kinds=rights.KINDS, form=values, error=str(exc), status_code=400)
    status = await run_in_threadpool(portal_gov.rights.status, filed.reference, filed.code)
    return page(request, "portal_filed.html", status=status, code=filed.code)


def _file_matched(filing: Callable[..., FiledRequest], selfie: bytes, analyzer: FaceAnalyzer) -> FiledRequest:
    """File with the photo, on the portal's lane: decoded and analysed by the lane's ``analyzer``
    first, then matched against the gallery (which any number of searches read at once)."""
    analysis = analyzer.analyze(selfie)
    return filing(photo=selfie, analyzer=AnalysedPhoto(analyzer, selfie, analysis))


@router.get("/portal/status", response_class=HTMLResponse)
def status_form(request: Request) -> HTMLResponse:
    return page(request, "portal_status.html", status=None, asked=False)


async def reference_and_code(request: Request) -> tuple[str, str]:
    """A request's reference and code, sent in a small form body (so that they stay out of
    addresses, logs and browser history)."""
    form = await read_form(request, max_file_bytes=0, max_body_bytes=LOOKUP_BYTES)
    return field(form, "reference"), field(form, "code")


Lookup = Annotated[tuple[str, str], Depends(reference_and_code)]


@router.post("/portal/status", response_class=HTMLResponse)
def status(request: Request, state: State, lookup: Lookup) -> HTMLResponse:
    """A request's status and dates, for whoever gives its reference and code."""
    reference, code = lookup
    portal_gov = Governance.public_portal(state.settings, state.sessions)
    try:
        found = portal_gov.rights.status(reference, code)
    except NotFoundError:
        found = None
    return page(request, "portal_status.html", status=found, code=code if found else "", asked=True)


@router.post("/portal/report")
def report(state: State, lookup: Lookup) -> Response:
    """The access report of a request, for whoever gives its reference and code."""
    reference, code = lookup
    portal_gov = Governance.public_portal(state.settings, state.sessions)
    return private_attachment(portal_gov.rights.access_report(reference, code), "access-report.json")
