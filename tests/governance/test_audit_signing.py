"""The audit log against someone who can write the database: forged, edited, deleted and cut-off
entries with a correctly recomputed sha256 chain and head, a key of their own slipped into the
catalog; key rotation; anchors; exports checked offline with the public key alone; and numbers
that are not finite, refused everywhere an entry could pick them up.

Every attack is done with plain SQL on the database (SQLite and PostgreSQL: ``gov_settings``),
the way an insider with database access would, never through Facetrace.
"""

from __future__ import annotations

import json
import math
import os
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import SecretStr

from facetrace.core.config import Settings
from facetrace.core.errors import AuditWriteError, PermissionDeniedError
from facetrace.governance import audit, audit_keys, signing
from facetrace.governance.audit_format import entry_hash, entry_message
from facetrace.governance.service import Governance
from support.api import ADMIN_PASSWORD, assert_problem, serving_api

Tamper = Callable[..., None]


def fill(gov: Governance, count: int) -> None:
    for number in range(count):
        gov.record(audit.Record(action="test", case_ref=f"C-{number}", details={"n": number}))


def logged(gov: Governance) -> list[dict[str, Any]]:
    """Every entry as the database holds it, in order."""
    with gov.sessions() as session:
        return list(audit._entries(session))


def literal(value: Any) -> str:
    """A value as an SQL literal that SQLite and PostgreSQL both read into the column's type."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list | dict):
        value = json.dumps(value)
    return "'" + str(value).replace("'", "''") + "'"


def stored_at(value: str) -> str:
    """An export's timestamp (…Z) in the form both databases take for a timestamp column."""
    return value.replace("T", " ").rstrip("Z")


def insert(values: dict[str, Any]) -> str:
    columns = list(audit.FIELDS)
    row = {**values, "at": stored_at(values["at"])}
    return (
        f"INSERT INTO audit_entries ({', '.join(columns)}) "
        f"VALUES ({', '.join(literal(row[name]) for name in columns)})"
    )


def rechained(entries: list[dict[str, Any]], prev: str) -> list[dict[str, Any]]:
    """The entries with prev_hash and hash recomputed in order, as a forger would (signatures kept)."""
    result = []
    for values in entries:
        values = {**values, "prev_hash": prev}
        values["hash"] = entry_hash(values)
        prev = values["hash"]
        result.append(values)
    return result


def update(old_id: int, values: dict[str, Any]) -> str:
    changed = ", ".join(
        f"{name} = {literal(stored_at(values[name]) if name == 'at' else values[name])}"
        for name in audit.FIELDS
    )
    return f"UPDATE audit_entries SET {changed} WHERE id = {old_id}"


def set_head(values: dict[str, Any]) -> str:
    return f"UPDATE audit_head SET seq = {values['id']}, hash = '{values['hash']}' WHERE id = 1"


def broken(gov: Governance, **options: Any) -> audit.ChainReport:
    report = gov.audit.verify(**options)
    assert not report.ok, report
    return report


# --- tampering with the database -----------------------------------------------------------------


@pytest.mark.parametrize("signature", ["none", "copied"])
def test_a_forged_entry_appended_with_a_valid_chain_and_head_is_detected(
    operator: Governance, tamper: Tamper, signature: str
) -> None:
    """A "supervisor granted" entry, correctly chained, the head moved on to it."""
    fill(operator, 4)
    last = logged(operator)[-1]
    forged = {
        **last,
        "id": last["id"] + 1,
        "user_name": "sue",
        "roles": "supervisor",
        "unit": "north",
        "action": "authorisation.decide",
        "outcome": "done",
        "case_ref": "C-FORGED",
        "details": {"decision": "granted", "reference": "AUTH-FORGED"},
        "prev_hash": last["hash"],
    }
    forged["hash"] = entry_hash(forged)
    if signature == "none":
        forged["key_id"] = forged["signature"] = None
    tamper(insert(forged), set_head(forged))
    report = broken(operator)
    assert report.first_broken == forged["id"]
    expected = "not signed" if signature == "none" else "signature does not match its content"
    assert report.problem and expected in report.problem


