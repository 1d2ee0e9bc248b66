"""The data protection officer's pages: the rights requests queue with deadlines, a request's dry
run, verifying, refusing and executing it, certificates, purges by jurisdiction, and the records
of processing."""

from __future__ import annotations

import json
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

from fastapi import Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from facetrace.governance import rights
from facetrace.governance.erasure import ErasureScope
from facetrace.governance.services.rights import Executed
from facetrace.server.common.downloads import private_attachment
from facetrace.server.common.orders import FIRST_YEAR, LAST_YEAR
from facetrace.server.common.security_headers import standalone_document_policy
from facetrace.server.web.errors import page_router
from facetrace.server.web.rendering import back_to, page, reported
from facetrace.server.web.session import CheckedForm, SignedIn, field, flash

router = page_router()

#: What a certificate check found, in words.
CHECK_ANSWERS = {
    "erased": "covers this place: the images seen there were erased",
    "face removed": "covers this place: a face was erased from the image seen there",
    None: "does not cover this place",
}


def _in_words(produced: Executed) -> str:
    """What executing a request produced, for the message after it."""
    counts = produced.counts
    if isinstance(counts, dict):
        deleted = ", ".join(f"{n} {what.replace('_', ' ')}" for what, n in counts.items() if n)
        return f"deleted {deleted or 'nothing'}; certificate {produced.certificate}"
    if produced.access_report is not None:
        return f"access report written ({produced.faces_held} face(s) held)"
    return str(counts or "done")


@router.get("/dpo", response_class=HTMLResponse)
def queue(request: Request, gov: SignedIn) -> HTMLResponse:
    return page(request, "dpo.html", gov, queue=gov.rights.queue(include_closed=True))


@router.get("/dpo/requests/{reference}", response_class=HTMLResponse)
def request_detail(request: Request, reference: str, gov: SignedIn) -> HTMLResponse:
    entry = gov.rights.get(reference)
    plan = gov.rights.plan(reference) if entry.status in rights.OPEN else None
    return page(request, "dpo_request.html", gov, entry=entry, plan=plan)


@router.get("/dpo/requests/{reference}/report", response_model=None)
def access_report(reference: str, gov: SignedIn) -> Response:
    """An executed access request's report, as the person gets it."""
    return private_attachment(gov.rights.access_report(reference), f"{reference}-access.json")


@router.post("/dpo/requests/{reference}/{step}")
def move(request: Request, reference: str, step: str, gov: SignedIn, form: CheckedForm) -> RedirectResponse:
    with reported(request):
        if step == "execute":
            produced = gov.rights.execute(reference)
            flash(request, f"{reference} executed: {_in_words(produced)}")
        else:
            gov.rights.move(reference, step, field(form, "note") or None)
            flash(request, f"{reference} marked {step}.")
    return back_to(f"/dpo/requests/{reference}")


@router.get("/dpo/certificates/{reference}", response_model=None)
def certificate(reference: str, gov: SignedIn) -> Response:
    document = gov.erasure.certificate(reference)
    return JSONResponse(document, headers={"content-disposition": f'attachment; filename="{reference}.json"'})


@router.post("/dpo/certificates/{reference}/check")
def check_certificate(request: Request, reference: str, gov: SignedIn, form: CheckedForm) -> RedirectResponse:
    """Whether a deletion certificate covers a URL or path (by its keyed hash); back to the request."""
    place = field(form, "place")
    with reported(request):
        flash(request, f"{reference} {CHECK_ANSWERS[gov.erasure.check(reference, place)]}: {place}")
    return back_to(f"/dpo/requests/{quote(field(form, 'request'))}")


@router.post("/dpo/purge", response_class=HTMLResponse, response_model=None)
def purge(request: Request, gov: SignedIn, form: CheckedForm) -> HTMLResponse | RedirectResponse:
    """A purge by jurisdiction, or of what outlived its retention period: the dry run first, shown
    on the page; executing needs a reason."""
    if field(form, "what") == "retention":
        scope = ErasureScope(expired=True)
    else:
        scope = ErasureScope(jurisdiction=field(form, "jurisdiction").upper() or None)
    if field(form, "execute") != "yes":
        plan = gov.erasure.plan(scope)
        return page(request, "dpo.html", gov, queue=gov.rights.queue(include_closed=True), purge=plan)
    with reported(request):
        done = gov.erasure.erase(scope, field(form, "reason"))
        produced = Executed(certificate=done["certificate"], counts=done["counts"])
        flash(request, f"Done: {_in_words(produced)}.")
    return back_to("/dpo")


@router.get("/reports/annual", response_class=HTMLResponse)
def annual_report(
    request: Request, gov: SignedIn, year: Annotated[int | None, Query(ge=FIRST_YEAR, le=LAST_YEAR)] = None
) -> HTMLResponse:
    """The annual usage report (AI Act art. 26(10)), as the CLI writes it, shown in the browser."""
    year = year or datetime.now(UTC).year
    with tempfile.TemporaryDirectory(prefix="facetrace-report-") as folder:
        written = gov.reports.annual(year, Path(folder))
        html = next(path for path in written if path.suffix == ".html").read_text()
    return HTMLResponse(html, headers={"Content-Security-Policy": standalone_document_policy(html)})


@router.get("/dpo/records", response_class=HTMLResponse)
def records(request: Request, gov: SignedIn) -> HTMLResponse:
    document = gov.reports.records_of_processing()
    return page(request, "records.html", gov, records=json.dumps(document, indent=2, ensure_ascii=False))
