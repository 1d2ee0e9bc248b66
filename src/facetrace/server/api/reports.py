"""Reports generated from the data (``facetrace report``): usage, the annual report, records of processing."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from fastapi import Path as PathParameter

from facetrace.governance.reports import UsageRow
from facetrace.server.common.auth import Acting
from facetrace.server.common.orders import FIRST_YEAR, LAST_YEAR
from facetrace.server.common.problems import PROBLEM_RESPONSES

router = APIRouter(prefix="/api/v1/reports", tags=["reports"], responses=PROBLEM_RESPONSES)


class AnnualFile(StrEnum):
    """The files of the annual report, as ``facetrace report annual`` writes them."""

    HTML = "report.html"
    JSON = "report.json"
    CSV = "usage.csv"
    PLOT = "searches.svg"

    @property
    def media_type(self) -> str:
        return {
            AnnualFile.HTML: "text/html; charset=utf-8",
            AnnualFile.JSON: "application/json",
            AnnualFile.CSV: "text/csv; charset=utf-8",
            AnnualFile.PLOT: "image/svg+xml",
        }[self]


@router.get("/usage", response_model=list[UsageRow])
def usage(
    gov: Acting,
    year: Annotated[
        int | None, Query(ge=FIRST_YEAR, le=LAST_YEAR, description="Calendar year (default: this one).")
    ] = None,
) -> list[UsageRow]:
    """Searches per unit, user and month; a supervisor sees their own unit (supervisor, DPO, auditor)."""
    return gov.reports.usage(year or datetime.now(UTC).year)


@router.get(
    "/annual/{year}/{file}",
    response_class=Response,
    responses={200: {"content": {t.media_type.split(";")[0]: {} for t in AnnualFile}}},
)
def annual(
    gov: Acting, year: Annotated[int, PathParameter(ge=FIRST_YEAR, le=LAST_YEAR)], file: AnnualFile
) -> Response:
    """One file of the annual usage report (AI Act art. 26(10)), generated now: the HTML page, its
    JSON, the usage table as CSV, or the plot; a supervisor's covers their unit (supervisor, DPO,
    auditor)."""
    with tempfile.TemporaryDirectory(prefix="facetrace-report-") as folder:
        written = {path.name: path for path in gov.reports.annual(year, Path(folder))}
        content = written[file.value].read_bytes()
    disposition = f'inline; filename="facetrace-{year}-{file.value}"'
    return Response(content, media_type=file.media_type, headers={"Content-Disposition": disposition})


@router.get("/processing", response_model=dict[str, Any])
def records_of_processing(gov: Acting) -> dict[str, Any]:
    """Records of processing (GDPR art. 30): purposes, data, recipients, sources, retention (DPO, auditor)."""
    return gov.reports.records_of_processing()
