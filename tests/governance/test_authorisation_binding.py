"""An authorisation is bound to who may use it: its requester and their unit (or the requester alone),
for its case, until it expires. To anyone else it does not exist: the refusal is word for word the
one an unknown reference gets, and names nothing of it. Supervisors decide their own unit's requests
only, and one of no unit decides nothing. SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from facetrace.core.config import Settings
from facetrace.core.errors import AuthorisationError, NotFoundError, PermissionDeniedError
from facetrace.governance.searches import Purpose
from facetrace.governance.service import Governance
from facetrace.store.engine import alembic_config, create_catalog_engine
from facetrace.store.governance_models import AuditEntry, Authorisation
from facetrace.vision.analyzer import FaceAnalyzer
from support.ingesting import ingest

PASSWORD = "staff-password-for-tests-9Qx"
JUSTIFICATION = "the north unit's kidnapping file: station footage of the suspect"
UNKNOWN = "AUTH-2026-99999"


@pytest.fixture
def people(
    gov_settings: Settings, operator: Governance, tmp_path: Path, astronaut_jpeg: bytes
) -> dict[str, Governance]:
    """The astronaut in the gallery; investigators and supervisors of north and south, and of no unit.
    The deployment requires an authorisation for every search."""
    photo = tmp_path / "photos" / "astronaut.jpg"
    photo.parent.mkdir()
    photo.write_bytes(astronaut_jpeg)
    ingest(gov_settings, [str(photo.parent)], source_name="nasa")
    operator.accounts.add_unit("north")
    operator.accounts.add_unit("south")
    staff = [
        ("ivy", "investigator", "north"),
        ("ian", "investigator", "north"),
        ("sam", "investigator", "south"),
        ("sue", "supervisor", "north"),
        ("sol", "supervisor", "south"),
        ("ned", "investigator", None),
        ("uma", "supervisor", None),
    ]
    for name, role, unit in staff:
        operator.accounts.add_user(name, [role], unit, password=PASSWORD)
    operator.policy.change("authorisation_policy", "required")
    acting = {
        name: Governance.with_password(gov_settings, operator.sessions, name, PASSWORD)
        for name, _, _ in staff
    }
    return acting | {"operator": operator}


def purpose(case_ref: str, reference: str | None) -> Purpose:
    return Purpose(case_ref, "kidnapping", "a lead for the case, from the station's camera", reference)


def granted(people: dict[str, Governance], case_ref: str = "CASE-N1") -> str:
    """An authorisation ivy (north) requested for ``case_ref``, granted by north's supervisor."""
    reference = people["ivy"].authorisations.request(case_ref, JUSTIFICATION)
    people["sue"].authorisations.decide(reference, grant=True, note="necessary and proportionate")
    return reference


def refusal(gov: Governance, analyzer: FaceAnalyzer, probe: bytes, case_ref: str, reference: str) -> str:
    with pytest.raises(AuthorisationError) as refused:
        gov.searches.search(analyzer, probe, purpose(case_ref, reference), k=1)
    return str(refused.value)


@pytest.mark.slow
def test_another_units_investigator_can_neither_use_an_authorisation_nor_learn_of_it(
    people: dict[str, Governance], analyzer: FaceAnalyzer, astronaut_jpeg: bytes
) -> None:
    reference = granted(people)
    used = refusal(people["sam"], analyzer, astronaut_jpeg, "CASE-S7", reference)
    unknown = refusal(people["sam"], analyzer, astronaut_jpeg, "CASE-S7", UNKNOWN)
    assert used.replace(reference, "REF") == unknown.replace(UNKNOWN, "REF")  # no existence oracle
    for secret in ("CASE-N1", JUSTIFICATION, "ivy", "sue", "north"):
        assert secret not in used
    # Even naming north's own case gets nothing more out of it.
    assert refusal(people["sam"], analyzer, astronaut_jpeg, "CASE-N1", reference).replace(
        reference, "REF"
    ) == unknown.replace(UNKNOWN, "REF")

    assert people["ian"].searches.search(analyzer, astronaut_jpeg, purpose("CASE-N1", reference), k=1).hits
    with people["sam"].sessions() as session:
        refused = session.scalars(
            select(AuditEntry).where(AuditEntry.user_name == "sam", AuditEntry.outcome == "refused")
        ).all()
    assert len(refused) == 3 and {e.authorisation_ref for e in refused} == {reference, UNKNOWN}
    assert not any("CASE-N1" in str(e.details) or JUSTIFICATION in str(e.details) for e in refused)


@pytest.mark.slow
def test_in_requester_scope_only_the_requester_searches_on_it(
    people: dict[str, Governance], analyzer: FaceAnalyzer, astronaut_jpeg: bytes
) -> None:
    reference = granted(people)
    people["operator"].policy.change("authorisation_scope", "requester")
    colleague = refusal(people["ian"], analyzer, astronaut_jpeg, "CASE-N1", reference)
    unknown = refusal(people["ian"], analyzer, astronaut_jpeg, "CASE-N1", UNKNOWN)
    assert colleague.replace(reference, "REF") == unknown.replace(UNKNOWN, "REF")
    assert people["ivy"].searches.search(analyzer, astronaut_jpeg, purpose("CASE-N1", reference), k=1).hits


@pytest.mark.slow
def test_an_authorisation_expires_after_the_deployments_validity(
    people: dict[str, Governance], analyzer: FaceAnalyzer, astronaut_jpeg: bytes
) -> None:
    people["operator"].policy.change("authorisation_valid_days", "7")
    reference = granted(people)
    with people["ivy"].sessions.begin() as session:
        row = session.scalars(select(Authorisation).where(Authorisation.reference == reference)).one()
        assert row.expires_at is not None and row.decided_at is not None
        assert row.expires_at - row.decided_at == timedelta(days=7)
        session.execute(
            update(Authorisation)
            .where(Authorisation.id == row.id)
            .values(expires_at=datetime.now(UTC) - timedelta(minutes=1))
        )
    assert "expired" in refusal(people["ivy"], analyzer, astronaut_jpeg, "CASE-N1", reference)


