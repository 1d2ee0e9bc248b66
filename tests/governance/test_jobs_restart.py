"""Jobs outlive their process: ``kill -9`` of ``facetrace serve`` in the middle of a folder import
(or of ``facetrace ingest``) leaves the job in the catalog; the next server (or ``facetrace jobs``)
marks it interrupted with an audit entry that names it, and every image it stored is accounted for
by the entry it wrote when it started. Running it again resumes it.

The servers run as real processes on a free port, with a short job lease so that a dead server's
heartbeat goes stale quickly.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from facetrace.core.config import Settings
from facetrace.store.catalog_models import Sighting
from facetrace.store.engine import open_catalog
from support.api import USER_PASSWORD
from support.catalogs import images_in_catalog
from support.cli import facetrace
from support.photos import IMAGES
from support.server_processes import LEASE_S, facetrace_serve, poll, token_of


def auditor_token(admin: httpx.Client) -> str:
    """The token of a new auditor, whom the admin created."""
    person = {"name": "audrey", "roles": ["auditor"], "unit": None, "password": USER_PASSWORD}
    assert admin.post("/api/v1/users", json=person).status_code == 201
    return token_of(str(admin.base_url), "audrey", USER_PASSWORD)


def audit_trail(data_dir: Path, tmp_path: Path, token: str | None = None) -> list[dict]:
    export = tmp_path / "audit.json"
    done = facetrace(data_dir, "audit", "export", "-o", str(export), token=token)
    assert done.returncode == 0, done.stderr
    return json.loads(export.read_text())["entries"]


def sightings_since(settings: Settings, when: datetime) -> tuple[int, int]:
    """The sightings in the catalog: all of them, and those first seen at ``when`` or later."""
    with open_catalog(settings.catalog_url)() as session:
        total = session.scalar(select(func.count(Sighting.id)))
        later = session.scalar(select(func.count(Sighting.id)).where(Sighting.first_seen >= when))
    return total or 0, later or 0


@pytest.mark.slow
def test_an_import_killed_with_its_server_is_interrupted_named_accounted_for_and_resumes(
    tmp_path: Path, environment: dict[str, str]
) -> None:
    data_dir = tmp_path / "var"
    settings = Settings(data_dir=data_dir)
    log = tmp_path / "server.log"
    with facetrace_serve(environment, log) as (server, admin):
        source = {"name": "archive", "legal_basis": "own press archive", "jurisdiction": "FR"}
        assert admin.post("/api/v1/sources", json=source).status_code == 201
        started = admin.post("/api/v1/jobs", json={"kind": "import", "source": "archive", "folder": "."})
        assert started.status_code == 202, started.text
        job_id = started.json()["id"]
        poll(lambda: {"images": images_in_catalog(settings)}, lambda seen: seen["images"] >= 3)
        os.kill(server.pid, signal.SIGKILL)  # the server alone: its workers are another matter
        server.wait()
    stored = images_in_catalog(settings)
    assert 3 <= stored < IMAGES, "the kill should land in the middle of the import"

    with facetrace_serve(environment, log) as (_, admin):
        job = poll(lambda: admin.get(f"/api/v1/jobs/{job_id}").json(), lambda j: j["state"] == "interrupted")
        assert (job["kind"], job["source"], job["folder"], job["started_by"]) == (
            "import",
            "archive",
            ".",
            "admin",
        )
        assert job["finished_at"] is not None and "interrupted" in job["error"]
        assert [j["id"] for j in admin.get("/api/v1/jobs").json()] == [job_id]

        # `facetrace jobs` shows it too, from the catalog.
        token = admin.headers["Authorization"].removeprefix("Bearer ")
        listed = facetrace(data_dir, "jobs", "--json", token=token)
        assert listed.returncode == 0, listed.stderr
        [shown] = json.loads(listed.stdout)
        assert (shown["id"], shown["state"], shown["source"]) == (job_id, "interrupted", "archive")
        assert "interrupted" in facetrace(data_dir, "jobs", token=token).stdout

        # The entry written when it started precedes every image it stored; the interrupted entry names
        # the job and that entry, and counts those images exactly.
        auditor = auditor_token(admin)
        trail = audit_trail(data_dir, tmp_path, auditor)
        [begun] = [e for e in trail if e["action"] == "import.started"]
        assert (begun["user_name"], begun["details"]["job"], begun["details"]["source"]) == (
            "admin",
            job_id,
            "archive",
        )
        assert begun["details"]["folder"] == "." and begun["id"] == job["started_entry"]
        [ended] = [e for e in trail if e["action"] == "jobs.interrupted"]
        assert ended["details"]["job"] == job_id and ended["details"]["started_entry"] == begun["id"]
        assert ended["details"]["source"] == "archive" and ended["id"] > begun["id"]
        total, accounted = sightings_since(settings, datetime.fromisoformat(begun["at"]))
        assert total == accounted == stored == ended["details"]["sightings_added"]
        verified = facetrace(data_dir, "audit", "verify", token=auditor)
        assert verified.returncode == 0 and "audit log intact" in verified.stdout

        # Running it again resumes: what was stored is not analysed twice, the rest comes in.
        again = admin.post("/api/v1/jobs", json={"kind": "import", "source": "archive", "folder": "."})
        done = poll(
            lambda: admin.get(f"/api/v1/jobs/{again.json()['id']}").json(),
            lambda j: j["state"] in ("done", "failed", "cancelled", "interrupted"),
        )
        assert done["state"] == "done", done
        assert done["progress"]["new_images"] == IMAGES - stored
        assert admin.get("/api/v1/sources/archive").json()["sightings"] == IMAGES


@pytest.mark.slow
def test_a_killed_ingest_command_is_shown_interrupted_by_facetrace_jobs(
    tmp_path: Path, environment: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = tmp_path / "var"
    settings = Settings(data_dir=data_dir)
    legal = ["--legal-basis", "Art. 6(1)(e) GDPR, test archive", "--jurisdiction", "FR"]
    assert facetrace(data_dir, "source", "add", "crops", *legal).returncode == 0
    process = subprocess.Popen(
        [sys.executable, "-m", "facetrace", "ingest", str(tmp_path / "imports"), "--source", "crops"],
        env=environment,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        poll(lambda: {"images": images_in_catalog(settings)}, lambda seen: seen["images"] >= 3)
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # the command and its workers, mid-flight
        process.wait()

    def listed() -> dict:
        done = facetrace(data_dir, "jobs", "--json")  # as a user runs it: the default, long lease
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)[0]

    assert listed()["state"] == "running"  # its heartbeat is younger than the default lease
    monkeypatch.setenv("FACETRACE_JOB_LEASE_S", LEASE_S)
    job = poll(listed, lambda j: j["state"] == "interrupted")
    assert (job["kind"], job["source"], job["started_by"]) == ("ingest", "crops", "operator")
    trail = audit_trail(data_dir, tmp_path)
    [begun] = [e for e in trail if e["action"] == "ingest.started"]
    [ended] = [e for e in trail if e["action"] == "jobs.interrupted"]
    assert begun["details"]["job"] == ended["details"]["job"] == job["id"]
    assert ended["details"]["sightings_added"] == images_in_catalog(settings)
    assert facetrace(data_dir, "audit", "verify").returncode == 0


@pytest.mark.slow
def test_a_server_told_to_stop_marks_its_running_import_interrupted(
    tmp_path: Path, environment: dict[str, str]
) -> None:
    data_dir = tmp_path / "var"
    settings = Settings(data_dir=data_dir)
    log = tmp_path / "server.log"
    with facetrace_serve(environment, log) as (server, admin):
        source = {"name": "archive", "legal_basis": "own press archive", "jurisdiction": "FR"}
        assert admin.post("/api/v1/sources", json=source).status_code == 201
        order = {"kind": "import", "source": "archive", "folder": "."}
        running, queued = (admin.post("/api/v1/jobs", json=order).json()["id"] for _ in range(2))
        poll(lambda: {"images": images_in_catalog(settings)}, lambda seen: seen["images"] >= 3)
        server.terminate()  # SIGTERM: uvicorn shuts down gracefully
        server.wait()
    assert "Application shutdown complete" in log.read_text()

    with facetrace_serve(environment, log) as (_, admin):
        jobs = {j["id"]: j for j in admin.get("/api/v1/jobs").json()}
        assert jobs[running]["state"] == jobs[queued]["state"] == "interrupted"
        assert jobs[running]["error"] == "interrupted: the server stopped"
        assert jobs[queued]["error"] == "interrupted: the server stopped before it ran"
        assert jobs[queued]["started_at"] is None and jobs[queued]["started_entry"] is None
        trail = audit_trail(data_dir, tmp_path, auditor_token(admin))
    interrupted = [e["details"] for e in trail if e["action"] == "jobs.interrupted"]
    assert [(d["job"], d["reason"]) for d in interrupted] == [
        (running, "the server stopped"),
        (queued, "the server stopped before it ran"),
    ]
    assert interrupted[0]["sightings_added"] == images_in_catalog(settings) < IMAGES
    [closing] = [e["details"] for e in trail if e["action"] == "sources.manage"]
    assert (closing["job"], closing["stopped"]) == (running, True)
