"""Authorisations (AI Act art. 26(10)): request, decision by the unit's supervisor, the policy at search
time, and results deleted when an urgent search's authorisation is refused. SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from facetrace.core.config import Settings
from facetrace.core.errors import AuthorisationError, FacetraceError, NotFoundError, PermissionDeniedError
from facetrace.governance.searches import Purpose
from facetrace.governance.service import Governance
from facetrace.store.governance_models import AuditEntry, Authorisation, CaseResult
from facetrace.vision.analyzer import FaceAnalyzer
from support.ingesting import ingest

#: Every test user's password (long enough, and in no list of common passwords).
PASSWORD = "staff-password-for-tests-9Qx"


@pytest.fixture
def unit(gov_settings: Settings, operator: Governance, tmp_path: Path, astronaut_jpeg: bytes) -> dict:
    """A gallery with the astronaut; investigators and a supervisor in unit north, one in south."""
    photo = tmp_path / "photos" / "astronaut.jpg"
    photo.parent.mkdir()
    photo.write_bytes(astronaut_jpeg)
    ingest(gov_settings, [str(photo.parent)], source_name="nasa")
    for unit_name in ("north", "south"):
        operator.accounts.add_unit(unit_name)
    for name, role, unit_name in [
        ("ivy", "investigator", "north"),
        ("ian", "investigator", "north"),
        ("sue", "supervisor", "north"),
        ("sol", "supervisor", "south"),
    ]:
        operator.accounts.add_user(name, [role], unit_name, password=PASSWORD)
    return {"probe": astronaut_jpeg, "operator": operator}


def acting(settings: Settings, unit: dict, name: str, **policy: str) -> Governance:
    """``name``'s governance layer, after the admin set ``policy`` in the catalog (the environment
    of a process no longer sets it)."""
    for setting, value in policy.items():
        unit["operator"].policy.change(setting, value)
    return Governance.with_password(settings, unit["operator"].sessions, name, PASSWORD)


def purpose(reference: str | None) -> Purpose:
    return Purpose("CASE-9", "kidnapping", "the child seen with the suspect at the station", reference)


def test_required_policy_needs_a_granted_authorisation_for_the_case(
    gov_settings: Settings, unit: dict, analyzer: FaceAnalyzer
) -> None:
    ivy = acting(gov_settings, unit, "ivy", authorisation_policy="required")
    with pytest.raises(AuthorisationError, match="requires an authorisation"):
        ivy.searches.search(analyzer, unit["probe"], purpose(None), k=1)
    reference = ivy.authorisations.request("CASE-9", "urgent kidnapping case, camera footage")
    with pytest.raises(AuthorisationError, match="still pending"):
        ivy.searches.search(analyzer, unit["probe"], purpose(reference), k=1)

    with pytest.raises(NotFoundError, match="of your unit"):
        acting(gov_settings, unit, "sol").authorisations.decide(reference, grant=True, note=None)
    with pytest.raises(PermissionDeniedError):  # an investigator cannot decide at all
        acting(gov_settings, unit, "ian").authorisations.decide(reference, grant=True, note=None)
    acting(gov_settings, unit, "sue").authorisations.decide(reference, grant=True, note="proportionate")

    assert ivy.searches.search(analyzer, unit["probe"], purpose(reference), k=1).hits
    other_case = Purpose("CASE-10", "kidnapping", "another case altogether, same reference", reference)
    with pytest.raises(AuthorisationError, match="given for case 'CASE-9'"):
        ivy.searches.search(analyzer, unit["probe"], other_case, k=1)
    with ivy.sessions() as session:
        refusals = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "search", AuditEntry.outcome == "refused")
        ).all()
        assert len(refusals) == 3 and all("authorisation" in e.details for e in refusals)


def test_nobody_decides_their_own_request(gov_settings: Settings, operator: Governance) -> None:
    operator.accounts.add_unit("north")
    operator.accounts.add_user("sid", ["supervisor", "investigator"], "north", password=PASSWORD)
    sid = Governance.with_password(gov_settings, operator.sessions, "sid", PASSWORD)
    reference = sid.authorisations.request("CASE-1", "a supervisor who also investigates")
    with pytest.raises(PermissionDeniedError, match="their own request"):
        sid.authorisations.decide(reference, grant=True, note=None)


def test_urgent_search_results_are_deleted_when_the_authorisation_is_refused(
    gov_settings: Settings, unit: dict, analyzer: FaceAnalyzer
) -> None:
    ivy = acting(gov_settings, unit, "ivy", authorisation_policy="urgent")
    reference = ivy.authorisations.request("CASE-9", "urgent: a child missing since this morning")
    assert ivy.searches.search(analyzer, unit["probe"], purpose(reference), k=1).hits  # pending, within 48 h
    with ivy.sessions() as session:
        kept = session.scalars(select(CaseResult)).one()
        assert kept.results and kept.results[0]["score"] > 0.99

    with pytest.raises(FacetraceError, match="reason"):
        acting(gov_settings, unit, "sue").authorisations.decide(reference, grant=False, note="")
    deleted = acting(gov_settings, unit, "sue").authorisations.decide(
        reference, grant=False, note="not necessary"
    )
    assert deleted == 1
    with ivy.sessions() as session:
        kept = session.scalars(select(CaseResult)).one()
        assert kept.results is None and kept.deleted_reason == f"authorisation {reference} refused"
        attempts = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "authorisation.decide").order_by(AuditEntry.id)
        ).all()
        assert [a.outcome for a in attempts] == ["denied", "refused"]  # the refusal without a reason too
        assert "reason" in attempts[0].details["error"]
        assert attempts[1].details["search_results_deleted"] == 1
    with pytest.raises(AuthorisationError, match="was refused"):
        ivy.searches.search(analyzer, unit["probe"], purpose(reference), k=1)


def test_a_pending_request_older_than_the_grace_period_is_not_enough(
    gov_settings: Settings, unit: dict, analyzer: FaceAnalyzer
) -> None:
    ivy = acting(gov_settings, unit, "ivy", authorisation_policy="urgent")
    reference = ivy.authorisations.request("CASE-9", "urgent: a child missing since this morning")
    with ivy.sessions.begin() as session:
        session.execute(update(Authorisation).values(requested_at=datetime.now(UTC) - timedelta(hours=49)))
    with pytest.raises(AuthorisationError, match="still pending"):
        ivy.searches.search(analyzer, unit["probe"], purpose(reference), k=1)


def test_external_authorisation_and_who_sees_what(
    gov_settings: Settings, unit: dict, analyzer: FaceAnalyzer
) -> None:
    sue = acting(gov_settings, unit, "sue")
    decided_on = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    made = sue.authorisations.record_external(
        "CASE-9", "Tribunal judiciaire de Lille", "JLD-2026-114", decided_on
    )
    ivy = acting(gov_settings, unit, "ivy", authorisation_policy="required")
    assert ivy.searches.search(analyzer, unit["probe"], purpose(made), k=1).hits
    ivy.authorisations.request("CASE-11", "a second case of the north unit")
    assert {a.reference for a in ivy.authorisations.listing()} == {"AUTH-2026-00002"} or len(
        ivy.authorisations.listing()
    ) == 1
    assert len(sue.authorisations.listing()) == 2  # the unit's
    assert acting(gov_settings, unit, "sol").authorisations.listing() == []  # another unit's
    assert [a.case_ref for a in sue.authorisations.listing(pending_only=True)] == ["CASE-11"]