def test_an_edited_entry_with_the_chain_recomputed_is_detected(operator: Governance, tamper: Tamper) -> None:
    fill(operator, 6)
    entries = logged(operator)
    edited = rechained([{**entries[2], "case_ref": "C-OTHER"}, *entries[3:]], entries[1]["hash"])
    tamper(*(update(values["id"], values) for values in edited), set_head(edited[-1]))
    report = broken(operator)
    assert report.first_broken == 3
    assert report.problem == "its signature does not match its content"


def test_a_deleted_entry_with_the_chain_recomputed_after_it_is_detected(
    operator: Governance, tamper: Tamper
) -> None:
    fill(operator, 6)
    entries = logged(operator)
    # Entry 3 goes; 4, 5, … become 3, 4, … with links and hashes recomputed.
    renumbered = rechained([{**v, "id": v["id"] - 1} for v in entries[3:]], entries[1]["hash"])
    statements = ["DELETE FROM audit_entries WHERE id = 3"]
    statements += [update(old["id"], new) for old, new in zip(entries[3:], renumbered, strict=True)]
    tamper(*statements, set_head(renumbered[-1]))
    report = broken(operator)
    assert report.first_broken == 3
    assert report.problem == "its signature does not match its content"


def test_a_cut_off_tail_with_the_head_rewound_is_caught_by_an_anchor(
    operator: Governance, tamper: Tamper, tmp_path: Path
) -> None:
    fill(operator, 4)
    anchor = operator.audit.anchor().model_dump()  # kept elsewhere by the DPO
    fill(operator, 2)
    entries = logged(operator)
    kept = [v for v in entries if v["id"] < anchor["seq"] - 1]
    tamper(f"DELETE FROM audit_entries WHERE id > {kept[-1]['id']}", set_head(kept[-1]))
    report = broken(operator, anchor=audit.read_anchor(anchor))
    assert report.first_broken == kept[-1]["id"] + 1
    assert report.problem and "entries were cut off" in report.problem
    # Without the anchor nothing shows it: what is left is a sound, signed log.
    assert operator.audit.verify().ok


def test_an_anchor_also_catches_a_rewritten_entry_and_must_be_signed(
    operator: Governance, tmp_path: Path
) -> None:
    fill(operator, 3)
    anchor = operator.audit.anchor().model_dump()
    assert operator.audit.verify(anchor=anchor).anchor_seq == anchor["seq"]
    other = {**anchor, "hash": logged(operator)[0]["hash"]}  # pins another hash: no longer its signature
    report = broken(operator, anchor=other)
    assert report.problem == "the anchor's signature does not match its content"
    forger = signing.SigningKey.generate()
    self_signed = {**anchor, "key_id": forger.key_id}
    self_signed["signature"] = forger.sign(b"anything")
    assert "not trusted" in (broken(operator, anchor=self_signed).problem or "")


def test_a_public_key_row_an_attacker_inserts_is_not_trusted(operator: Governance, tamper: Tamper) -> None:
    fill(operator, 3)
    genuine = operator.audit.public_keys().signing_key.key_id
    forger = signing.SigningKey.generate()
    last = logged(operator)[-1]
    forged = {**last, "id": last["id"] + 1, "case_ref": "C-FORGED", "prev_hash": last["hash"]}
    forged["hash"] = entry_hash(forged)
    forged["key_id"] = forger.key_id
    forged["signature"] = forger.sign(entry_message(forged["id"], forged["hash"]))
    public = signing.public_to_text(forger.public)
    tamper(
        f"INSERT INTO audit_keys (key_id, public_key, created_at, first_seq) "
        f"VALUES ('{forger.key_id}', '{public}', '2026-01-01 00:00:00', 1)",
        insert(forged),
        set_head(forged),
    )
    report = broken(operator)
    assert report.first_broken == forged["id"]
    assert report.problem == (
        f"it is signed by key {forger.key_id[:16]}, which is not trusted (trusted: {genuine[:16]})"
    )
    assert report.trusted_keys == (genuine,)
    # Listed (the catalog is where it was put), never trusted.
    assert forger.key_id in {key.key_id for key in operator.audit.public_keys().keys}


# --- keys: the file, rotation, the public key ----------------------------------------------------------


def test_the_key_file_is_the_owners_alone_and_a_lost_one_is_not_replaced(
    gov_settings: Settings, operator: Governance
) -> None:
    path = gov_settings.audit_key_path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    fill(operator, 1)
    path.unlink()
    with pytest.raises(AuditWriteError, match=r"key file .* is missing: restore it"):
        Governance.open(gov_settings)
    assert not path.exists()


