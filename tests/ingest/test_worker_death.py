"""Worker processes die with their parent: ``kill -9`` of ``facetrace serve`` in the middle of a
folder import leaves no analysis worker behind (each would hold the models, hundreds of MiB, and
wait for ever for work from a server that is gone)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import psutil
import pytest

from facetrace.core.config import Settings
from support.catalogs import images_in_catalog
from support.server_processes import facetrace_serve, poll

WORKERS = 2
#: How long the kernel (or a worker's watch on its parent) may take; only a guard against a hang.
GRACE_S = 30


@pytest.mark.slow
def test_the_workers_of_a_killed_server_die_with_it(tmp_path: Path, environment: dict[str, str]) -> None:
    settings = Settings(data_dir=tmp_path / "var")
    with facetrace_serve(environment | {"FACETRACE_WORKERS": str(WORKERS)}, tmp_path / "server.log") as (
        server,
        admin,
    ):
        source = {"name": "archive", "legal_basis": "own press archive", "jurisdiction": "FR"}
        assert admin.post("/api/v1/sources", json=source).status_code == 201
        started = admin.post("/api/v1/jobs", json={"kind": "import", "source": "archive", "folder": "."})
        assert started.status_code == 202, started.text
        poll(lambda: {"images": images_in_catalog(settings)}, lambda seen: seen["images"] >= 1)
        workers = psutil.Process(server.pid).children(recursive=True)
        assert len(workers) >= WORKERS, workers
        os.kill(server.pid, signal.SIGKILL)  # the server alone, not its process group
        server.wait()
    _, alive = psutil.wait_procs(workers, timeout=GRACE_S)
    for survivor in alive:  # leave nothing running, whatever the outcome
        survivor.kill()
    assert alive == []
