"""The command line goes through the same door as the API: every command is one governance call,
checked and audited; what it writes is its user's alone; /metrics wants a token.

The ``facetrace`` command run in-process (``support.cli_runner``) on a real data folder (SQLite, or
PostgreSQL under ``--catalog postgres``).
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from facetrace.core.atomic import atomic_write_text
from facetrace.core.config import Settings
from facetrace.core.private_files import secret
from facetrace.store.engine import open_catalog
from support.api import ADMIN_PASSWORD, assert_problem, serving_api
from support.catalogs import catalog_rows
from support.cli_runner import facetrace

LEGAL = ("--legal-basis", "Art. 6(1)(e) GDPR, press archive", "--jurisdiction", "FR")


def ok(data_dir: Path, *arguments: str) -> str:
    done = facetrace(data_dir, *arguments)
    assert done.returncode == 0, (arguments, done.stderr)
    return done.stdout


def audit_trail(data_dir: Path, tmp_path: Path) -> list[dict]:
    export = tmp_path / "audit.json"
    ok(data_dir, "audit", "export", "-o", str(export))
    return json.loads(export.read_text())["entries"]


def test_ingest_into_an_unregistered_source_is_refused_and_audited(
    tmp_path: Path, photo_folder: Path
) -> None:
    data_dir = tmp_path / "var"
    refused = facetrace(data_dir, "ingest", str(photo_folder), "--source", "scraped", "--workers", "1")
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    message = " ".join(refused.stderr.split())  # Rich wraps lines at the terminal's width
    assert "no source named 'scraped'" in message and "facetrace source add scraped" in message
    settings = Settings(data_dir=data_dir)
    assert catalog_rows(settings, "SELECT name FROM sources") == []  # nothing was registered
    assert catalog_rows(settings, "SELECT count(*) FROM images") == [(0,)]
    [attempt] = [e for e in audit_trail(data_dir, tmp_path) if e["action"] == "sources.manage"]
    assert attempt["outcome"] == "failed" and attempt["details"]["command"] == "ingest"
    assert attempt["details"]["source"] == "scraped" and "facetrace source add" in attempt["details"]["error"]


def test_stats_reindex_and_ingest_are_governance_calls_with_audit_entries(
    tmp_path: Path, photo_folder: Path
) -> None:
    data_dir = tmp_path / "var"
    ok(data_dir, "source", "add", "press", *LEGAL, "--retention-days", "30")
    ok(data_dir, "ingest", str(photo_folder), "--source", "press", "--workers", "1")
    stats = json.loads(ok(data_dir, "stats", "--json"))
    assert (stats["images"], stats["faces"]) == (2, 1)
    assert stats["sources"][0]["legal_basis"] == "Art. 6(1)(e) GDPR, press archive"
    assert "with 1 faces" in ok(data_dir, "reindex")

    # The first command also seeded the deployment's policy.
    trail = [(e["action"], e["outcome"], e["details"]) for e in audit_trail(data_dir, tmp_path)]
    assert trail[0][:2] == ("policy.seed", "done")
    trail = trail[1:]
    assert [(action, outcome) for action, outcome, _ in trail[:5]] == [
        ("sources.add", "done"),
        ("ingest.started", "done"),  # written before the first image is stored
        ("sources.manage", "done"),
        ("stats.view", "done"),
        ("sources.manage", "done"),
    ]
    began, ingested, viewed, reindexed = (details for _, _, details in trail[1:5])
    assert (began["source"], began["paths"], began["job"]) == ("press", [str(photo_folder)], ingested["job"])
    assert (ingested["command"], ingested["source"], ingested["faces"]) == ("ingest", "press", 1)
    assert ingested["faces_dropped_do_not_collect"] == 0
    assert viewed == {"faces": 1, "images": 2}
    assert (reindexed["command"], reindexed["faces"], reindexed["kind"]) == ("reindex", 1, "flat")


def modes(root: Path) -> dict[str, str]:
    """Every file and folder under ``root`` (itself included) whose mode lets anyone else in."""
    found = [root, *root.rglob("*")]
    return {str(p): oct(stat.S_IMODE(p.stat().st_mode)) for p in found if p.stat().st_mode & 0o077}


def test_everything_written_to_the_data_folder_is_its_owners_alone(
    tmp_path: Path, photo_folder: Path, astronaut_jpeg: bytes
) -> None:
    data_dir = tmp_path / "var"
    ok(data_dir, "source", "add", "press", *LEGAL)
    ok(data_dir, "ingest", str(photo_folder), "--source", "press", "--workers", "1")
    ok(data_dir, "ingest", str(photo_folder), "--source", "press", "--demo", "--workers", "1")
    (tmp_path / "probe.jpg").write_bytes(astronaut_jpeg)
    assert "RR-" in ok(data_dir, "rights", "file", "access", "--photo", str(tmp_path / "probe.jpg"))
    [request] = json.loads(ok(data_dir, "rights", "list", "--json"))
    ok(data_dir, "rights", "verify", request["reference"])
    ok(data_dir, "rights", "execute", request["reference"])
    erased = str(photo_folder / "astronaut.jpg")
    certificate = json.loads(ok(data_dir, "erase", "--url", erased, "--execute", "--reason", "request RR-9"))
    ok(data_dir, "report", "annual", "-o", str(data_dir / "reports" / "annual"))
    ok(data_dir, "reindex")

    written = {p.relative_to(data_dir).parts[0] for p in data_dir.rglob("*") if p.is_file()}
    assert {"certificates", "index", "erasure.key", "demo"} <= written
    assert modes(data_dir) == {}

    reference = certificate["certificate"]
    covered = facetrace(data_dir, "erasure", "check", reference, erased)
    assert covered.returncode == 0 and "the images seen there were erased" in " ".join(covered.stdout.split())
    elsewhere = facetrace(data_dir, "erasure", "check", reference, str(photo_folder / "coffee.png"))
    assert elsewhere.returncode == 1 and "does not cover" in elsewhere.stdout


def test_metrics_need_a_token_that_may_read_them(tmp_path: Path) -> None:
    """Anonymous scrapes are refused; a monitoring server gets a service account of role monitor,
    which reads the metrics and nothing else."""
    settings = Settings(data_dir=tmp_path / "var", workers=1, admin_password=ADMIN_PASSWORD)
    with serving_api(settings) as api:
        anonymous = httpx.get(f"{api.url}/metrics")
        assert_problem(anonymous, 401, "/problems/authentication")
        assert "facetrace_gallery" not in anonymous.text
        name, investigator = api.new_user("investigator")
        denied = investigator.get("/metrics")
        assert "metrics.read" in assert_problem(denied, 403, "/problems/permission-denied")["detail"]

        admin = api.admin
        bot = {"name": "prometheus", "roles": ["monitor"], "service": True}
        assert admin.post("/api/v1/users", json=bot).status_code == 201
        issued = admin.post("/api/v1/users/prometheus/tokens", json={"name": "scrape", "days": 365})
        prometheus = api.client(issued.json()["token"])
        scraped = prometheus.get("/metrics")
        assert scraped.status_code == 200 and 'facetrace_gallery{kind="faces"} 0.0' in scraped.text
        assert_problem(prometheus.get("/api/v1/sources"), 403, "/problems/permission-denied")
        trail = api.as_role("auditor").get("/api/v1/audit/export").json()["entries"]
    reads = [(e["user_name"], e["outcome"]) for e in trail if e["action"] == "metrics.read"]
    assert reads == [(name, "denied"), ("prometheus", "done")]


@pytest.mark.sqlite_only("creates a SQLite catalog of its own to check the files SQLite makes")
def test_files_are_private_whatever_the_process_umask(tmp_path: Path) -> None:
    """What Facetrace writes itself sets its modes: a library caller that never set the umask still
    gets private files and folders (atomic writes: index files, certificates, reports; key files;
    the SQLite catalog, whose write-ahead log and shared memory take the database file's mode)."""
    previous = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "certificates" / "ERASURE-1.json", "{}")
        key = secret(tmp_path / "keys" / "erasure.key")
        sessions = open_catalog(f"sqlite:///{tmp_path / 'catalog' / 'catalog.db'}")
        with sessions() as session:
            session.execute(text("SELECT count(*) FROM sources"))
            assert {p.name for p in (tmp_path / "catalog").iterdir()} >= {"catalog.db-wal", "catalog.db-shm"}
            assert modes(tmp_path) == {}
    finally:
        os.umask(previous)
    assert len(key) == 64 and secret(tmp_path / "keys" / "erasure.key") == key  # created once
