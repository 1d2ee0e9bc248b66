"""Reports generated from the data itself: searches per unit, user and month (the figure that would
have shown at once that a unit searched 78 times, not 2), the annual usage report (AI Act art.
26(10)) and the records of processing (GDPR art. 30).

Everything is counted from the audit log and the catalog, never typed in by hand.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from facetrace.catalog import repository
from facetrace.core.svg_chart import line_chart_svg
from facetrace.governance import audit
from facetrace.governance.deployment_policy import DeploymentPolicy
from facetrace.store.catalog_models import Source
from facetrace.store.governance_models import AuditEntry, Authorisation, Unit

MONTHS = [f"{m:02d}" for m in range(1, 13)]


class UsageRow(BaseModel):
    """One unit's user's searches in a year."""

    model_config = ConfigDict(frozen=True)

    unit: str
    user: str
    months: dict[str, int] = Field(description="Searches run per month, '01' to '12'.")
    searches: int
    refused: int
    failed: int
    with_authorisation: int
    results_returned: int
    cases: int
    offences: dict[str, int]


def _year_entries(
    session: Session, year: int, unit: str | None, actions: tuple[str, ...]
) -> list[AuditEntry]:
    start, end = datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC)
    query = select(AuditEntry).where(
        AuditEntry.at >= start, AuditEntry.at < end, AuditEntry.action.in_(actions)
    )
    if unit is not None:
        query = query.where(AuditEntry.unit == unit)
    return list(session.scalars(query.order_by(AuditEntry.id)))


def entry_summary(entry: AuditEntry) -> dict[str, Any]:
    """An audit entry as the web pages list it (the probe itself never was in the log)."""
    return {
        "seq": entry.id,
        "at": entry.at.isoformat(timespec="seconds"),
        "user": entry.user_name,
        "unit": entry.unit,
        "action": entry.action,
        "outcome": entry.outcome,
        "case_ref": entry.case_ref,
        "offence": entry.offence,
        "purpose": entry.purpose,
        "authorisation_ref": entry.authorisation_ref,
        "result_count": entry.result_count,
        "details": entry.details or {},
    }


def recent(
    session: Session,
    *,
    actions: tuple[str, ...] = (),
    prefix: str | None = None,
    user: str | None = None,
    unit: str | None = None,
    case_ref: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """The latest entries of some actions (or action prefix), user, unit or case, newest first."""
    query = select(AuditEntry)
    if actions:
        query = query.where(AuditEntry.action.in_(actions))
    if prefix:
        query = query.where(AuditEntry.action.startswith(prefix))
    for column, value in (
        (AuditEntry.user_name, user),
        (AuditEntry.unit, unit),
        (AuditEntry.case_ref, case_ref),
    ):
        if value is not None:
            query = query.where(column == value)
    return [entry_summary(e) for e in session.scalars(query.order_by(AuditEntry.id.desc()).limit(limit))]


def usage(session: Session, year: int, unit: str | None = None) -> list[UsageRow]:
    """One row per unit and user: searches per month that ran, and the refused and failed attempts."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for entry in _year_entries(session, year, unit, ("search",)):
        key = (entry.unit or "—", entry.user_name)
        row = rows.setdefault(
            key,
            {
                "unit": key[0],
                "user": key[1],
                "months": dict.fromkeys(MONTHS, 0),
                "searches": 0,
                "refused": 0,
                "failed": 0,
                "with_authorisation": 0,
                "results_returned": 0,
                "cases": set(),
                "offences": Counter(),
            },
        )
        if entry.outcome == "done":
            row["months"][f"{entry.at.month:02d}"] += 1
            row["searches"] += 1
            row["results_returned"] += entry.result_count or 0
            row["with_authorisation"] += entry.authorisation_ref is not None
            row["cases"].add(entry.case_ref)
            row["offences"][entry.offence or "—"] += 1
        elif entry.outcome in ("refused", "failed"):
            row[entry.outcome] += 1
    return [
        UsageRow(**{**row, "cases": len(row["cases"]), "offences": dict(row["offences"].most_common())})
        for _key, row in sorted(rows.items())
    ]


