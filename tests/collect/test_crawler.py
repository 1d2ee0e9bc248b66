"""The crawler against a real HTTP server on 127.0.0.1 serving a generated website.

The site has a robots.txt with a disallowed folder, a page whose meta robots says noimageai,
an image whose X-Robots-Tag says so, the same image at two URLs, a resized re-encoded copy of
it on another page, an Open Graph image, a 404, a redirect loop, a text file served as
image/jpeg, and a link to another host. Images carry an ETag and answer 304 when unchanged.
The server logs every request, so the tests check what was never asked for, not just what
was stored.
"""

from __future__ import annotations

import gzip
import hashlib
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from email.message import Message
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
from sqlalchemy import select

from facetrace.collect.connection_guard import guarded_client
from facetrace.collect.crawler import Crawler, CrawlPlan
from facetrace.collect.pages import parse_page
from facetrace.collect.sources import SourceSpec
from facetrace.core.config import Settings
from facetrace.gallery.results import SearchResult
from facetrace.governance.erasure import ErasureScope
from facetrace.governance.searches import Purpose
from facetrace.governance.service import Governance
from facetrace.ingest.inputs import FetchedImage
from facetrace.store.catalog_models import Image, Sighting
from facetrace.vision.analyzer import FaceAnalyzer
from support.catalogs import catalog_rows, images_in_catalog
from support.photos import encode
from support.sites import SiteResponse, serve

SITEMAP_INDEX = b"""<?xml version="1.0" encoding="UTF-8"?>
<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
  <sitemap><loc>/sitemap-pages.xml.gz</loc></sitemap>
</sitemapindex>"""
SITEMAP_PAGES = b"""<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"
        xmlns:image="http://www.google.com/schemas/sitemap-image/1.1">
  <url><loc>/press.html</loc></url>
  <url><loc>/private/staff.html</loc></url>
  <url><loc>/</loc><image:image><image:loc>/img/cover.png</image:loc></image:image></url>
</urlset>"""


class Site:
    """Routes → (status, headers, body); every request path is logged."""

    def __init__(self, astronaut: bytes, thumbnail: bytes, mirrored: bytes, coffee: bytes) -> None:
        page = "<html><head><title>{title}</title>{head}</head><body>{body}</body></html>"
        self.requests: list[str] = []
        self.not_modified: list[str] = []  # answered 304 to a conditional request
        self.routes: dict[str, tuple[int, dict[str, str], bytes]] = {
            "/robots.txt": (200, {"content-type": "text/plain"}, b"User-agent: *\nDisallow: /private/\n"),
            "/": self.html(
                page.format(
                    title="Home",
                    head='<meta property="og:image" content="/img/cover.png">',
                    body='<a href="/events.html">events</a> <a href="/private/staff.html">staff</a>'
                    ' <a href="/quiet.html">quiet</a> <a href="/gone.html">gone</a> <a href="/loop">loop</a>'
                    ' <a href="https://elsewhere.invalid/page.html">elsewhere</a>'
                    ' <a href="/slow.html">slow</a> <a href="/press.html">press</a>',
                )
            ),
            "/press.html": self.html(
                page.format(title="Press", head="", body='<img src="/thumbs/astronaut.jpg" alt="Thumbnail">')
            ),
            "/thumbs/astronaut.jpg": (200, {"content-type": "image/jpeg"}, thumbnail),
            "/events.html": self.html(
                page.format(
                    title="Events 2026",
                    head="",
                    body='<img src="img/astronaut.jpg" alt="The astronaut at the fair">'
                    '<picture><source srcset="/copies/astronaut.jpg 2x"><img src="/img/fake.jpg"></picture>'
                    '<img src="/private/secret.jpg"> <img src="/img/tagged.jpg"> <img src="/img/huge.jpg">',
                )
            ),
            "/quiet.html": self.html(
                page.format(
                    title="Quiet",
                    head='<meta name="robots" content="noimageai">',
                    body='<img src="/img/mirrored.jpg">',
                )
            ),
            "/img/astronaut.jpg": (200, {"content-type": "image/jpeg"}, astronaut),
            "/copies/astronaut.jpg": (200, {"content-type": "image/jpeg"}, astronaut),
            "/img/mirrored.jpg": (200, {"content-type": "image/jpeg"}, mirrored),
            "/img/tagged.jpg": (200, {"content-type": "image/jpeg", "x-robots-tag": "noimageai"}, mirrored),
            "/img/cover.png": (200, {"content-type": "image/png"}, coffee),
            "/img/fake.jpg": (200, {"content-type": "image/jpeg"}, b"this is not a picture"),
            "/img/huge.jpg": (200, {"content-type": "image/jpeg"}, b"\xff" * 3_000_000),
            "/slow.html": self.html(page.format(title="Slow", head="", body="")),
            "/private/staff.html": self.html(page.format(title="Staff", head="", body="")),
            "/private/secret.jpg": (200, {"content-type": "image/jpeg"}, astronaut),
            "/loop": (302, {"location": "/loop"}, b""),
            "/sitemap.xml": (200, {"content-type": "application/xml"}, SITEMAP_INDEX),
            "/sitemap-pages.xml.gz": (
                200,
                {"content-type": "application/gzip"},
                gzip.compress(SITEMAP_PAGES),
            ),
        }

    @staticmethod
    def html(text: str) -> tuple[int, dict[str, str], bytes]:
        return 200, {"content-type": "text/html; charset=utf-8"}, text.encode()


