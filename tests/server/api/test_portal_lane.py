"""Photos sent to the public portal are analysed in a lane of their own, so no upload stalls a search.

On a real server over HTTP: a search started while the portal's analyzer is busy with a heavy but
legal photo comes back before that photo's answer does; past the portal's queue a photo is refused
with 503 and Retry-After before it is decoded, with the same page whatever it shows, nothing filed,
and filings without a photo still accepted. The lane's state is read from /metrics, so the tests
wait for what the server reports, never for a length of time. SQLite and PostgreSQL.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from facetrace.core.config import Settings
from facetrace.governance import audit_keys
from facetrace.governance.service import Governance
from facetrace.store.engine import open_catalog
from support.api import PURPOSE, Api
from support.catalogs import catalog_rows
from support.ingesting import ingest
from support.portal import file_by_portal, portal_server, portal_visitor

#: How long a test waits for the state it set up, or for an answer, before it gives up: a guard against a
#: hang, not a bound on any latency (the state is reached in milliseconds, a heavy photo takes seconds).
PATIENCE_S = 60.0


@pytest.fixture(scope="module")
def heavy_photo() -> bytes:
    """A flat 5000×5000 PNG: 84 KB sent, 25 megapixels within every limit, about a second of decoding
    and analysis; it shows no face, so the portal refuses it after the analysis (400)."""
    buffer = io.BytesIO()
    Image.new("RGB", (5000, 5000), (200, 120, 40)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def gallery(gov_settings: Settings, photo_folder: Path) -> Path:
    """The astronaut (and a cup of coffee) collected into the gallery; the astronaut's photo."""
    ingest(
        gov_settings, [str(photo_folder)], source_name="press", jurisdiction="FR", legal_basis="press archive"
    )
    return next(photo_folder.glob("*.jpg"))


def portal_lane(auditor: httpx.Client) -> tuple[float, float, float]:
    """The portal lane's photos running and waiting, and how many it refused, as /metrics reports."""
    response = auditor.get("/metrics")
    assert response.status_code == 200, response.text
    samples = {
        (sample.name, sample.labels.get("state")): sample.value
        for family in text_string_to_metric_families(response.text)
        if family.name.startswith("facetrace_analysis_lane")
        for sample in family.samples
        if sample.labels.get("lane") == "portal"
    }
    photos = "facetrace_analysis_lane_photos"
    return (
        samples[photos, "running"],
        samples[photos, "waiting"],
        samples["facetrace_analysis_lane_refused_total", None],
    )


def wait_for_lane(auditor: httpx.Client, *, running: int, waiting: int) -> None:
    """Until the server reports ``running`` portal photos in analysis and ``waiting`` in its queue."""
    deadline = time.monotonic() + PATIENCE_S
    while portal_lane(auditor)[:2] != (running, waiting):
        assert time.monotonic() < deadline, f"the lane never had {running} running and {waiting} waiting"
        time.sleep(0.01)


@pytest.fixture
def uploads() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=8) as pool:
        yield pool


def upload_in_background(pool: ThreadPoolExecutor, api: Api, photo: bytes) -> Future[httpx.Response]:
    """A new anonymous visitor's portal upload of ``photo``, sent from another thread."""
    visitor, action = portal_visitor(api)
    visitor.timeout = httpx.Timeout(PATIENCE_S)
    return pool.submit(file_by_portal, visitor, action, photo)


def test_a_search_started_while_the_portal_analyses_a_heavy_photo_comes_back_first(
    gov_settings: Settings, gallery: Path, heavy_photo: bytes, uploads: ThreadPoolExecutor
) -> None:
    with portal_server(gov_settings, portal_requests_per_hour=100) as api:
        investigator, auditor = api.as_role("investigator"), api.as_role("auditor")
        upload = upload_in_background(uploads, api, heavy_photo)
        wait_for_lane(auditor, running=1, waiting=0)

        searched = investigator.post(
            "/api/v1/search", data=PURPOSE, files={"photo": ("probe.jpg", gallery.read_bytes(), "image/jpeg")}
        )

        assert searched.status_code == 200, searched.text
        assert searched.json()["results"], "the astronaut is in the gallery"
        assert not upload.done(), "the search waited for the portal's analysis"
        refused = upload.result()
        assert refused.status_code == 400 and "no face" in refused.text


@pytest.mark.slow
def test_past_the_portal_queue_a_photo_is_refused_with_503_whatever_it_shows(
    gov_settings: Settings, gallery: Path, heavy_photo: bytes, coffee_png: bytes, uploads: ThreadPoolExecutor
) -> None:
    changes = {"portal_requests_per_hour": 100, "portal_analysis_concurrency": 1, "portal_queue": 2}
    with portal_server(gov_settings, **changes) as api:
        auditor, dpo = api.as_role("auditor"), api.as_role("dpo")
        occupying = [upload_in_background(uploads, api, heavy_photo) for _ in range(3)]
        wait_for_lane(auditor, running=1, waiting=2)

        flood = []
        for photo in (gallery.read_bytes(), coffee_png, heavy_photo):  # in the gallery, no face, heavy
            visitor, action = portal_visitor(api)
            flood.append(file_by_portal(visitor, action, photo))
        visitor, action = portal_visitor(api)
        by_urls = file_by_portal(visitor, action, None, urls="https://a.example/me.jpg")

        assert [answer.status_code for answer in flood] == [503, 503, 503]
        assert all(answer.headers["retry-after"].isdigit() for answer in flood)
        assert flood[0].text == flood[1].text == flood[2].text  # nothing told about the photo
        assert "RR-" not in flood[0].text and "try again" in flood[0].text
        assert by_urls.status_code == 200, "a request without a photo needs no analysis"
        assert [upload.result().status_code for upload in occupying] == [400, 400, 400]
        filed = dpo.get("/api/v1/rights").json()
        assert [request["photo_matches"] for request in filed] == [0]  # the one by URLs; no refused photo
        assert portal_lane(auditor) == (0, 0, 3)

        visitor, action = portal_visitor(api)
        again = file_by_portal(visitor, action, gallery.read_bytes())
        assert again.status_code == 200, "once the queue has room the same photo is accepted"


def test_a_flood_of_first_portal_requests_makes_one_portal_account_and_no_error(
    gov_settings: Settings,
) -> None:
    """The portal's account is made at its first use: requests arriving together at that moment all
    act as the one account (one of them made it; a failed insert is no 500)."""
    sessions = open_catalog(gov_settings.catalog_url)
    audit_keys.attach(sessions, gov_settings)  # as the server does at start
    together = threading.Barrier(12)
    actors: list[str] = []

    def first_request() -> None:
        together.wait()
        actors.append(Governance.public_portal(gov_settings, sessions).actor.name)

    with ThreadPoolExecutor(max_workers=12) as pool:
        for done in [pool.submit(first_request) for _ in range(12)]:
            done.result()
    assert len(actors) == 12 and len(set(actors)) == 1
    assert len(catalog_rows(gov_settings, f"SELECT id FROM users WHERE name = '{actors[0]}'")) == 1
