"""Starting background jobs over the API and waiting for them to finish."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx


def wait_for(client: httpx.Client, job_id: int, until: Callable[[dict], bool]) -> dict:
    """Poll the job until ``until`` holds (a generous deadline only guards against a hang)."""
    deadline = time.monotonic() + 180
    while True:
        job = client.get(f"/api/v1/jobs/{job_id}").json()
        if until(job):
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.05)


def finished(job: dict) -> bool:
    return job["state"] in ("done", "failed", "cancelled")


def add_local_source(admin: httpx.Client, name: str = "archive") -> None:
    source = {"name": name, "kind": "local", "legal_basis": "own press archive", "jurisdiction": "FR"}
    assert admin.post("/api/v1/sources", json=source).status_code == 201


def start_import(admin: httpx.Client, folder: str, source: str = "archive") -> httpx.Response:
    return admin.post("/api/v1/jobs", json={"kind": "import", "source": source, "folder": folder})