@pytest.fixture
def site(astronaut_rgb: np.ndarray, coffee_png: bytes) -> Iterator[tuple[str, Site]]:
    half = cv2.resize(astronaut_rgb, (256, 256), interpolation=cv2.INTER_AREA)
    content = Site(
        encode(astronaut_rgb, "JPEG", quality=95),
        encode(half, "JPEG", quality=70),
        encode(astronaut_rgb[:, ::-1].copy(), "JPEG", quality=95),
        coffee_png,
    )

    def respond(path: str, request_headers: Message) -> SiteResponse:
        content.requests.append(path)
        if path == "/slow.html":
            time.sleep(1.0)  # longer than the client's timeout in the tests
        status, headers, body = content.routes.get(path, (404, {"content-type": "text/html"}, b"no"))
        if headers.get("content-type", "").startswith("image/"):
            headers = {**headers, "etag": f'"{hashlib.sha1(body).hexdigest()[:16]}"'}
            if request_headers.get("if-none-match") == headers["etag"]:
                content.not_modified.append(path)
                status, body = 304, b""
        return status, headers, body

    with serve(respond) as base:
        yield base, content


def plan(base: str, **changes: object) -> CrawlPlan:
    values: dict[str, object] = {
        "seeds": (f"{base}/",),
        "allowed": (base.removeprefix("http://"),),
        "follow_links": True,
        "read_sitemaps": False,
        "max_pages": 50,
        "max_depth": 3,
        "rate_per_s": 1000.0,
        "user_agent": "FacetraceBot/test (+http://127.0.0.1/contact)",
        "max_page_bytes": 1_000_000,
        "max_image_bytes": 2_000_000,
        "allow_private_network": True,  # the test site is on 127.0.0.1
    }
    return CrawlPlan(**{**values, **changes})  # type: ignore[arg-type]


def client_for_tests(timeout: float = 5.0) -> httpx.Client:
    """The crawler's guarded client, for test sites on 127.0.0.1."""
    return guarded_client(allow_private_network=True, timeout=timeout)