@pytest.mark.slow
def test_an_external_authorisation_runs_from_the_authoritys_decision(
    people: dict[str, Governance], analyzer: FaceAnalyzer, astronaut_jpeg: bytes
) -> None:
    long_ago = datetime.now(UTC) - timedelta(days=31)  # validity: 30 days by default
    old = people["sue"].authorisations.record_external("CASE-N2", "Tribunal", "JLD-1", long_ago)
    recent = people["sue"].authorisations.record_external("CASE-N2", "Tribunal", "JLD-2", datetime.now(UTC))
    assert "expired" in refusal(people["ivy"], analyzer, astronaut_jpeg, "CASE-N2", old)
    assert people["ivy"].searches.search(analyzer, astronaut_jpeg, purpose("CASE-N2", recent), k=1).hits
    unknown = refusal(people["sam"], analyzer, astronaut_jpeg, "CASE-N2", UNKNOWN)
    assert refusal(people["sam"], analyzer, astronaut_jpeg, "CASE-N2", recent).replace(
        recent, "REF"
    ) == unknown.replace(UNKNOWN, "REF")


@pytest.mark.slow
def test_a_supervisor_of_another_unit_gets_the_answer_an_unknown_reference_gets(
    people: dict[str, Governance],
) -> None:
    reference = people["ivy"].authorisations.request("CASE-N1", JUSTIFICATION)
    with pytest.raises(NotFoundError) as other_unit:
        people["sol"].authorisations.decide(reference, grant=True, note=None)
    with pytest.raises(NotFoundError) as unknown:
        people["sol"].authorisations.decide(UNKNOWN, grant=True, note=None)
    assert str(other_unit.value).replace(reference, "REF") == str(unknown.value).replace(UNKNOWN, "REF")
    assert "north" not in str(other_unit.value) and "ivy" not in str(other_unit.value)
    with people["sol"].sessions() as session:
        denied = session.scalars(
            select(AuditEntry).where(
                AuditEntry.action == "authorisation.decide", AuditEntry.user_name == "sol"
            )
        ).all()
    assert [e.outcome for e in denied] == ["denied", "denied"]
    assert people["sol"].authorisations.listing() == []  # nor does south's list show it
    assert [a.reference for a in people["sue"].authorisations.listing()] == [reference]


@pytest.mark.slow
def test_supervisors_of_no_unit_decide_nothing(people: dict[str, Governance]) -> None:
    """Two users without a unit are not of one unit: the one cannot decide the other's request."""
    reference = people["ned"].authorisations.request("CASE-X1", "an investigator who belongs to no unit")
    with pytest.raises(PermissionDeniedError, match="no unit"):
        people["uma"].authorisations.decide(reference, grant=True, note=None)
    with pytest.raises(PermissionDeniedError, match="no unit"):
        people["uma"].authorisations.record_external("CASE-X1", "Tribunal", "JLD-3", datetime.now(UTC))
    assert people["uma"].authorisations.listing() == []
    with people["uma"].sessions() as session:
        row = session.scalars(select(Authorisation).where(Authorisation.reference == reference)).one()
        assert row.status == "requested"
        denied = session.scalars(
            select(AuditEntry).where(AuditEntry.user_name == "uma", AuditEntry.outcome == "denied")
        ).all()
    assert {e.action for e in denied} == {"authorisation.decide", "authorisation.external"}


@pytest.mark.empty_catalog
def test_existing_authorisations_get_their_units_id_and_an_expiry_when_migrated(
    gov_settings: Settings,
) -> None:
    """Authorisations from before the binding: bound to their unit (the oldest of units typed twice)
    and, when granted, valid for 30 days from their decision; the case results that name them stay."""
    engine = create_catalog_engine(gov_settings.catalog_url)
    config = alembic_config(engine)

    def upgrade(revision: str) -> None:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, revision)

    upgrade("0013")
    decided = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO units (id, name, created_at) VALUES (1, 'North', :at), (2, 'north ', :at)"),
            {"at": decided},
        )
        for number, (unit, status) in enumerate(
            [("north", "granted"), ("North", "requested"), (None, "granted")], 1
        ):
            connection.execute(
                text(
                    "INSERT INTO authorisations (id, reference, case_ref, unit, requested_by, requested_at, "
                    "justification, status, decided_at) "
                    "VALUES (:id, :ref, 'C', :unit, 'ivy', :at, 'why', :status, :decided)"
                ),
                {
                    "id": number,
                    "ref": f"AUTH-{number}",
                    "unit": unit,
                    "at": decided,
                    "status": status,
                    "decided": decided if status == "granted" else None,
                },
            )
        connection.execute(
            text(
                "INSERT INTO case_results (id, audit_seq, user_name, case_ref, authorisation_id, created_at) "
                "VALUES (1, 1, 'ivy', 'C', 1, :at)"
            ),
            {"at": decided},
        )
    upgrade("0014")
    with Session(engine) as session:
        rows = session.scalars(select(Authorisation).order_by(Authorisation.id)).all()
        assert [row.unit_id for row in rows] == [1, 1, None]
        expiry = decided + timedelta(days=30)
        assert [row.expires_at for row in rows] == [expiry, None, expiry]
        assert session.scalar(text("SELECT authorisation_id FROM case_results")) == 1
    engine.dispose()
