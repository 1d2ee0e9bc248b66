"""Security headers over real HTTP: every page the app serves says what a browser may load, run and
frame (a Content-Security-Policy without inline scripts or styles), and keeps no copy of it.

The list of pages below is checked against the app's own routes, so a page added later without
being listed here fails the test instead of escaping it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from facetrace.core.config import Settings
from facetrace.server import web
from support.api import ADMIN_PASSWORD, USER_PASSWORD, Api, serving_api

#: Every page a browser opens with GET (path template → the role that opens it; None: anyone).
PAGES: dict[str, str | None] = {
    "/": "investigator",
    "/login": None,
    "/password": "investigator",
    "/search": "investigator",
    "/cases": "investigator",
    "/faces/{face_id}/crop": "investigator",
    "/supervisor": "supervisor",
    "/reports/annual": "supervisor",
    "/dpo": "dpo",
    "/dpo/requests/{reference}": "dpo",
    "/dpo/requests/{reference}/report": "dpo",
    "/dpo/certificates/{reference}": "dpo",
    "/dpo/records": "dpo",
    "/audit": "auditor",
    "/audit/export": "auditor",
    "/admin": "admin",
    "/admin/users/{name}": "admin",
    "/admin/jobs.json": "admin",
    "/portal": None,
    "/portal/status": None,
    "/docs": None,
}


def assert_protected(response: httpx.Response) -> None:
    """The headers every answer carries, and for a page the policy that forbids inline scripts."""
    where = f"{response.request.method} {response.request.url.path} ({response.status_code})"
    headers = response.headers
    assert headers["x-content-type-options"] == "nosniff", where
    assert headers["referrer-policy"] == "no-referrer", where
    assert headers["x-frame-options"] == "DENY", where
    assert "no-store" in headers["cache-control"], where
    directives = [directive.split() for directive in headers["content-security-policy"].split("; ")]
    policy = {name: sources for name, *sources in directives}
    assert policy["frame-ancestors"] == ["'none'"], where
    assert policy["default-src"] == ["'none'"], where
    assert policy["script-src"] == ["'self'"], where  # no 'unsafe-inline', no other site
    assert "'unsafe-inline'" not in policy["style-src"], where
    assert policy["base-uri"] == ["'none'"] and policy["form-action"] == ["'self'"], where


def web_client(api: Api, name: str, password: str) -> httpx.Client:
    """A browser-like client signed in to the pages (session cookie) as ``name``."""
    client = api.client()
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text)
    assert csrf is not None
    signed_in = client.post("/login", data={"username": name, "password": password, "csrf": csrf.group(1)})
    assert signed_in.status_code == 303, signed_in.text
    return client


@pytest.fixture
def api(settings: Settings) -> Iterator[Api]:
    with serving_api(Settings(**{**settings.model_dump(), "admin_password": ADMIN_PASSWORD})) as api:
        yield api


def test_every_page_route_is_listed() -> None:
    served = {
        route.path for pages in web.PAGE_MODULES for route in pages.router.routes if "GET" in route.methods
    }
    assert served == set(PAGES)


def test_every_page_and_answer_carries_the_security_headers(api: Api) -> None:
    clients: dict[str | None, httpx.Client] = {
        None: api.client(),
        "admin": web_client(api, "admin", ADMIN_PASSWORD),
    }
    for role in ("investigator", "supervisor", "dpo", "auditor"):
        clients[role] = web_client(api, api.new_user(role)[0], USER_PASSWORD)

    visitor = clients[None]
    action = re.search(r'action="(/portal\?csrf=[^"]+)"', visitor.get("/portal").text)
    assert action is not None
    filed = visitor.post(action.group(1), data={"kind": "access", "urls": "https://example.org/me.jpg"})
    assert filed.status_code == 200 and filed.headers["content-type"].startswith("text/html")
    assert_protected(filed)
    reference = re.search(r'<strong id="reference">([^<]+)</strong>', filed.text)
    code = re.search(r'<strong id="code">([^<]+)</strong>', filed.text)
    assert reference is not None and code is not None
    status = visitor.post("/portal/status", data={"reference": reference.group(1), "code": code.group(1)})
    assert status.status_code == 200 and 'id="status"' in status.text
    assert_protected(status)

    values = {"reference": reference.group(1), "name": "admin", "face_id": "1"}
    shown = 0
    for path, role in PAGES.items():
        response = clients[role].get(path.format(**values))
        assert response.status_code < 500, (path, response.text)
        assert_protected(response)
        shown += response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    assert shown == 15  # the pages themselves, not only error pages

    dpo = clients["dpo"]
    dry_run = dpo.post(
        "/dpo/purge", data={"csrf": csrf_of(dpo, "/dpo"), "what": "jurisdiction", "jurisdiction": "FR"}
    )
    assert dry_run.status_code == 200 and "Dry run" in dry_run.text
    assert_protected(dry_run)
    forged = clients["investigator"].post("/authorisations", data={"csrf": "forged", "case_ref": "X"})
    assert forged.status_code == 403 and forged.headers["content-type"].startswith("text/html")
    assert_protected(forged)
    too_large = visitor.post("/login", content=b"x" * (256 << 10), headers={"content-type": "text/plain"})
    assert too_large.status_code == 413  # refused by an inner middleware: the headers are there all the same
    for answer in (
        too_large,
        visitor.get("/no/such/page"),
        visitor.get("/api/v1/health"),
        clients["admin"].get("/api/v1/users"),
        visitor.get("/openapi.json"),
    ):
        assert_protected(answer)


def test_static_files_are_typed_and_cacheable_and_no_page_loads_anything_from_elsewhere(api: Api) -> None:
    client = api.client()
    for name, kind in (
        ("style.css", "text/css"),
        ("search.js", "text/javascript"),
        ("jobs.js", "text/javascript"),
    ):
        response = client.get(f"/static/{name}")
        assert response.status_code == 200 and response.headers["content-type"].startswith(kind)
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "no-store" not in response.headers.get("cache-control", "")
    # The API reference is a page of this site, from the schema: no CDN's scripts run on this origin.
    reference = client.get("/docs")
    assert (
        reference.status_code == 200
        and '<code>POST</code></td><td><code class="place">/api/v1/search<' in reference.text
    )
    assert not re.search(r"(src|href)=\"(https?:)?//", reference.text)
    assert client.get("/redoc").status_code == 404
    assert client.get("/openapi.json").json()["info"]["title"] == "Facetrace"


def csrf_of(client: httpx.Client, path: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', client.get(path).text)
    assert found is not None
    return found.group(1)


def test_behind_tls_browsers_are_told_to_use_https_only(settings: Settings, api: Api) -> None:
    assert "strict-transport-security" not in api.client().get("/login").headers  # plain HTTP: no promise
    behind_tls = Settings(**{**settings.model_dump(), "secure_cookies": True})
    with serving_api(behind_tls) as tls_api:
        answer = tls_api.client().get("/login")
    assert answer.headers["strict-transport-security"] == "max-age=31536000"
    assert_protected(answer)


#: What the policy refuses in a page: inline styles and event handlers as attributes, inline
#: scripts and stylesheets, ``javascript:`` addresses. The browser test sees the pages as rendered;
#: this reads every branch of every template.
INLINE = re.compile(r"""\sstyle=|\son[a-z]+=|<script(?![^>]*\ssrc=)|<style|javascript:""", re.IGNORECASE)


def test_no_template_has_an_inline_script_style_or_handler() -> None:
    templates = sorted((Path(web.__file__).parent / "templates").glob("*.html"))
    assert len(templates) >= 18
    found = [
        f"{path.name}: {match.group()}" for path in templates for match in INLINE.finditer(path.read_text())
    ]
    assert found == []