def test_parse_page_finds_every_kind_of_image_and_the_robots_rules() -> None:
    page = parse_page(
        "https://news.example/a/page.html",
        '<html><head><title> A page </title><meta name="robots" content="NoFollow, googlebot: noindex">'
        '<meta name="twitter:image" content="https://cdn.example/t.jpg"></head><body>'
        '<img src="../i/1.jpg" alt="one" srcset="/i/1@2x.jpg 2x, /i/1@3x.jpg 3x">'
        '<picture><source srcset="/i/2.webp"><img src="/i/2.jpg" alt="two"></picture>'
        '<a href="/gallery/3.PNG">three</a> <a href="next.html#top">next</a> <a href="mailto:x@y">mail</a>'
        '<img src="data:image/png;base64,AAAA"></body></html>',
    )
    assert page.title == "A page"
    assert [(i.url, i.alt) for i in page.images] == [
        ("https://news.example/i/1.jpg", "one"),
        ("https://news.example/i/1@2x.jpg", "one"),
        ("https://news.example/i/1@3x.jpg", "one"),
        ("https://news.example/i/2.jpg", "two"),
        ("https://news.example/i/2.webp", "two"),
        ("https://cdn.example/t.jpg", None),
        ("https://news.example/gallery/3.PNG", "three"),
    ]
    assert page.links == ["https://news.example/a/next.html"]
    assert page.robots == frozenset({"nofollow"}) and not page.follow_allowed and page.images_allowed


def test_a_malformed_link_or_image_url_is_skipped() -> None:
    page = parse_page(
        "https://news.example/",
        '<base href="http://[broken/"><a href="https://[bad/page">x</a><a href="/next">next</a>'
        '<img src="http://[bad/i.jpg"><img src="/i.jpg">',
    )
    assert page.links == ["https://news.example/next"]
    assert [image.url for image in page.images] == ["https://news.example/i.jpg"]


def test_crawl_fetches_only_what_it_may(site: tuple[str, Site]) -> None:
    base, content = site
    with client_for_tests(timeout=0.3) as client:
        crawler = Crawler(plan(base), client, sleep=lambda _seconds: None)
        fetched = [item for item in crawler.run() if isinstance(item, FetchedImage)]
    assert not [path for path in content.requests if path.startswith("/private/")]  # robots.txt kept
    assert "/img/mirrored.jpg" not in content.requests  # its page says noimageai
    assert sorted(
        (f.location.removeprefix(base), (f.page_url or "").removeprefix(base)) for f in fetched
    ) == [
        ("/copies/astronaut.jpg", "/events.html"),
        ("/img/astronaut.jpg", "/events.html"),
        ("/img/cover.png", "/"),
        ("/img/fake.jpg", "/events.html"),  # claims to be a JPEG: the pipeline reports it, the run goes on
        ("/thumbs/astronaut.jpg", "/press.html"),
    ]
    stats = crawler.stats
    assert stats.refused_by_robots == 2 and stats.images_withheld_by_page == 2  # quiet page + tagged image
    problems = dict(stats.errors)
    assert problems[f"{base}/gone.html"] == "HTTP 404"
    assert problems[f"{base}/loop"] == "too many redirects"
    assert problems["https://elsewhere.invalid/page.html"] == "outside the source's allowed hosts/paths"
    assert problems[f"{base}/img/huge.jpg"] == "larger than 2,000,000 bytes"
    assert problems[f"{base}/slow.html"].startswith("ReadTimeout")
    assert content.requests.count("/slow.html") == 3  # tried, then retried with backoff
    assert content.requests.count("/robots.txt") == 1


def test_rate_limit_waits_between_requests_to_a_host(site: tuple[str, Site]) -> None:
    base, _ = site
    waits: list[float] = []
    now = [0.0]
    with client_for_tests() as client:
        crawler = Crawler(
            plan(base, rate_per_s=2.0, max_pages=2), client, sleep=waits.append, clock=lambda: now[0]
        )
        list(crawler.run())
    # The clock never moves, so every request after the first waits a further 0.5 s.
    assert waits and all(w == pytest.approx(0.5 * (i + 1)) for i, w in enumerate(waits))