def test_rotation_keeps_old_entries_verifiable_and_is_audited(
    gov_settings: Settings, operator: Governance
) -> None:
    fill(operator, 3)
    first_pem = operator.audit.public_keys().signing_key.pem
    rotated = operator.audit.rotate_key()
    fill(operator, 3)
    assert signing.SigningKey.read(gov_settings.audit_key_path).key_id == rotated.new_key_id
    assert stat.S_IMODE(gov_settings.audit_key_path.stat().st_mode) == 0o600
    report = operator.audit.verify()
    assert report.ok and report.signed == report.entries
    assert set(report.trusted_keys) == {rotated.old_key_id, rotated.new_key_id}
    # Whoever kept only the first public key checks the whole log too: the rotation links them.
    old_only = signing.read_public_keys(first_pem.encode())
    assert operator.audit.verify(public_keys=old_only).ok
    entry = next(v for v in logged(operator) if v["action"] == "audit.rotate_key")
    assert (entry["id"], entry["user_name"], entry["key_id"]) == (
        rotated.seq,
        "operator",
        rotated.old_key_id,
    )
    keys = {key.key_id: key for key in operator.audit.public_keys().keys}
    assert (keys[rotated.old_key_id].last_seq, keys[rotated.new_key_id].first_seq) == (
        rotated.seq,
        rotated.seq + 1,
    )


def test_a_rotation_stopped_before_its_key_was_moved_in_is_completed_at_the_next_start(
    gov_settings: Settings, operator: Governance
) -> None:
    path = gov_settings.audit_key_path
    old_key = path.read_bytes()
    rotated = operator.audit.rotate_key()
    # As if the process died between committing the rotation entry and moving the new key in.
    path.replace(audit_keys.staged_path(path))
    path.write_bytes(old_key)
    again = Governance.open(gov_settings)
    fill(again, 1)
    assert signing.SigningKey.read(path).key_id == rotated.new_key_id
    assert not audit_keys.staged_path(path).exists()
    assert again.audit.verify().ok


def test_an_old_key_cannot_sign_after_its_rotation(operator: Governance, tamper: Tamper) -> None:
    """Whoever kept a copy of the retired private key cannot add entries in the new key's range."""
    old = signing.SigningKey.read(operator.settings.audit_key_path)
    operator.audit.rotate_key()
    fill(operator, 1)
    last = logged(operator)[-1]
    forged = {**last, "id": last["id"] + 1, "case_ref": "C-LATE", "prev_hash": last["hash"]}
    forged["hash"] = entry_hash(forged)
    forged["key_id"], forged["signature"] = old.key_id, old.sign(entry_message(forged["id"], forged["hash"]))
    tamper(insert(forged), set_head(forged))
    report = broken(operator)
    assert report.first_broken == forged["id"] and "outside the entries that key signs" in (
        report.problem or ""
    )


def test_only_an_admin_rotates_and_auditors_get_the_public_key(
    gov_settings: Settings, operator: Governance
) -> None:
    operator.accounts.add_user("aud", ["auditor"], None, "an auditor's long passphrase")
    auditor = Governance.with_password(gov_settings, operator.sessions, "aud", "an auditor's long passphrase")
    with pytest.raises(PermissionDeniedError):
        auditor.audit.rotate_key()
    published = auditor.audit.public_keys().signing_key
    assert signing.read_public_keys(published.pem.encode())[0].public_bytes_raw() == (
        signing.SigningKey.read(gov_settings.audit_key_path).public.public_bytes_raw()
    )


# --- exports, offline -----------------------------------------------------------------------------------


def _facetrace(settings: Settings, *arguments: str) -> subprocess.CompletedProcess[str]:
    environment = dict(os.environ)
    if settings.database_url:
        environment["FACETRACE_DATABASE_URL"] = settings.database_url
    return subprocess.run(
        [sys.executable, "-m", "facetrace", "--data-dir", str(settings.data_dir), *arguments],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=environment,
    )


