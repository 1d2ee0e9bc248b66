"""Nothing unsafe reaches a browser: only http(s) URLs (or local files, for list files) are stored
from list files, pages and sitemaps; ``javascript:``, ``data:``, ``file:``, ``ftp:``… are refused and
counted; and a page shows a stored URL as a link only when it is http(s), whatever the catalog holds."""

from __future__ import annotations

from collections.abc import Iterator
from email.message import Message
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select, update

from facetrace.collect.sources import SourceSpec
from facetrace.core.config import Settings
from facetrace.governance.service import Governance
from facetrace.store.catalog_models import Sighting
from facetrace.store.engine import open_catalog
from facetrace.store.governance_models import AuditEntry
from support.api import ADMIN_PASSWORD, USER_PASSWORD, serving_api
from support.form_client import Browser
from support.ingesting import ingest
from support.photos import encode
from support.sites import SiteResponse, serve

SITEMAP = """<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"
        xmlns:image="http://www.google.com/schemas/sitemap-image/1.1">
  <url><loc>{base}/</loc><image:image><image:loc>javascript:alert(1)</image:loc></image:image></url>
  <url><loc>javascript:alert(2)</loc></url>
  <url><loc>file:///etc/passwd</loc></url>
</urlset>"""
PAGE = """<html><head><title>Team</title></head><body>
<img src="/img/team.jpg" alt="the team" srcset="javascript:alert(3) 2x">
<img src="data:image/png;base64,iVBORw0KGgo=">
<a href="file:///etc/shadow">secrets</a> <a href="ftp://files.example/photo.jpg">photo</a>
</body></html>"""


@pytest.fixture
def site(astronaut_rgb: np.ndarray) -> Iterator[str]:
    routes: dict[str, SiteResponse] = {
        "/robots.txt": (404, {"content-type": "text/plain"}, b""),
        "/img/team.jpg": (200, {"content-type": "image/jpeg"}, encode(astronaut_rgb, "JPEG")),
    }

    def respond(path: str, _headers: Message) -> SiteResponse:
        return routes.get(path, (404, {"content-type": "text/plain"}, b"no"))

    with serve(respond) as base:
        routes["/sitemap.xml"] = (
            200,
            {"content-type": "application/xml"},
            SITEMAP.format(base=base).encode(),
        )
        routes["/"] = (200, {"content-type": "text/html"}, PAGE.encode())
        yield base


def test_a_crawl_stores_only_web_urls_and_counts_what_it_refused(
    gov_settings: Settings, operator: Governance, site: str
) -> None:
    operator.sources.add(
        SourceSpec(
            name="team",
            kind="sitemap",
            legal_basis="the club's published team photos",
            jurisdiction="FR",
            seeds=(f"{site}/sitemap.xml",),
            rate_per_s=1000.0,
            allow_private_network=True,  # the test site is on 127.0.0.1
        )
    )
    crawled, ingested = operator.sources.crawl("team")
    refused = {"javascript": 3, "file": 2, "data": 1, "ftp": 1}
    assert crawled.urls_refused_by_scheme == refused and ingested.new_images == 1
    with operator.sessions() as session:
        places = session.execute(select(Sighting.location, Sighting.page_url)).all()
        audited = [entry.details for entry in session.scalars(select(AuditEntry))]
    assert [tuple(place) for place in places] == [(f"{site}/img/team.jpg", f"{site}/")]
    crawls = [details for details in audited if details.get("command") == "crawl"]
    assert [details["urls_refused_by_scheme"] for details in crawls if "pages" in details] == [refused]


def test_a_list_file_records_only_web_pages_and_refuses_other_inputs(
    settings: Settings, photo_folder: Path
) -> None:
    listing = photo_folder / "list.txt"
    listing.write_text(
        "astronaut.jpg\tjavascript:alert(document.cookie)\n"
        "coffee.png\tfile:///etc/passwd\n"
        "javascript:alert(1)\n"
        "data:image/png;base64,iVBORw0KGgo=\n"
        "astronaut.jpg\thttps://example.org/team\n"
    )
    stats = ingest(settings, [str(listing)], source_name="site")
    assert stats.new_images == 1
    assert stats.failures == [
        (
            "astronaut.jpg",
            "page URL 'javascript:alert(document.cookie)' refused: only http(s) pages are recorded",
        ),
        ("coffee.png", "page URL 'file:///etc/passwd' refused: only http(s) pages are recorded"),
        ("javascript:alert(1)", "javascript:// inputs are not read by ingest; only files and file:// URLs"),
        (
            "data:image/png;base64,iVBORw0KGgo=",
            "data:// inputs are not read by ingest; only files and file:// URLs",
        ),
    ]
    with open_catalog(settings.catalog_url)() as session:
        assert session.scalars(select(Sighting.page_url)).all() == ["https://example.org/team"]


def test_a_stored_javascript_url_shows_as_text_not_as_a_link(
    tmp_path: Path, photo_folder: Path, astronaut_jpeg: bytes
) -> None:
    settings = Settings(data_dir=tmp_path / "var", workers=1, admin_password=ADMIN_PASSWORD)
    (photo_folder / "copy.jpg").write_bytes(astronaut_jpeg)
    listing = photo_folder / "list.txt"
    listing.write_text("astronaut.jpg\thttps://example.org/team\ncopy.jpg\thttps://example.org/copy\n")
    ingest(settings, [str(listing)], source_name="press")
    hostile = "javascript:alert(document.cookie)"
    with open_catalog(settings.catalog_url)() as session:  # written behind the ingest's back
        session.execute(update(Sighting).where(Sighting.page_url.like("%/copy")).values(page_url=hostile))
        session.commit()

    with serving_api(settings) as api:
        name, _ = api.new_user("investigator")
        browser = Browser(api)
        assert browser.log_in(name, USER_PASSWORD).url.path == "/search"
        purpose = {"case_ref": "C-1", "offence": "kidnapping", "justification": "where was this person seen"}
        found = browser.client.post(
            "/search",
            data={"csrf": browser.csrf("/search"), "face": "1", **purpose},
            files={"photo": ("probe.jpg", astronaut_jpeg, "image/jpeg")},
        )
    assert found.status_code == 200, found.text
    assert '<a href="https://example.org/team" rel="noreferrer noopener">' in found.text
    assert f'<span class="place">{hostile}</span>' in found.text
    assert 'href="javascript:' not in found.text.lower()