def test_crawl_command_path_stores_page_urls_and_search_finds_them(
    gov_settings: Settings, operator: Governance, site: tuple[str, Site], analyzer: FaceAnalyzer
) -> None:
    base, content = site
    operator.sources.add(
        SourceSpec(
            name="fair",
            kind="website",
            legal_basis="the organiser's published press photos",
            jurisdiction="FR",
            seeds=(f"{base}/",),
            rate_per_s=1000.0,
            allow_private_network=True,
        )
    )
    crawled, ingested = operator.sources.crawl("fair")
    assert crawled.pages == 5 and ingested.new_images == 3 and ingested.known_images == 1
    # Within the settings' size limit, so fetched; neither decodes: reported, and the run goes on.
    assert sorted(url.removeprefix(base) for url, _ in ingested.failures) == [
        "/img/fake.jpg",
        "/img/huge.jpg",
    ]
    original = content.routes["/img/astronaut.jpg"][2]
    with operator.sessions() as session:
        astronaut = session.scalar(select(Image).where(Image.sha256 == hashlib.sha256(original).hexdigest()))
        assert astronaut is not None
        places = sorted(
            (s.location.removeprefix(base), s.page_url.removeprefix(base)) for s in astronaut.sightings
        )
        details = {s.location.removeprefix(base): (s.page_title, s.alt_text) for s in astronaut.sightings}
        thumbnail = session.scalar(select(Image).where(Image.id != astronaut.id, Image.face_count == 1))
        assert thumbnail is not None and thumbnail.near_duplicate_of == astronaut.id  # the resized copy
    assert places == [("/copies/astronaut.jpg", "/events.html"), ("/img/astronaut.jpg", "/events.html")]
    assert details == {
        "/img/astronaut.jpg": ("Events 2026", "The astronaut at the fair"),
        "/copies/astronaut.jpg": ("Events 2026", None),  # from a <picture> whose <img> has no alt
    }

    outcome = operator.searches.search(
        analyzer, original, Purpose("CASE-1", "missing-person", "where was this person photographed"), k=2
    )
    # One result for the photo, listing its copy and every page either was on.
    (hit,) = outcome.hits
    assert hit.face.image.sha256 == astronaut.sha256 and len(hit.copies) == 1
    result = SearchResult.of(hit)
    pages = {s.page_url for s in result.sightings}
    pages |= {s.page_url for copy in result.near_duplicates for s in copy.sightings}
    assert pages == {f"{base}/events.html", f"{base}/press.html"}
    with operator.sessions() as session:
        assert session.scalar(select(Sighting).where(Sighting.location.like("%/private/%"))) is None

    # Erasing the photo by its URL takes its copy on the press page too.
    erasure = operator.erasure.plan(ErasureScope(locations=(f"{base}/img/astronaut.jpg",)))
    assert sorted(url.removeprefix(base) for url in erasure.locations) == [
        "/copies/astronaut.jpg",
        "/img/astronaut.jpg",
        "/thumbs/astronaut.jpg",
    ]


PAGES = 12


@pytest.fixture
def slow_site(astronaut_rgb: np.ndarray) -> Iterator[tuple[str, Counter[str]]]:
    """``PAGES`` pages in a chain, one distinct portrait each; images answer slowly."""
    requests: Counter[str] = Counter()
    photos = {}
    for number in range(PAGES):
        crop = astronaut_rgb[number * 4 : 400 + number * 4, number * 4 : 400 + number * 4]
        photos[f"/img/{number}.jpg"] = encode(np.ascontiguousarray(crop), "JPEG", quality=90)

    def respond(path: str, _headers: Message) -> SiteResponse:
        requests[path] += 1
        if path in photos:
            time.sleep(0.2)
            return 200, {"content-type": "image/jpeg"}, photos[path]
        if path.startswith("/page/"):
            number = int(path.removeprefix("/page/"))
            follow = f'<a href="/page/{number + 1}">next</a>' if number + 1 < PAGES else ""
            return Site.html(f'<html><body><img src="/img/{number}.jpg">{follow}</body></html>')
        return 404, {"content-type": "text/plain"}, b""

    with serve(respond) as base:
        yield base, requests


