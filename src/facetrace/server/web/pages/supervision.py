"""The supervisor's page: pending authorisations to grant or refuse, the unit's searches per user
per month, and bulk-use alarms."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse

from facetrace.governance.reports import UsageRow
from facetrace.server.web.errors import page_router
from facetrace.server.web.rendering import back_to, page, reported
from facetrace.server.web.session import CheckedForm, SignedIn, field, flash

router = page_router()


def monthly_bars(rows: list[UsageRow]) -> dict[str, Any]:
    """The usage rows as a bar chart's data: one series per user, twelve months, and the scale."""
    series = [{"user": row.user, "months": list(row.months.values())} for row in rows]
    peak = max((count for row in rows for count in row.months.values()), default=0)
    return {"series": series, "peak": max(peak, 1)}


@router.get("/supervisor", response_class=HTMLResponse)
def supervisor(request: Request, gov: SignedIn) -> HTMLResponse:
    year = datetime.now(UTC).year
    return page(
        request,
        "supervisor.html",
        gov,
        pending=gov.authorisations.listing(pending_only=True),
        year=year,
        chart=monthly_bars(gov.reports.usage(year)),
        alarms=gov.reports.alarms(),
    )


@router.post("/supervisor/authorisations/{reference}")
def decide(request: Request, reference: str, gov: SignedIn, form: CheckedForm) -> RedirectResponse:
    grant = field(form, "decision") == "grant"
    with reported(request):
        deleted = gov.authorisations.decide(reference, grant=grant, note=field(form, "note") or None)
        verdict = "granted" if grant else f"refused ({deleted} search result set(s) deleted)"
        flash(request, f"Authorisation {reference} {verdict}.")
    return back_to("/supervisor")
