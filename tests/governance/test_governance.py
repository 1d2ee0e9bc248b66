"""The accountability layer on a real database: roles, accounts, searches with a purpose, the audit chain.

Every test runs on SQLite and on a throwaway PostgreSQL cluster (``postgres`` marker): see the
``gov_settings`` fixture in support/catalogs.py.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from facetrace.core.config import Settings
from facetrace.core.errors import (
    AuditWriteError,
    AuthenticationError,
    NoFaceError,
    PermissionDeniedError,
    PurposeError,
    QuotaError,
)
from facetrace.governance import accounts, audit
from facetrace.governance.erasure import ErasureScope
from facetrace.governance.roles import ALLOWED, Action, Role
from facetrace.governance.searches import Purpose
from facetrace.governance.service import Governance
from facetrace.store.governance_models import AuditEntry
from facetrace.vision.analyzer import FaceAnalyzer
from support.api import USER_PASSWORD, staff_token
from support.ingesting import ingest

PURPOSE = Purpose("CASE-2026-117", "homicide", "the suspect filmed at the station on 3 May")


def as_user(
    settings: Settings, admin: Governance, name: str, roles: list[str], unit: str | None
) -> Governance:
    return Governance.open(settings, staff_token(settings, admin, name, roles, unit))


def entries(gov: Governance) -> list[AuditEntry]:
    with gov.sessions() as session:
        return list(session.scalars(select(AuditEntry).order_by(AuditEntry.id)))


@pytest.fixture
def astronaut_gallery(gov_settings: Settings, tmp_path: Path, astronaut_jpeg: bytes) -> Path:
    photo = tmp_path / "photos" / "astronaut.jpg"
    photo.parent.mkdir()
    photo.write_bytes(astronaut_jpeg)
    ingest(gov_settings, [str(photo.parent)], source_name="nasa", jurisdiction="US")
    return photo


# --- who may do what ------------------------------------------------------------------------------


def _attempts(gov: Governance, analyzer: FaceAnalyzer, probe: bytes) -> dict[Action, Callable[[], object]]:
    """One real call per action."""

    def manage_sources() -> None:
        with gov.action(Action.MANAGE_SOURCES, command="reindex"):
            pass

    return {
        Action.SEARCH: lambda: gov.searches.search(analyzer, probe, PURPOSE, k=1),
        Action.MANAGE_SOURCES: manage_sources,
        Action.MANAGE_USERS: lambda: gov.accounts.users(),
        Action.READ_AUDIT: lambda: gov.audit.verify(),
        Action.VIEW_STATS: lambda: gov.gallery.stats(),
        Action.READ_METRICS: lambda: gov.gallery.read_metrics(),
        Action.ERASE: lambda: gov.erasure.plan(ErasureScope(sources=("nasa",))),
        Action.CONFIGURE: lambda: gov.allow(Action.CONFIGURE),
        Action.VIEW_REPORTS: lambda: gov.reports.usage(2026),
        Action.VIEW_RECORDS: lambda: gov.reports.records_of_processing(),
        Action.HANDLE_RIGHTS: lambda: gov.rights.queue(),
        Action.FILE_RIGHTS_REQUEST: lambda: gov.rights.file("access", urls=["https://x.example/a.jpg"]),
        Action.REQUEST_AUTHORISATION: lambda: gov.authorisations.request(
            "CASE-1", "a justification in words"
        ),
        Action.DECIDE_AUTHORISATION: lambda: gov.authorisations.record_external(
            "CASE-1", "a court", "REF-1", datetime(2026, 1, 1, tzinfo=UTC)
        ),
    }


def test_the_matrix_covers_every_action(
    gov_settings: Settings, operator: Governance, analyzer: FaceAnalyzer
) -> None:
    assert set(_attempts(operator, analyzer, b"")) == set(Action)


@pytest.mark.slow
def test_role_action_matrix(
    gov_settings: Settings, operator: Governance, analyzer: FaceAnalyzer, astronaut_gallery: Path
) -> None:
    probe = astronaut_gallery.read_bytes()
    for role in Role:
        gov = as_user(gov_settings, operator, f"user-{role}", [role.value], "unit-a")
        for action, attempt in _attempts(gov, analyzer, probe).items():
            before = len(entries(operator))
            if role in ALLOWED[action]:
                attempt()
            else:
                with pytest.raises(PermissionDeniedError, match="recorded in the audit log"):
                    attempt()
                denial = entries(operator)[before]
                assert (denial.user_name, denial.action, denial.outcome) == (
                    f"user-{role}",
                    action.value,
                    "denied",
                )
                assert (denial.roles, denial.unit, denial.bootstrap) == (role.value, "unit-a", False)
    assert audit.verify(operator.sessions()).ok


def test_bootstrap_operator_is_marked_and_can_be_disabled(gov_settings: Settings) -> None:
    gov = Governance.open(gov_settings)
    assert gov.actor.bootstrap and gov.actor.roles == frozenset(Role) - {Role.PUBLIC}
    gov.record(audit.Record(action="test"))
    assert entries(gov)[-1].bootstrap is True
    assert gov.accounts.users() == []  # a command-line identity, not an account: nothing was created
    with pytest.raises(AuthenticationError, match="bootstrap operator is off"):
        Governance.open(gov_settings.model_copy(update={"allow_bootstrap": False}))


# --- accounts ---------------------------------------------------------------------------------------


@pytest.mark.no_catalog
def test_a_deployment_hashes_passwords_with_the_recommended_argon2id_cost() -> None:
    """The tests hash cheaply (support/hashing.py); a real process must not."""
    script = "from facetrace.governance import passwords; print(passwords.hash_password('x'))"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.startswith("$argon2id$v=19$m=65536,t=3,p=4$"), done.stdout


def test_passwords_are_argon2_hashed(operator: Governance) -> None:
    operator.accounts.add_unit("privacy")
    operator.accounts.add_user("dana", ["dpo"], "privacy", password="correct horse battery staple")
    with operator.sessions.begin() as session:
        user = accounts.user_named(session, "dana")
        assert user.password_hash and user.password_hash.startswith("$argon2id$")
        assert "correct horse" not in user.password_hash
    assert accounts.check_password(operator.sessions, "dana", "correct horse battery staple").name == "dana"
    with pytest.raises(AuthenticationError):
        accounts.check_password(operator.sessions, "dana", "wrong")
    with pytest.raises(AuthenticationError):
        accounts.check_password(operator.sessions, "nobody", "wrong")


def test_tokens_are_stored_hashed_expire_and_can_be_revoked(
    gov_settings: Settings, operator: Governance
) -> None:
    staff_token(gov_settings, operator, "ivy", ["investigator"], "north")
    ivy = Governance.with_password(gov_settings, operator.sessions, "ivy", USER_PASSWORD)
    issued = ivy.accounts.issue_token("ivy", "laptop", 30)
    assert Governance.open(gov_settings, issued.token).actor.name == "ivy"
    with operator.sessions() as session:
        stored = session.execute(text("SELECT token_sha256 FROM api_tokens")).scalars().all()
    assert hashlib.sha256(issued.token.encode()).hexdigest() in stored
    if gov_settings.database_url is None:
        assert issued.token.encode() not in (gov_settings.data_dir / "facetrace.db").read_bytes()

    with pytest.raises(AuthenticationError, match="unknown token"):
        Governance.open(gov_settings, issued.token + "x")
    ivy = Governance.open(gov_settings, issued.token)
    with pytest.raises(PermissionDeniedError):  # nobody gets another person's token
        ivy.accounts.issue_token("operator", "stolen", 1)
    ivy.accounts.revoke_token(issued.id)  # one's own: allowed
    with pytest.raises(AuthenticationError, match="revoked"):
        Governance.open(gov_settings, issued.token)

    expired = ivy.accounts.issue_token("ivy", "old", 1)
    with operator.sessions.begin() as session:
        session.execute(
            text("UPDATE api_tokens SET expires_at = created_at WHERE id = :id"), {"id": expired.id}
        )
    with pytest.raises(AuthenticationError, match="expired"):
        Governance.open(gov_settings, expired.token)


# --- searches that can be accounted for ---------------------------------------------------------------


def test_a_search_needs_a_purpose_and_the_refusal_is_audited(
    operator: Governance, analyzer: FaceAnalyzer, astronaut_gallery: Path
) -> None:
    probe = astronaut_gallery.read_bytes()
    for purpose, missing in [
        (Purpose(None, None, None), "case reference"),
        (Purpose("C-1", "shoplifting", "a long enough justification"), "not 'shoplifting'"),
        (Purpose("C-1", "homicide", "because"), "justification of at least 10"),
    ]:
        with pytest.raises(PurposeError, match=missing):
            operator.searches.search(analyzer, probe, purpose, k=3)
        refused = entries(operator)[-1]
        assert (refused.action, refused.outcome) == ("search", "refused")
        assert refused.probe_sha256 == hashlib.sha256(probe).hexdigest()
        assert refused.result_count is None


def test_a_search_is_recorded_with_its_purpose_and_results_never_the_probe(
    gov_settings: Settings, operator: Governance, analyzer: FaceAnalyzer, astronaut_gallery: Path
) -> None:
    probe = astronaut_gallery.read_bytes()
    outcome = operator.searches.search(analyzer, probe, PURPOSE, k=3)
    assert outcome.hits and outcome.hits[0].score > 0.99
    entry = entries(operator)[-1]
    assert (entry.action, entry.outcome, entry.case_ref, entry.offence, entry.purpose) == (
        "search",
        "done",
        PURPOSE.case_ref,
        PURPOSE.offence,
        PURPOSE.justification,
    )
    assert entry.probe_sha256 == hashlib.sha256(probe).hexdigest()
    assert entry.result_count == len(outcome.hits)
    assert entry.result_face_ids == [hit.face.id for hit in outcome.hits]
    assert entry.user_name == "operator" and entry.bootstrap


def test_a_search_with_no_face_is_recorded_too(
    operator: Governance, analyzer: FaceAnalyzer, astronaut_gallery: Path, coffee_png: bytes
) -> None:
    with pytest.raises(NoFaceError):
        operator.searches.search(analyzer, coffee_png, PURPOSE, k=3)
    last = entries(operator)[-1]
    assert (last.action, last.outcome, last.details) == (
        "search",
        "failed",
        {"error": "no face found in the probe image"},
    )


def test_no_audit_entry_no_results(
    gov_settings: Settings, operator: Governance, analyzer: FaceAnalyzer, astronaut_gallery: Path
) -> None:
    """If the audit entry cannot be written (here: the database refuses it), the search returns nothing."""
    with operator.sessions.begin() as session:
        if session.bind.dialect.name == "sqlite":  # type: ignore[union-attr]
            session.execute(
                text(
                    "CREATE TRIGGER refuse BEFORE INSERT ON audit_entries "
                    "BEGIN SELECT RAISE(ABORT, 'disk full'); END"
                )
            )
        else:
            session.execute(
                text(
                    "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
                    "$$ BEGIN RAISE EXCEPTION 'disk full'; END $$"
                )
            )
            session.execute(
                text("CREATE TRIGGER refuse BEFORE INSERT ON audit_entries EXECUTE FUNCTION refuse()")
            )
    with pytest.raises(AuditWriteError, match="returns nothing"):
        operator.searches.search(analyzer, astronaut_gallery.read_bytes(), PURPOSE, k=3)


# --- the chain ------------------------------------------------------------------------------------------


def _fill(gov: Governance, count: int = 6) -> None:
    for number in range(count):
        gov.record(audit.Record(action="test", case_ref=f"C-{number}", details={"n": number}))


def test_the_log_is_append_only_in_the_database(operator: Governance) -> None:
    _fill(operator, 2)
    for statement in ("UPDATE audit_entries SET purpose = 'x'", "DELETE FROM audit_entries"):
        with pytest.raises(DBAPIError, match="append-only"), operator.sessions.begin() as session:
            session.execute(text(statement))
    assert audit.verify(operator.sessions()).ok


@pytest.mark.parametrize(
    ("statements", "first_broken", "problem"),
    [
        (["UPDATE audit_entries SET case_ref = 'C-X' WHERE id = 3"], 3, "content was changed"),
        (["UPDATE audit_entries SET result_face_ids = '[1]' WHERE id = 4"], 4, "content was changed"),
        (["DELETE FROM audit_entries WHERE id = 3"], 3, "entry 3 missing"),
        # Reorder: entries 2 and 5 swap places (their sequence numbers are exchanged).
        (
            [
                "UPDATE audit_entries SET id = 1000 WHERE id = 2",
                "UPDATE audit_entries SET id = 2 WHERE id = 5",
                "UPDATE audit_entries SET id = 5 WHERE id = 1000",
            ],
            2,
            "does not link",
        ),
        # Cut off the tail: the chain that is left is sound, but it ends before the head (entry 7:
        # opening the new deployment seeded its policy, entry 1, before the six of ``_fill``).
        (["DELETE FROM audit_entries WHERE id >= 5"], 5, "head records entry 7"),
    ],
    ids=["edit-purpose", "edit-results", "delete", "reorder", "truncate"],
)
def test_tampering_is_detected(
    operator: Governance, tamper: Callable[..., None], statements: list[str], first_broken: int, problem: str
) -> None:
    _fill(operator)
    assert audit.verify(operator.sessions()).ok
    tamper(*statements)
    report = audit.verify(operator.sessions())
    assert not report.ok
    assert report.first_broken == first_broken
    assert report.problem and problem in report.problem


def test_a_forged_entry_inserted_with_a_valid_hash_is_detected(
    operator: Governance,
) -> None:
    """Someone who knows the algorithm appends a well-formed entry without going through Facetrace."""
    _fill(operator, 3)
    last = entries(operator)[-1]
    with operator.sessions.begin() as session:  # an INSERT, not through audit.append: the head stays
        forged = AuditEntry(
            **{**audit.entry_dict(last), "id": last.id + 1, "at": last.at, "case_ref": "FORGED"}
        )
        forged.prev_hash = last.hash
        forged.hash = audit.entry_hash(audit.entry_dict(forged))
        session.add(forged)
    report = audit.verify(operator.sessions())
    assert not report.ok and report.first_broken == last.id + 1
    # Its signature, copied from the entry before, does not sign this content.
    assert report.problem == "its signature does not match its content"


def test_export_carries_the_head_and_can_be_checked_outside(operator: Governance, tmp_path: Path) -> None:
    _fill(operator)
    document = operator.audit.export(first=3).document()
    assert document["entries"][0]["id"] == 3
    assert document["prev_hash"] == entries(operator)[1].hash
    path = tmp_path / "export.json"
    path.write_text(json.dumps(document))
    assert audit.check_export(json.loads(path.read_text())).ok
    document["entries"][1]["purpose"] = "rewritten"
    report = audit.check_export(document)
    assert not report.ok and report.first_broken == 4


def test_a_supervisor_exports_their_own_unit_only(gov_settings: Settings, operator: Governance) -> None:
    north = as_user(gov_settings, operator, "ivy", ["investigator"], "north")
    south = as_user(gov_settings, operator, "sam", ["investigator"], "south")
    north.record(audit.Record(action="test", case_ref="N-1"))
    south.record(audit.Record(action="test", case_ref="S-1"))
    supervisor = as_user(gov_settings, operator, "sue", ["supervisor"], "north")
    document = supervisor.audit.export().document()
    assert {e["unit"] for e in document["entries"]} == {"north"}
    assert "N-1" in {e["case_ref"] for e in document["entries"]}
    assert audit.check_export(document).ok
    auditor = as_user(gov_settings, operator, "aud", ["auditor"], None)
    assert {e["unit"] for e in auditor.audit.export().entries} >= {"north", "south", None}


def test_daily_quota_refuses_and_a_burst_raises_an_alarm(
    gov_settings: Settings, analyzer: FaceAnalyzer, astronaut_gallery: Path
) -> None:
    limited = gov_settings.model_copy(update={"searches_per_day": 3, "burst_searches_per_hour": 2})
    gov = Governance.open(limited)
    probe = astronaut_gallery.read_bytes()
    for _ in range(3):
        gov.searches.search(analyzer, probe, PURPOSE, k=1)
    alarms = [e for e in entries(gov) if e.action == "alarm.burst"]
    assert (
        len(alarms) == 1 and alarms[0].outcome == "flagged" and alarms[0].details["searches_last_hour"] == 3
    )
    with pytest.raises(QuotaError, match="daily quota of 3"):
        gov.searches.search(analyzer, probe, PURPOSE, k=1)
    refused = entries(gov)[-1]
    assert (refused.action, refused.outcome) == ("search", "refused") and "quota" in refused.details


def _append_many(settings: Settings, count: int) -> None:
    gov = Governance.open(settings)
    for number in range(count):
        gov.record(audit.Record(action="test", details={"n": number}))


@pytest.mark.slow
def test_concurrent_appenders_keep_one_unbroken_chain(gov_settings: Settings, operator: Governance) -> None:
    """Four processes append at once: every entry links to the one before, none is lost."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    before = audit.verify(operator.sessions()).entries
    workers = [context.Process(target=_append_many, args=(gov_settings, 25)) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)
        assert worker.exitcode == 0
    report = audit.verify(operator.sessions())
    assert report.ok and report.entries == before + 100