@pytest.mark.slow
def test_a_crawl_killed_mid_way_resumes_without_refetching_or_losing(
    settings: Settings, slow_site: tuple[str, Counter[str]], tmp_path: Path
) -> None:
    base, requests = slow_site
    Governance.open(settings).sources.add(
        SourceSpec(
            "chain",
            "website",
            "test site of the suite",
            "FR",
            seeds=(f"{base}/page/0",),
            max_depth=PAGES,
            rate_per_s=1000.0,
            allow_private_network=True,
        )
    )
    command = [
        sys.executable,
        "-m",
        "facetrace",
        "--data-dir",
        str(settings.data_dir),
        "crawl",
        "chain",
        "-w",
        "1",
    ]
    # The environment as the fixtures left it (FACETRACE_DATABASE_URL under --catalog postgres).
    first = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while images_in_catalog(settings) < 3 and time.monotonic() < deadline and first.poll() is None:
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert 3 <= images_in_catalog(settings) < PAGES  # it really was cut off mid-way

    second = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr
    assert images_in_catalog(settings) == PAGES  # nothing lost
    places = catalog_rows(settings, "SELECT location FROM sightings")
    left = catalog_rows(settings, "SELECT count(*) FROM crawl_items")
    assert left == [(0,)]  # the crawl went through: the next one is a recrawl from the seeds
    assert len(places) == len(set(places)) == PAGES  # nothing twice
    pages = {path: count for path, count in requests.items() if path.startswith("/page/")}
    assert len(pages) == PAGES and max(pages.values()) <= 2  # a finished page is never fetched again
    assert sum(pages.values()) <= PAGES + 1  # only the one being read at the kill, if any
    images = {path: count for path, count in requests.items() if path.startswith("/img/")}
    # Refetched only if in flight at the kill: the one being downloaded, and up to the pool's
    # four per worker waiting for analysis (how many depends on how busy the machine is).
    assert sum(images.values()) <= PAGES + 1 + 4


def add_fair(operator: Governance, base: str) -> None:
    """The site as a registered website source called "fair", crawled without waiting."""
    operator.sources.add(
        SourceSpec(
            "fair",
            "website",
            "the organiser's press photos",
            "FR",
            seeds=(f"{base}/",),
            rate_per_s=1000.0,
            allow_private_network=True,
        )
    )


@pytest.mark.slow
def test_recrawl_updates_last_seen_marks_gone_and_can_delete_it(
    gov_settings: Settings, operator: Governance, site: tuple[str, Site]
) -> None:
    base, content = site
    add_fair(operator, base)
    operator.sources.crawl("fair")
    first_fetches = content.requests.count("/img/astronaut.jpg")

    # The organiser takes the cover picture down.
    status, headers, body = content.routes["/"]
    content.routes["/"] = (
        status,
        headers,
        body.replace(b'<meta property="og:image" content="/img/cover.png">', b""),
    )
    crawled, _ = operator.sources.crawl("fair")
    assert crawled.completed and crawled.gone == 1 and crawled.images_unchanged == 3
    # Asked again with its ETag; the server said "not modified", so no bytes came twice.
    assert content.requests.count("/img/astronaut.jpg") == first_fetches + 1
    assert sorted(content.not_modified) == [
        "/copies/astronaut.jpg",
        "/img/astronaut.jpg",
        "/thumbs/astronaut.jpg",
    ]
    with operator.sessions() as session:
        gone = session.scalars(select(Sighting.location).where(Sighting.gone_at.is_not(None))).all()
        assert gone == [f"{base}/img/cover.png"]

    operator.sources.crawl("fair", delete_gone=True)
    with operator.sessions() as session:
        assert session.scalar(select(Sighting).where(Sighting.location == f"{base}/img/cover.png")) is None
        assert len(session.scalars(select(Image)).all()) == 2  # only the astronaut and its copy are left


