"""Reading the record: the audit log, usage reports, records of processing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from facetrace.governance import audit, reports
from facetrace.governance.audit import ChainReport, Record
from facetrace.governance.roles import Action
from facetrace.governance.services.base import ServiceBase


class OversightService(ServiceBase):
    def verify_audit(
        self, public_keys: list[Ed25519PublicKey] | None = None, anchor: dict[str, Any] | None = None
    ) -> ChainReport:
        """Check the whole chain and its signatures (any reader may: it reveals no entry, only whether
        it holds). ``public_keys``: trust these instead of the key file's; ``anchor``: a signed head
        kept elsewhere, which the log must still hold."""
        self.allow(Action.READ_AUDIT)
        with self.sessions() as session:
            report = audit.verify(session, public_keys, anchor)
        self.record(
            Record(
                action="audit.verify",
                details={
                    "ok": report.ok,
                    "entries": report.entries,
                    "first_broken": report.first_broken,
                    "trusted_keys": list(report.trusted_keys),
                    "anchor_seq": anchor["seq"] if anchor else None,
                },
            )
        )
        return report

    def audit_entries(
        self,
        *,
        user: str | None = None,
        action: str | None = None,
        case_ref: str | None = None,
        limit: int = 200,
    ) -> list[dict[str, Any]]:
        """Entries of the log, newest first, by user, action (or its prefix: ``search``, ``rights.``)
        and case; a supervisor reads their unit's. The query itself is recorded."""
        unit = self._reader_unit(Action.READ_AUDIT)
        filters = {"user": user, "action": action, "case_ref": case_ref, "unit": unit}
        with self.sessions() as session:
            entries = reports.recent(
                session, prefix=action, user=user, unit=unit, case_ref=case_ref, limit=limit
            )
        self.record(Record(action="audit.query", result_count=len(entries), details=filters))
        return entries

    def export_audit(self, first: int = 1, last: int | None = None) -> dict[str, Any]:
        unit = self._reader_unit(Action.READ_AUDIT)
        with self.sessions() as session:
            document = audit.export(session, first, last, unit=unit)
        self.record(
            Record(
                action="audit.export",
                details={
                    "first": first,
                    "last": document["last"],
                    "unit": unit,
                    "entries": len(document["entries"]),
                    "head": document["head"],
                },
            )
        )
        return document

    def usage_report(self, year: int) -> list[dict[str, Any]]:
        unit = self._reader_unit(Action.VIEW_REPORTS)
        with self.sessions() as session:
            rows = reports.usage(session, year, unit)
        self.record(Record(action="reports.usage", details={"year": year, "unit": unit}))
        return rows

    def annual_report(self, year: int, folder: Path) -> list[Path]:
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
