"""Crawl jobs over the API, against a real website served on 127.0.0.1 and a real server.

The site is a chain of pages, one distinct portrait each. One image is held back behind a gate
the test opens, so a crawl is caught while it runs: its progress is read, it is cancelled (or
another job waits behind it), and it resumes from its frontier afterwards.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from email.message import Message
from pathlib import Path

import httpx
import numpy as np
import pytest

from facetrace.core.config import Settings
from facetrace.governance.roles import Role
from support.api import ADMIN_PASSWORD, Api, assert_problem, serving_api
from support.cli import facetrace
from support.jobs import finished, wait_for
from support.photos import encode
from support.sites import SiteResponse, serve
from support.trickling_site import trickling_site

PAGES = 10
#: The image held back. The ingest keeps up to four images in flight per worker before it stores
#: the first, so with one worker at least GATED - 4 images are stored while the crawl waits here.
GATED = 6


class ChainSite:
    """/page/0 → /page/1 → …, each with its own portrait; /img/GATED.jpg waits for ``gate``."""

    def __init__(self, astronaut: np.ndarray) -> None:
        self.gate = threading.Event()
        self.requests: Counter[str] = Counter()
        self.photos = {
            f"/img/{n}.jpg": encode(np.ascontiguousarray(astronaut[n * 4 : 400 + n * 4, n * 4 :]), "JPEG")
            for n in range(PAGES)
        }

    def respond(self, path: str, _headers: Message) -> SiteResponse:
        self.requests[path] += 1
        if path == f"/img/{GATED}.jpg":
            self.gate.wait()
        if path in self.photos:
            return 200, {"content-type": "image/jpeg"}, self.photos[path]
        if path.startswith("/page/"):
            number = int(path.removeprefix("/page/"))
            follow = f'<a href="/page/{number + 1}">next</a>' if number + 1 < PAGES else ""
            body = f'<html><body><img src="/img/{number}.jpg">{follow}</body></html>'
            return 200, {"content-type": "text/html"}, body.encode()
        return 404, {"content-type": "text/plain"}, b""


@pytest.fixture
def site(astronaut_rgb: np.ndarray) -> Iterator[tuple[str, ChainSite]]:
    content = ChainSite(astronaut_rgb)
    with serve(content.respond) as base:
        try:
            yield base, content
        finally:
            content.gate.set()  # a crawl still waiting finishes, so the server can stop


@pytest.fixture
def api(tmp_path: Path, site: tuple[str, ChainSite]) -> Iterator[Api]:
    settings = Settings(data_dir=tmp_path / "var", workers=1, admin_password=ADMIN_PASSWORD)
    with serving_api(settings) as api:
        yield api


def add_chain(admin: httpx.Client, base: str, name: str = "chain") -> None:
    source = {
        "name": name,
        "kind": "website",
        "legal_basis": "test site of the suite",
        "jurisdiction": "FR",
        "seeds": [f"{base}/page/0"],
        "max_depth": PAGES,
        "rate_per_s": 1000.0,
        "allow_private_network": True,  # the test site is on 127.0.0.1
    }
    assert admin.post("/api/v1/sources", json=source).status_code == 201


def start(admin: httpx.Client, source: str, **options: object) -> dict:
    response = admin.post("/api/v1/jobs", json={"source": source, **options})
    assert response.status_code == 202, response.text
    assert response.headers["location"] == f"/api/v1/jobs/{response.json()['id']}"
    return response.json()


def test_a_crawl_job_shows_its_progress_is_cancelled_and_resumes(
    api: Api, site: tuple[str, ChainSite]
) -> None:
    base, content = site
    admin = api.admin
    add_chain(admin, base)
    job = start(admin, "chain")
    assert job["kind"] == "crawl" and job["source"] == "chain" and job["started_by"] == "admin"
    assert job["state"] in ("queued", "running") and job["finished_at"] is None

    # Held at the gate: the images before it are in the gallery, and the job says so as it runs.
    running = wait_for(admin, job["id"], lambda j: j["progress"]["new_images"] >= GATED - 4)
    assert running["state"] == "running" and running["started_at"] is not None
    assert running["progress"]["pages"] >= running["progress"]["new_images"]
    assert running["progress"]["faces"] >= GATED - 4
    assert [j["id"] for j in admin.get("/api/v1/jobs").json()] == [job["id"]]

    asked = admin.post(f"/api/v1/jobs/{job['id']}/cancel")
    assert asked.status_code == 202
    assert asked.json()["cancel_requested"] is True and asked.json()["state"] == "running"
    content.gate.set()
    cancelled = wait_for(admin, job["id"], finished)
    assert cancelled["state"] == "cancelled", cancelled
    assert cancelled["finished_at"] >= cancelled["started_at"]
    assert not cancelled["progress"]["completed"]
    stored = cancelled["progress"]["new_images"]
    assert GATED - 4 <= stored < PAGES  # it stopped at the next URL, with the rest still queued
    assert_problem(admin.post(f"/api/v1/jobs/{job['id']}/cancel"), 409, "/problems/conflict")

    # The next crawl picks up at the frontier: nothing fetched twice, nothing lost.
    again = wait_for(admin, start(admin, "chain")["id"], finished)
    assert again["state"] == "done", again
    assert again["progress"]["resumed"] and again["progress"]["completed"]
    assert again["progress"]["new_images"] == PAGES - stored
    assert admin.get("/api/v1/sources/chain").json()["sightings"] == PAGES
    assert max(n for path, n in content.requests.items() if path.startswith("/page/")) == 1
    assert [j["state"] for j in admin.get("/api/v1/jobs").json()] == ["done", "cancelled"]

    # Each crawl wrote an entry naming its job when it started, and one with its counts at its end.
    entries = api.as_role("auditor").get("/api/v1/audit/export").json()["entries"]
    started = [e for e in entries if e["action"] == "crawl.started"]
    assert [(e["details"]["job"], e["details"]["source"], e["user_name"]) for e in started] == [
        (job["id"], "chain", "admin"),
        (again["id"], "chain", "admin"),
    ]
    assert [e["id"] for e in started] == [cancelled["started_entry"], again["started_entry"]]
    crawls = [e["details"] for e in entries if e["action"] == "sources.manage"]
    assert [(c["job"], c["stopped"], c["completed"]) for c in crawls] == [
        (job["id"], True, False),
        (again["id"], False, True),
    ]


def test_a_job_waits_for_the_one_before_it_and_can_be_cancelled_or_fail_meanwhile(
    api: Api, site: tuple[str, ChainSite]
) -> None:
    base, content = site
    admin = api.admin
    add_chain(admin, base)
    add_chain(admin, base, "mirror")
    add_chain(admin, base, "to-pause")
    first = start(admin, "chain")
    wait_for(admin, first["id"], lambda j: j["state"] == "running")
    waiting = start(admin, "mirror")
    doomed = start(admin, "to-pause")
    assert admin.get(f"/api/v1/jobs/{waiting['id']}").json()["state"] == "queued"

    cancelled = admin.post(f"/api/v1/jobs/{waiting['id']}/cancel").json()
    assert cancelled["state"] == "cancelled" and cancelled["started_at"] is None
    # Paused after the job was accepted: the crawl refuses it when its turn comes.
    assert admin.post("/api/v1/sources/to-pause/pause").status_code == 204
    content.gate.set()
    assert wait_for(admin, first["id"], finished)["state"] == "done"
    failed = wait_for(admin, doomed["id"], finished)
    assert failed["state"] == "failed" and "paused" in failed["error"]
    assert admin.get(f"/api/v1/jobs/{waiting['id']}").json()["started_at"] is None  # never ran
    assert admin.get("/api/v1/sources/mirror").json()["sightings"] == 0

    # The history comes newest first, a page at a time.
    page = admin.get("/api/v1/jobs", params={"limit": 2}).json()
    assert [j["id"] for j in page] == [doomed["id"], waiting["id"]]
    rest = admin.get("/api/v1/jobs", params={"before": page[-1]["id"]}).json()
    assert [j["id"] for j in rest] == [first["id"]]
    assert_problem(admin.get("/api/v1/jobs", params={"limit": 0}), 422)


def test_what_a_job_refuses_before_it_starts(api: Api, site: tuple[str, ChainSite]) -> None:
    admin = api.admin
    unknown = assert_problem(admin.post("/api/v1/jobs", json={"source": "nowhere"}), 400, "/problems/refused")
    assert "no source named" in unknown["detail"]
    local = {"name": "disk", "legal_basis": "own photos", "jurisdiction": "FR"}
    assert admin.post("/api/v1/sources", json=local).status_code == 201
    not_crawled = assert_problem(
        admin.post("/api/v1/jobs", json={"source": "disk"}), 400, "/problems/refused"
    )
    assert "only urls, website, sitemap sources are crawled" in not_crawled["detail"]
    assert_problem(admin.post("/api/v1/jobs", json={"source": "disk", "max_pages": 0}), 422)
    assert_problem(admin.post("/api/v1/jobs", json={"source": "disk", "kind": "ingest"}), 422)
    assert_problem(admin.get("/api/v1/jobs/999"), 404, "/problems/not-found")
    assert_problem(admin.post("/api/v1/jobs/999/cancel"), 404, "/problems/not-found")
    assert admin.get("/api/v1/jobs").json() == []


def test_only_an_admin_may_start_follow_or_cancel_jobs(api: Api, site: tuple[str, ChainSite]) -> None:
    base, _ = site
    add_chain(api.admin, base)
    for role in Role:
        if role is Role.ADMIN:
            continue
        other = api.as_role(role.value)
        for response in (
            other.post("/api/v1/jobs", json={"source": "chain"}),
            other.get("/api/v1/jobs"),
            other.get("/api/v1/jobs/1"),
            other.post("/api/v1/jobs/1/cancel"),
        ):
            problem = assert_problem(response, 403, "/problems/permission-denied")
            assert "sources.manage" in problem["detail"]
    assert api.admin.get("/api/v1/jobs").json() == []  # nothing was started


def test_a_cancel_from_another_process_stops_a_crawl_in_the_middle_of_a_trickling_fetch(
    tmp_path: Path,
) -> None:
    """The page trickles for ever and the fetch deadline is an hour away: only the cancel can end
    the fetch. It is asked from the command line, another process; the server's job ledger relays
    it, the crawl stops inside the fetch, and the job's end is stored."""
    settings = Settings(
        data_dir=tmp_path / "var", workers=1, admin_password=ADMIN_PASSWORD, crawl_fetch_deadline_s=3600.0
    )
    with trickling_site() as (base, asked, _), serving_api(settings) as api:
        admin = api.admin
        intranet = {
            "name": "intranet",
            "kind": "website",
            "legal_basis": "test site of the suite",
            "jurisdiction": "FR",
            "seeds": [f"{base}/"],
            "rate_per_s": 1000.0,
            "allow_private_network": True,
        }
        assert admin.post("/api/v1/sources", json=intranet).status_code == 201
        job = start(admin, "intranet")
        wait_for(admin, job["id"], lambda _: "/" in asked)  # the page is trickling in

        token = api.log_in("admin", ADMIN_PASSWORD).json()["access_token"]
        asked_to_stop = facetrace(settings.data_dir, "jobs", "cancel", str(job["id"]), token=token)
        assert asked_to_stop.returncode == 0, asked_to_stop.stderr
        stopped = wait_for(admin, job["id"], finished)
        assert (stopped["state"], stopped["cancel_requested"]) == ("cancelled", True)
        assert not stopped["progress"]["completed"] and asked == ["/robots.txt", "/"]
        assert_problem(admin.post(f"/api/v1/jobs/{job['id']}/cancel"), 409, "/problems/conflict")

        entries = api.as_role("auditor").get("/api/v1/audit/export").json()["entries"]
        [cancel] = [e for e in entries if e["action"] == "jobs.cancel"]
        assert (cancel["user_name"], cancel["details"]["job"], cancel["details"]["source"]) == (
            "admin",
            job["id"],
            "intranet",
        )
        [closing] = [e["details"] for e in entries if e["action"] == "sources.manage"]
        assert (closing["job"], closing["stopped"], closing["pages"]) == (job["id"], True, 0)
