"""Real 'facetrace serve' processes on a free port, with the environment they run in."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import httpx
import numpy as np
import pytest

from support.api import ADMIN_PASSWORD
from support.photos import distinct_photos

#: Seconds a job's heartbeat may be old before its process counts as dead (30 by default).
LEASE_S = "2"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def token_of(url: str, name: str, password: str) -> str:
    login = httpx.post(f"{url}/api/v1/auth/token", data={"username": name, "password": password})
    assert login.status_code == 200, login.text
    return login.json()["access_token"]


@contextmanager
def facetrace_serve(
    environment: dict[str, str], log: Path
) -> Iterator[tuple[subprocess.Popen, httpx.Client]]:
    """``facetrace serve`` in a process group of its own, and a client logged in as its admin; the
    group is killed at the end (whatever the test did to the server itself)."""
    port = free_port()
    with log.open("a") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "facetrace", "serve", "--port", str(port)],
            stdout=output,
            stderr=subprocess.STDOUT,
            env=environment,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120  # a guard against a hang, not a measurement
        while True:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            try:
                if httpx.get(f"{url}/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        headers = {"Authorization": f"Bearer {token_of(url, 'admin', ADMIN_PASSWORD)}"}
        with httpx.Client(base_url=url, headers=headers) as admin:
            yield process, admin
    finally:
        with suppress(ProcessLookupError):  # the group is gone once the server and its workers are
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def poll(read: Callable[[], dict], until: Callable[[dict], bool]) -> dict:
    """Read until ``until`` holds (a generous deadline only guards against a hang)."""
    deadline = time.monotonic() + 180
    while not until(found := read()):
        assert time.monotonic() < deadline, found
        time.sleep(0.05)
    return found


@pytest.fixture
def environment(tmp_path: Path, astronaut_rgb: np.ndarray) -> dict[str, str]:
    """A server's environment: a fresh data folder, an import folder holding ``IMAGES`` portraits."""
    distinct_photos(tmp_path / "imports", astronaut_rgb)
    return os.environ | {
        "FACETRACE_DATA_DIR": str(tmp_path / "var"),
        "FACETRACE_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "FACETRACE_IMPORT_DIR": str(tmp_path / "imports"),
        "FACETRACE_WORKERS": "1",
        "FACETRACE_JOB_LEASE_S": LEASE_S,
    }
