"""Usage reports, bulk-use alarms and the records of processing, generated from the data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from facetrace.governance import reports
from facetrace.governance.audit import Record
from facetrace.governance.reports import UsageRow
from facetrace.governance.roles import Action
from facetrace.governance.services.base import ServiceBase


class ReportService(ServiceBase):
    """``gov.reports``: what the deployment did, for supervisors, auditors and DPOs."""

    def usage(self, year: int) -> list[UsageRow]:
        unit = self._reader_unit(Action.VIEW_REPORTS)
        with self.sessions() as session:
            rows = reports.usage(session, year, unit)
        self.record(Record(action="reports.usage", details={"year": year, "unit": unit}))
        return rows

    def annual(self, year: int, folder: Path) -> list[Path]:
        """Write the annual usage report (JSON, CSV, plot, HTML) to ``folder``."""
        unit = self._reader_unit(Action.VIEW_REPORTS)
        policy = self.deployment_policy()
        with self.sessions() as session:
            report = reports.annual(session, policy, year, unit)
        from facetrace.governance import report_files  # Jinja2: only the commands that render load it

        written = report_files.write_annual(report, folder)
        self.record(
            Record(action="reports.annual", details={"year": year, "unit": unit, "folder": str(folder)})
        )
        return written

    def alarms(self, limit: int = 50) -> list[dict[str, Any]]:
        """Bulk-use alarms (bursts of searches) of the reader's unit, or of all units, newest first."""
        unit = self._reader_unit(Action.VIEW_REPORTS)
        with self.sessions() as session:
            return reports.recent(session, prefix="alarm.", unit=unit, limit=limit)

    def records_of_processing(self) -> dict[str, Any]:
        self.allow(Action.VIEW_RECORDS)
        policy = self.deployment_policy()
        with self.sessions() as session:
            records = reports.records_of_processing(session, policy)
        self.record(Record(action="records.view"))
        return records