def test_recrawl_notices_a_new_image_at_the_same_url(
    gov_settings: Settings, operator: Governance, site: tuple[str, Site]
) -> None:
    base, content = site
    add_fair(operator, base)
    operator.sources.crawl("fair")
    cover = f"{base}/img/cover.png"
    # The organiser puts another picture under the cover's URL: a new ETag, so it is fetched.
    status, headers, _ = content.routes["/img/cover.png"]
    content.routes["/img/cover.png"] = (status, headers, content.routes["/img/mirrored.jpg"][2])
    crawled, ingested = operator.sources.crawl("fair")
    assert crawled.images_refetched == 1 and crawled.images_unchanged == 3 and ingested.new_images == 1
    assert crawled.gone == 1  # the picture that was replaced
    with operator.sessions() as session:
        at_cover = session.execute(
            select(Image.face_count, Sighting.gone_at.is_not(None))
            .join(Sighting, Sighting.image_id == Image.id)
            .where(Sighting.location == cover)
            .order_by(Sighting.id)
        ).all()
    assert at_cover == [(0, True), (1, False)]  # the old picture is gone from there, the new one seen

    operator.sources.crawl("fair", delete_gone=True)
    with operator.sessions() as session:
        faces_at_cover = session.scalars(
            select(Image.face_count)
            .join(Sighting, Sighting.image_id == Image.id)
            .where(Sighting.location == cover)
        ).all()
    assert faces_at_cover == [1]


def test_the_page_limit_still_fetches_the_images_of_the_pages_it_read(site: tuple[str, Site]) -> None:
    base, content = site
    with client_for_tests() as client:
        crawler = Crawler(plan(base, max_pages=1), client)
        fetched = [item.location for item in crawler.run() if isinstance(item, FetchedImage)]
    assert fetched == [f"{base}/img/cover.png"] and crawler.stats.pages == 1
    assert not crawler.stats.completed and "/events.html" not in content.requests


def test_a_sitemap_source_fetches_what_the_sitemaps_list_and_no_more(site: tuple[str, Site]) -> None:
    base, content = site
    with client_for_tests() as client:
        crawler = Crawler(
            plan(base, seeds=(f"{base}/sitemap.xml",), follow_links=False, read_sitemaps=True), client
        )
        fetched = sorted(
            (item.location.removeprefix(base), (item.page_url or "").removeprefix(base))
            for item in crawler.run()
            if isinstance(item, FetchedImage)
        )
    # The index, its gzipped urlset, the two pages robots.txt allows, and their images.
    assert fetched == [("/img/cover.png", "/"), ("/thumbs/astronaut.jpg", "/press.html")]
    assert crawler.stats.sitemaps == 2 and crawler.stats.pages == 2 and crawler.stats.refused_by_robots == 1
    assert "/events.html" not in content.requests  # linked from "/", but a sitemap source follows no links
    assert not [path for path in content.requests if path.startswith("/private/")]


@pytest.mark.shared_data
def test_a_search_with_another_photo_finds_the_page_of_the_person(
    settings: Settings, shared_faces: Path, analyzer: FaceAnalyzer
) -> None:
    """A site with one page per person (their first photo); their second photo finds that page."""
    people = sorted(p for p in (shared_faces / "dev").iterdir() if not p.name.startswith("_"))
    people = [p for p in people if len(list(p.glob("*.jpg"))) >= 2][:8]
    photos = {person.name: sorted(person.glob("*.jpg")) for person in people}
    links = "".join(f'<a href="/people/{name}.html">{name}</a>' for name in photos)
    routes = {"/": Site.html(f"<html><body>{links}</body></html>")}
    for name, files in photos.items():
        routes[f"/people/{name}.html"] = Site.html(
            f'<html><body><img src="/photos/{name}.jpg"></body></html>'
        )
        routes[f"/photos/{name}.jpg"] = (200, {"content-type": "image/jpeg"}, files[0].read_bytes())

    with serve(lambda path, _headers: routes.get(path, (404, {}, b""))) as base:
        governance = Governance.open(settings)
        governance.sources.add(
            SourceSpec(
                "people",
                "website",
                "test site of the suite",
                "FR",
                seeds=(f"{base}/",),
                rate_per_s=1000.0,
                allow_private_network=True,
            )
        )
        crawled, ingested = governance.sources.crawl("people")
        assert crawled.completed and ingested.new_images == len(photos) and not ingested.failures
        for name, files in photos.items():
            outcome = governance.searches.search(
                analyzer, files[1].read_bytes(), Purpose("CASE-2", "missing-person", "find this person"), k=1
            )
            pages = {s.page_url for s in outcome.hits[0].face.image.sightings}
            assert pages == {f"{base}/people/{name}.html"}, name