def annual(session: Session, policy: DeploymentPolicy, year: int, unit: str | None = None) -> dict[str, Any]:
    """The annual usage report: searches by month, outcome, offence and user; authorisations; erasures."""
    searches = _year_entries(session, year, unit, ("search",))
    done = [e for e in searches if e.outcome == "done"]
    decisions = _year_entries(session, year, unit, ("authorisation.decide", "authorisation.external"))
    erasures = _year_entries(session, year, None if unit is None else unit, ("data.erase",))
    chain = audit.verify(session)
    by_month = Counter(f"{e.at.month:02d}" for e in done)
    return {
        "report": "annual usage of post-remote biometric identification (AI Act art. 26(10))",
        "year": year,
        "unit": unit,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "searches": {
            "run": len(done),
            "refused": sum(e.outcome == "refused" for e in searches),
            "failed": sum(e.outcome == "failed" for e in searches),
            "with_authorisation": sum(e.authorisation_ref is not None for e in done),
            "results_returned": sum(e.result_count or 0 for e in done),
            "cases": len({e.case_ref for e in done}),
            "by_month": {month: by_month.get(month, 0) for month in MONTHS},
            "by_offence": dict(Counter(e.offence or "—" for e in done).most_common()),
        },
        "authorisations": dict(Counter(e.outcome for e in decisions)),
        "erasures": {
            "executed": len(erasures),
            "faces_deleted": sum(e.result_count or 0 for e in erasures),
        },
        "usage": [row.model_dump() for row in usage(session, year, unit)],
        "audit_log": {
            "intact": chain.ok,
            "entries": chain.entries,
            "head_seq": chain.head_seq,
            "head_hash": chain.head_hash,
            "first_broken": chain.first_broken,
        },
        "gallery": repository.totals(session),
        "policy": {
            "authorisation_policy": policy.authorisation_policy,
            "searches_per_day": policy.searches_per_day,
            "max_expected_false_matches": policy.max_expected_false_matches,
        },
    }


def records_of_processing(session: Session, policy: DeploymentPolicy) -> dict[str, Any]:
    """GDPR art. 30 records, generated from the catalog and the configuration."""
    stats = {s.name: s for s in repository.source_stats(session)}
    sources = []
    for source in session.scalars(select(Source).order_by(Source.name)):
        counted = stats.get(source.name)
        sources.append(
            {
                "name": source.name,
                "kind": source.kind,
                "jurisdiction": source.jurisdiction,
                "legal_basis": source.legal_basis,
                "retention_days": source.retention_days,
                "blocked": source.blocked_at.isoformat() if source.blocked_at else None,
                "images": counted.images if counted else 0,
                "faces": counted.faces if counted else 0,
            }
        )
    authorised_cases = session.scalar(select(func.count(func.distinct(Authorisation.case_ref)))) or 0
    return {
        "record": "records of processing activities (GDPR art. 30)",
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "purposes": {
            "description": "identification leads in criminal investigations, searched one case at a time "
            "with a purpose record and, by policy, an authorisation",
            "offence_categories": list(policy.offence_categories),
            "authorisation_policy": policy.authorisation_policy,
            "cases_with_authorisations": authorised_cases,
        },
        "categories_of_data_subjects": "people whose face appears in images of the registered sources",
        "categories_of_personal_data": [
            "face templates (biometric data, GDPR art. 9)",
            "face boxes, landmarks and quality scores",
            "where and when each image was seen (path or URL, page URL, first and last seen)",
            "image sha256 and size; the images themselves are not stored",
        ],
        "recipients": sorted(u.name for u in session.scalars(select(Unit))),
        "sources": sources,
        "retention": "per source (retention_days); erasure and jurisdiction purges on request",
        "security_measures": [
            "roles checked in one place; every action and refusal in a hash-chained audit log",
            "argon2 password hashes; API tokens stored as digests, with expiry",
            "probe photos never stored; physical deletion on erasure",
        ],
    }


def usage_chart_svg(report: dict[str, Any]) -> str:
    """Searches per month, one line per user, as an SVG document (drawn without a plotting library)."""
    per_user = {f"{row['user']} ({row['unit']})": list(row["months"].values()) for row in report["usage"]}
    return line_chart_svg(
        f"Searches per month, {report['year']}" + (f", unit {report['unit']}" if report["unit"] else ""),
        ["J", "F", "M", "A", "M", "J", "J", "A", "S", "O", "N", "D"],
        dict(sorted(per_user.items())),
        "searches run",
    )