@pytest.mark.slow
def test_an_export_is_verified_offline_with_only_the_public_key(
    gov_settings: Settings, operator: Governance, tmp_path: Path
) -> None:
    fill(operator, 3)
    operator.audit.rotate_key()
    fill(operator, 2)
    export, public, anchor = tmp_path / "export.json", tmp_path / "audit.pem", tmp_path / "anchor.json"
    for arguments in (
        ("anchor", "--out", str(anchor)),
        ("export", "-o", str(export)),
        ("public-key", "-o", str(public)),
    ):
        done = _facetrace(gov_settings, "audit", *arguments)
        assert done.returncode == 0, done.stderr
    offline = tmp_path / "offline"  # no catalog, no key file: the export and the public key
    offline.mkdir()
    checked = subprocess.run(
        [
            *(sys.executable, "-m", "facetrace", "--data-dir", str(offline / "var"), "audit", "verify"),
            *("--export", str(export), "--public-key", str(public)),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "audit log intact" in checked.stdout and "Trusted keys (the given public key(s))" in checked.stdout
    assert not (offline / "var").exists()

    document = json.loads(export.read_text())
    keys = signing.read_public_keys(public.read_bytes())
    anchored = audit.read_anchor(json.loads(anchor.read_text()))
    assert audit.check_export(document, keys, anchored).anchor_seq == anchored["seq"]
    # Rewritten in the export, chain recomputed: the signatures give it away.
    entries = document["entries"]
    entries[1:] = rechained([{**entries[1], "purpose": "rewritten"}, *entries[2:]], entries[0]["hash"])
    report = audit.check_export(document, keys)
    assert not report.ok and report.first_broken == 2
    # A whole export re-signed with another key passes only the check that trusts the export's own keys.
    forger = signing.SigningKey.generate()
    for values in entries:
        values["key_id"] = forger.key_id
        values["signature"] = forger.sign(entry_message(values["id"], values["hash"]))
    document["keys"] = [{"key_id": forger.key_id, "public_key": signing.public_to_text(forger.public)}]
    document["rotations"] = []
    self_checked = audit.check_export(document)
    assert self_checked.ok and self_checked.note == audit.UNTRUSTED_KEYS_NOTE
    report = audit.check_export(document, keys)
    assert not report.ok and report.problem and "not trusted" in report.problem
    # An export that stops before the anchored entry was cut short.
    short = json.loads(export.read_text())
    short["entries"] = short["entries"][:-2]
    report = audit.check_export(short, keys, anchored)
    assert not report.ok and "cut off" in (report.problem or "")


def test_a_units_extract_is_checked_entry_by_entry(gov_settings: Settings, operator: Governance) -> None:
    fill(operator, 4)
    with operator.sessions() as session:
        document = audit.export(session, unit=None)
        extract = {**document, "unit": "north", "entries": document["entries"][::2]}
    keys = [signing.SigningKey.read(gov_settings.audit_key_path).public]
    assert audit.check_export(extract, keys).ok
    extract["entries"][0]["signature"] = extract["entries"][1]["signature"]
    assert not audit.check_export(extract, keys).ok


# --- legacy entries -------------------------------------------------------------------------------------


def test_entries_from_before_signing_are_sealed_at_the_next_start(
    gov_settings: Settings, operator: Governance, tamper: Tamper
) -> None:
    fill(operator, 3)
    # The catalog as the migration leaves one written before signing: no signature, no key.
    tamper(
        "UPDATE audit_entries SET key_id = NULL, signature = NULL",
        "UPDATE audit_head SET key_id = NULL",
        "DELETE FROM audit_keys",
    )
    gov_settings.audit_key_path.unlink()
    again = Governance.open(gov_settings)
    entries = logged(again)
    seal = next(v for v in entries if v["signature"] is not None)
    assert seal["action"] == "audit.sealed"
    assert seal["details"]["unsigned_entries"] == seal["id"] - 1
    assert seal["details"]["their_head_hash"] == seal["prev_hash"]
    assert again.audit.verify().ok
    # An unsigned entry rewritten, and the unsigned chain recomputed: the signed seal no longer links.
    old = entries[: seal["id"] - 1]
    rewritten = rechained([{**old[0], "case_ref": "C-OTHER"}, *old[1:]], audit.GENESIS)
    tamper(*(update(v["id"], v) for v in rewritten))
    report = broken(again)
    assert report.first_broken == seal["id"] and report.problem == "does not link to the entry before it"


def test_a_forged_log_stripped_of_its_signatures_is_not_sealed_by_the_next_start(
    gov_settings: Settings, operator: Governance, tamper: Tamper
) -> None:
    """The insider rewrites a signed entry, strips every signature, recomputes the chain and clears
    the head's key, so that the log looks like one kept before signing. The key file was there all
    along: the next start must not seal the forgery with the genuine key."""
    fill(operator, 4)
    entries = logged(operator)
    forged = rechained(
        [
            {**v, "key_id": None, "signature": None}
            for v in [{**entries[0], "case_ref": "C-OTHER"}, *entries[1:]]
        ],
        audit.GENESIS,
    )
    tamper(
        *(update(v["id"], v) for v in forged),
        "UPDATE audit_entries SET key_id = NULL, signature = NULL",
        set_head(forged[-1]),
        "UPDATE audit_head SET key_id = NULL",
    )
    again = Governance.open(gov_settings)  # a new process: the key file already exists
    assert all(v["action"] != "audit.sealed" for v in logged(again))
    assert broken(again).problem == "no entry is signed"
    fill(again, 1)  # and once the log goes on, signed, the next entry is no seal
    assert "not the entry that sealed them" in (broken(again).problem or "")


# --- numbers that are not finite ------------------------------------------------------------------------


@pytest.mark.parametrize("number", [math.nan, math.inf, -math.inf])
def test_the_canonical_json_refuses_numbers_that_are_not_finite(operator: Governance, number: float) -> None:
    fill(operator, 1)
    before = operator.audit.verify()
    with pytest.raises(AuditWriteError, match="not finite"):
        operator.record(audit.Record(action="test", details={"score": number}))
    after = operator.audit.verify()
    assert after.ok and after.head_seq == before.head_seq + 1  # only the verification itself


def test_the_api_refuses_numbers_that_are_not_finite_and_serves_keys_and_anchors(
    gov_settings: Settings, astronaut_jpeg: bytes
) -> None:
    settings = gov_settings.model_copy(update={"admin_password": SecretStr(ADMIN_PASSWORD)})
    with serving_api(settings) as api:
        investigator = api.as_role("investigator")
        for number in ("nan", "inf", "-Infinity"):
            response = investigator.post(
                "/api/v1/search",
                data={
                    "case_ref": "C-1",
                    "offence": "homicide",
                    "justification": "a lead",
                    "min_score": number,
                },
                files={"photo": ("probe.jpg", astronaut_jpeg, "image/jpeg")},
            )
            problem = assert_problem(response, 422)
            assert "finite number" in json.dumps(problem)
        for number in ("NaN", "Infinity"):
            response = api.admin.post(
                "/api/v1/sources",
                content=(
                    '{"name": "s", "kind": "website", "legal_basis": "x", "jurisdiction": "FR", '
                    f'"seeds": ["https://news.example/"], "rate_per_s": {number}}}'
                ),
                headers={"content-type": "application/json"},
            )
            assert "finite number" in json.dumps(assert_problem(response, 422))

        auditor = api.as_role("auditor")
        keys = auditor.get("/api/v1/audit/public-key")
        assert keys.status_code == 200, keys.text
        anchor = auditor.get("/api/v1/audit/anchor")
        assert anchor.status_code == 200, anchor.text
        assert_problem(investigator.get("/api/v1/audit/anchor"), 403, "/problems/permission-denied")
        export = auditor.get("/api/v1/audit/export").json()
        public: list[Ed25519PublicKey] = signing.read_public_keys(keys.json()["signing_key"]["pem"].encode())
        report = audit.check_export(export, public, audit.read_anchor(anchor.json()))
        assert report.ok and report.anchor_seq == anchor.json()["seq"], report


def test_the_cli_refuses_numbers_that_are_not_finite(gov_settings: Settings, tmp_path: Path) -> None:
    photo = tmp_path / "probe.jpg"
    photo.write_bytes(b"not even read")
    done = _facetrace(gov_settings, "search", str(photo), "--min-score", "nan")
    assert done.returncode == 2 and "nan is not a finite number" in done.stderr
    done = _facetrace(
        gov_settings, "source", "add", "s", "--legal-basis", "x", "--jurisdiction", "FR", "--rate", "inf"
    )
    assert done.returncode == 2 and "inf is not a finite number" in done.stderr
