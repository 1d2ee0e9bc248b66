"""The crawler stays out of internal networks and cannot be stalled: attacks from hostile sites.

Registration refuses seeds on loopback, private and link-local addresses (the cloud metadata
service at 169.254.169.254 among them) unless an admin registers the source with
``allow_private_network``; every connection is checked after DNS resolution (a public-looking
name resolving to 127.0.0.1 is refused, with a resolver injected so no test asks real DNS); each
redirect hop and robots.txt are checked before they are requested; a server trickling bytes is cut
off at the fetch deadline and not asked again; a huge robots.txt is read only up to 500 KiB.
Test sites run on 127.0.0.1, so the crawls that must reach them use the flag.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from email.message import Message
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from facetrace.collect.connection_guard import guarded_client, non_public
from facetrace.collect.crawler import ROBOTS_MAX_BYTES, Crawler, CrawlPlan
from facetrace.collect.sitemaps import MAX_ENTRIES, MAX_IMAGES_PER_PAGE, parse_sitemap
from facetrace.collect.sources import SourceSpec, validate, within
from facetrace.core.config import Settings
from facetrace.core.errors import FacetraceError
from facetrace.governance.service import Governance
from facetrace.store.catalog_models import Source
from facetrace.store.governance_models import AuditEntry
from support.api import ADMIN_PASSWORD, assert_problem, serving_api
from support.cli import facetrace
from support.sites import SiteResponse, serve
from support.trickling_site import trickling_site

PAGE = (200, {"content-type": "text/html"}, b"<html><body>a page</body></html>")
NOT_FOUND = (404, {"content-type": "text/plain"}, b"")


def plan(seed: str, allowed: str, **changes: object) -> CrawlPlan:
    values: dict[str, object] = {
        "seeds": (seed,),
        "allowed": (allowed,),
        "follow_links": True,
        "read_sitemaps": False,
        "max_pages": 10,
        "max_depth": 2,
        "rate_per_s": 1000.0,
        "user_agent": "FacetraceBot/test",
        "max_page_bytes": 1_000_000,
        "max_image_bytes": 1_000_000,
        "allow_private_network": True,
    }
    return CrawlPlan(**{**values, **changes})  # type: ignore[arg-type]


def crawl(crawl_plan: CrawlPlan, client: httpx.Client | None = None, **options: object) -> Crawler:
    """Crawl with the client the crawl command uses (unless given one); returns the crawler."""
    with client or guarded_client(allow_private_network=crawl_plan.allow_private_network, timeout=5) as http:
        crawler = Crawler(crawl_plan, http, sleep=lambda _seconds: None, **options)  # type: ignore[arg-type]
        list(crawler.run())
    return crawler


@contextmanager
def logged_site(routes: dict[str, SiteResponse]) -> Iterator[tuple[str, list[str]]]:
    """A site on 127.0.0.1 answering ``routes`` (404 elsewhere); yields its URL and the paths asked."""
    asked: list[str] = []

    def respond(path: str, _headers: Message) -> SiteResponse:
        asked.append(path)
        return routes.get(path, NOT_FOUND)

    with serve(respond) as base:
        yield base, asked


def spec(seed: str, **changes: object) -> SourceSpec:
    return SourceSpec(
        **{"name": "intranet", "kind": "website", "legal_basis": "our own staff pages", "jurisdiction": "FR"}
        | {"seeds": (seed,)}
        | changes  # type: ignore[arg-type]
    )


# --- registration ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seed", "kind"),
    [
        ("http://169.254.169.254/latest/meta-data/", "a link-local address"),
        ("http://localhost:8080/", "the local machine"),
        ("http://[::1]/", "a loopback address"),
        ("http://127.0.0.1:5432/", "a loopback address"),
        ("http://10.0.0.7/", "a private address"),
        ("http://[::ffff:169.254.169.254]/", "a link-local address"),
        ("http://0.0.0.0/", "an unspecified address"),
    ],
)
def test_a_seed_on_a_private_network_is_refused_without_the_flag(seed: str, kind: str) -> None:
    with pytest.raises(FacetraceError, match=f"is {kind}: .*--allow-private-network"):
        validate(spec(seed))
    assert validate(spec(seed, allow_private_network=True)).allow_private_network


def test_an_allowed_entry_on_a_private_network_is_refused_too() -> None:
    with pytest.raises(FacetraceError, match=re.escape("'169.254.169.254' is a link-local address")):
        validate(spec("https://news.example/", allowed=("news.example", "169.254.169.254")))


def test_the_flag_is_recorded_audited_and_shown(gov_settings: Settings, operator: Governance) -> None:
    operator.sources.add(spec("http://intranet.local:8080/staff/", allow_private_network=True))
    operator.sources.add(spec("https://news.example/", name="news"))
    shown = {source.name: source for source in operator.sources.listing()}
    assert shown["intranet"].allow_private_network is True
    assert shown["news"].allow_private_network is False
    assert shown["intranet"].allowed == ["intranet.local:8080"]  # the seed's port, not any port
    with operator.sessions() as session:
        entries = session.scalars(select(AuditEntry).where(AuditEntry.action == "sources.add")).all()
        added = {entry.details["name"]: entry.details for entry in entries}
    assert (
        added["intranet"]["allow_private_network"] is True and added["news"]["allow_private_network"] is False
    )


def test_the_command_line_flag(tmp_path: Path) -> None:
    data = tmp_path / "var"
    command = ("source", "add", "nas", "--kind", "website", "--seed", "http://192.168.1.20/")
    registration = ("--legal-basis", "our own file server", "--jurisdiction", "FR")
    refused = facetrace(data, *command, *registration)
    assert refused.returncode != 0 and "--allow-private-network" in refused.stderr + refused.stdout
    added = facetrace(data, *command, *registration, "--allow-private-network")
    assert added.returncode == 0, added.stderr
    listed = facetrace(data, "source", "list", "--json")
    assert [s["allow_private_network"] for s in json.loads(listed.stdout)] == [True]
    assert "allow_private_network" in facetrace(data, "source", "show", "nas").stdout
    assert facetrace(data, "source", "private-network", "nas", "--refuse").returncode == 0
    listed = facetrace(data, "source", "list", "--json")
    assert [s["allow_private_network"] for s in json.loads(listed.stdout)] == [False]


def test_the_api_flag_is_for_admins(tmp_path: Path) -> None:
    source = {"name": "nas", "kind": "website", "legal_basis": "our own file server", "jurisdiction": "FR"}
    settings = Settings(data_dir=tmp_path / "var", admin_password=ADMIN_PASSWORD)
    with serving_api(settings) as api:
        admin = api.admin
        refused = admin.post("/api/v1/sources", json=source | {"seeds": ["http://[::1]:8080/"]})
        assert "--allow-private-network" in assert_problem(refused, 400, "/problems/refused")["detail"]
        added = admin.post(
            "/api/v1/sources", json=source | {"seeds": ["http://[::1]:8080/"], "allow_private_network": True}
        )
        assert added.status_code == 201, added.text
        assert added.json()["allow_private_network"] is True and added.json()["allowed"] == ["[::1]:8080"]

        change = {"allow_private_network": False}
        supervisor = api.as_role("supervisor")
        denied = supervisor.put("/api/v1/sources/nas/private-network", json=change)
        assert_problem(denied, 403, "/problems/permission-denied")
        assert admin.put("/api/v1/sources/nas/private-network", json=change).status_code == 204
        assert admin.get("/api/v1/sources/nas").json()["allow_private_network"] is False


# --- where a URL may lead ---------------------------------------------------------------------


def test_allowed_entries_compare_scheme_host_and_port() -> None:
    assert within("http://news.example/a", ["news.example"])
    assert within("https://news.example:443/a", ["news.example"])
    assert not within("http://news.example:8080/a", ["news.example"])  # a bare host: default ports
    assert within("http://news.example:8080/a", ["news.example:8080"])
    assert within("https://news.example:8080/a", ["news.example:8080"])
    assert not within("http://news.example:8081/a", ["news.example:8080"])
    assert within("https://news.example:8443/events/a", ["https://news.example:8443/events"])
    assert not within("http://news.example:8443/events/a", ["https://news.example:8443/events"])
    assert not within("https://news.example:8443/other", ["https://news.example:8443/events"])
    assert not within("https://news.example/a", ["http://news.example"])
    assert within("http://[::1]:8080/", ["[::1]:8080"]) and not within("http://[::1]/", ["[::1]:8080"])
    assert not within("ftp://news.example/a", ["news.example"])


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("169.254.169.254", "a link-local address"),
        ("127.0.0.2", "a loopback address"),
        ("::1", "a loopback address"),
        ("::ffff:127.0.0.1", "a loopback address"),  # IPv4-mapped
        ("2002:7f00:1::", "a loopback address"),  # 6to4 around 127.0.0.1
        ("64:ff9b::a9fe:a9fe", "a link-local address"),  # NAT64 around 169.254.169.254
        ("192.168.0.1", "a private address"),
        ("172.16.5.4", "a private address"),
        ("fd12:3456::1", "a private address"),  # ULA
        ("fe80::1", "a link-local address"),
        ("100.64.0.1", "a shared (CGNAT) address"),
        ("224.0.0.251", "a multicast address"),
        ("ff02::1", "a multicast address"),
        ("0.0.0.0", "an unspecified address"),
        ("240.0.0.1", "a private address"),  # reserved (class E): Python counts it as private too
        ("93.184.215.14", None),
        ("2606:4700::1111", None),
    ],
)
def test_what_counts_as_a_non_public_address(address: str, kind: str | None) -> None:
    assert non_public(ipaddress.ip_address(address)) == kind


# --- the guard at connection time -----------------------------------------------------------


def resolving_to(address: str) -> Callable[[str, int], list[str]]:
    """A resolver that answers ``address`` for every name, as a rebinding DNS server would."""
    return lambda _host, _port: [address]


def test_a_public_name_resolving_to_loopback_is_refused_at_connection_time() -> None:
    with logged_site({"/": PAGE}) as (base, asked):
        port = base.rsplit(":", 1)[1]
        seed = f"http://public.example:{port}/"
        refused = crawl(
            plan(seed, f"public.example:{port}", allow_private_network=False),
            guarded_client(allow_private_network=False, timeout=5, resolve=resolving_to("127.0.0.1")),
        )
        assert asked == []  # nothing reached the machine: not even robots.txt
        (problem,) = refused.stats.errors
        assert problem[0] == seed and "127.0.0.1, a loopback address" in problem[1]
        assert "--allow-private-network" in problem[1]

        # The same name with the flag: the connection goes to the address that was checked, and the
        # request still names the host (what TLS verifies too).
        allowed = crawl(
            plan(seed, f"public.example:{port}"),
            guarded_client(allow_private_network=True, timeout=5, resolve=resolving_to("127.0.0.1")),
        )
        assert allowed.stats.pages == 1 and asked == ["/robots.txt", "/"]


def test_a_crawl_without_the_flag_reaches_nothing_on_the_machine(
    gov_settings: Settings, operator: Governance
) -> None:
    """A source registered before the check existed (or a name that resolves to 127.0.0.1) is refused
    by the crawl itself: here the seed is written straight into its registration."""
    with logged_site({"/": PAGE}) as (base, asked):
        operator.sources.add(spec("https://news.example/", rate_per_s=1000.0))
        with operator.sessions.begin() as session:
            source = session.scalar(select(Source).where(Source.name == "intranet"))
            assert source is not None
            source.seeds, source.allowed = [f"{base}/"], [base.removeprefix("http://")]
        crawled, ingested = operator.sources.crawl("intranet")
        assert asked == [] and crawled.pages == 0 and ingested.new_images == 0
        assert "a loopback address" in crawled.errors[0][1]

        # An admin marks it an intranet source (audited): now its crawls reach the machine.
        operator.sources.set_private_network("intranet", allowed=True)
        crawled, _ = operator.sources.crawl("intranet")
    assert crawled.pages == 1 and asked == ["/robots.txt", "/"]
    with operator.sessions() as session:
        changed = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "sources.private_network")
        ).one()
    assert changed.details == {"source": "intranet", "allow_private_network": True}


# --- redirects --------------------------------------------------------------------------------


def test_a_redirect_hop_is_checked_before_it_is_requested() -> None:
    with logged_site({"/": PAGE}) as (other, other_asked):
        other_port = other.rsplit(":", 1)[1]
        routes: dict[str, SiteResponse] = {
            "/": (
                200,
                {"content-type": "text/html"},
                "".join(f'<a href="/{p}">{p}</a>' for p in "abcdef").encode(),
            ),
            "/a": (302, {"location": f"http://127.0.0.1:{other_port}/"}, b""),  # another port
            "/b": (301, {"location": f"http://localhost:{other_port}/"}, b""),  # another host
            "/c": (302, {"location": "http://169.254.169.254/latest/meta-data/"}, b""),
            "/d": (307, {"location": "file:///etc/passwd"}, b""),
            "/e": (302, {"location": "/f"}, b""),  # within the source: followed
            "/f": PAGE,
        }
        with logged_site(routes) as (base, asked):
            crawler = crawl(plan(f"{base}/", base.removeprefix("http://")))
    assert other_asked == []
    errors = dict(crawler.stats.errors)
    for path, target in (
        ("/a", f"http://127.0.0.1:{other_port}/"),
        ("/b", f"http://localhost:{other_port}/"),
        ("/c", "http://169.254.169.254/latest/meta-data/"),
        ("/d", "file:///etc/passwd"),
    ):
        assert errors[f"{base}{path}"] == f"redirected outside the source, to {target}"
    assert crawler.stats.pages == 3 and asked.count("/f") == 2  # "/", "/e" (as /f) and "/f"


@pytest.mark.parametrize("other_allowed", [False, True])
def test_robots_txt_is_never_read_from_outside_the_source(other_allowed: bool) -> None:
    """A robots.txt redirected to another origin is read only when the source allows that origin too
    (as a site moving from http to https does); otherwise its rules cannot be read and nothing is."""
    rules = b"User-agent: *\nDisallow: /private/\n"
    with logged_site({"/robots.txt": (200, {"content-type": "text/plain"}, rules)}) as (other, other_asked):
        routes: dict[str, SiteResponse] = {
            "/robots.txt": (302, {"location": f"{other}/robots.txt"}, b""),
            "/": (200, {"content-type": "text/html"}, b'<a href="/private/x">x</a>'),
        }
        with logged_site(routes) as (base, asked):
            allowed = [base.removeprefix("http://")] + [other.removeprefix("http://")] * other_allowed
            crawler = crawl(replace(plan(f"{base}/", allowed[0]), allowed=tuple(allowed)))
    errors = dict(crawler.stats.errors)
    if other_allowed:  # its rules hold: the page is fetched, its link to /private/ is not
        assert other_asked == ["/robots.txt"] and asked == ["/robots.txt", "/"]
        assert crawler.stats.refused_by_robots == 1
    else:
        assert other_asked == [] and asked == ["/robots.txt"]  # unreadable rules: nothing is fetched
        assert (
            errors[f"{base}/robots.txt"] == f"robots.txt redirected outside the source, to {other}/robots.txt"
        )
        assert errors[f"{base}/"] == "disallowed by robots.txt"


def test_robots_txt_redirected_within_its_origin_is_followed() -> None:
    rules = b"User-agent: *\nDisallow: /private/\n"
    routes: dict[str, SiteResponse] = {
        "/robots.txt": (301, {"location": "/rules.txt"}, b""),
        "/rules.txt": (200, {"content-type": "text/plain"}, rules),
        "/": (200, {"content-type": "text/html"}, b'<a href="/private/x">x</a>'),
    }
    with logged_site(routes) as (base, asked):
        crawler = crawl(plan(f"{base}/", base.removeprefix("http://")))
    assert asked == ["/robots.txt", "/rules.txt", "/"] and crawler.stats.refused_by_robots == 1


def test_a_huge_robots_txt_is_read_up_to_500_kib_and_what_was_read_is_kept() -> None:
    head = b"User-agent: *\nDisallow: /private/\n"
    filler = b"# " + b"x" * 97 + b"\n"
    tail = b"Disallow: /\n"  # past the cap: never read, so it disallows nothing
    body = head + filler * (3 * ROBOTS_MAX_BYTES // len(filler)) + tail
    routes: dict[str, SiteResponse] = {
        "/robots.txt": (200, {"content-type": "text/plain"}, body),
        "/": (200, {"content-type": "text/html"}, b'<a href="/page">p</a><a href="/private/x">x</a>'),
        "/page": PAGE,
    }
    with logged_site(routes) as (base, asked):
        crawler = crawl(plan(f"{base}/", base.removeprefix("http://")))
    assert asked == ["/robots.txt", "/", "/page"] and crawler.stats.refused_by_robots == 1


def test_a_sitemap_listing_more_than_the_protocol_allows_is_cut_at_its_limits() -> None:
    image = "<image:image><image:loc>/i.jpg</image:loc></image:image>"
    urls = "".join(f"<url><loc>/p/{n}</loc></url>" for n in range(MAX_ENTRIES))
    body = (
        '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
        'xmlns:image="http://www.google.com/schemas/sitemap-image/1.1">'
        f"<url><loc>/gallery</loc>{image * (MAX_IMAGES_PER_PAGE + 1)}</url>{urls}</urlset>"
    ).encode()
    sitemap = parse_sitemap("https://news.example/sitemap.xml", body, limit=len(body))
    assert sitemap.truncated and len(sitemap.pages) == MAX_ENTRIES
    assert (
        len(sitemap.images) == MAX_IMAGES_PER_PAGE
        and sitemap.pages[-1] == f"https://news.example/p/{MAX_ENTRIES - 2}"
    )


# --- slow sites -------------------------------------------------------------------------------


def test_a_trickling_page_is_cut_off_at_the_fetch_deadline_and_not_retried(
    gov_settings: Settings,
) -> None:
    """The trickle never ends and every byte comes well within the read timeout: only the deadline
    (FACETRACE_CRAWL_FETCH_DEADLINE_S) can end the fetch."""
    settings = gov_settings.model_copy(update={"crawl_fetch_deadline_s": 1.0, "crawl_timeout_s": 10.0})
    operator = Governance.open(settings)
    with trickling_site() as (base, asked, _trickling):
        operator.sources.add(spec(f"{base}/", rate_per_s=1000.0, allow_private_network=True))
        crawled, _ = operator.sources.crawl("intranet")
    assert dict(crawled.errors) == {f"{base}/": "took longer than the 1 s fetch deadline"}
    assert asked == ["/robots.txt", "/"]  # asked once: an overrun is not retried
    assert crawled.completed


def test_a_cancel_takes_effect_during_a_trickling_read() -> None:
    """A deadline far away, and the crawl is asked to stop while the body trickles in: it stops
    there (the URL stays queued) instead of reading until the deadline."""
    with trickling_site() as (base, asked, trickling):
        crawler = crawl(
            plan(f"{base}/", base.removeprefix("http://"), fetch_deadline_s=3600.0),
            should_stop=trickling.is_set,  # asked to stop once the page has begun to trickle in
        )
    assert crawler.stats.stopped and not crawler.stats.errors and asked == ["/robots.txt", "/"]
