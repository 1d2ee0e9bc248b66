"""The web forms' number fields: a value that is no number, or out of the API's own bounds, is answered
422 with the field named on the page, never 500; the web token form obeys the API's caps.

Real server, real HTTP; each form is posted signed in with the role it needs, with its CSRF token.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from facetrace.core.config import Settings
from facetrace.governance.service import Governance
from facetrace.store.engine import open_catalog
from support.photos import encode

PASSWORD = "a-long-test-password"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
BAD_NUMBERS = ["abc", "99999999999999999999", "-1", "0", "NaN", "inf", "-inf", "1e400", "٣", "12 days"]
PURPOSE = {"case_ref": "CASE-1", "offence": "homicide", "justification": "seen at the station"}


def browser_of(base: str, name: str) -> tuple[httpx.Client, str]:
    """A signed-in browser for ``name``, and the session's CSRF token."""
    browser = httpx.Client(base_url=base)
    csrf = CSRF.search(browser.get("/login").text)
    assert csrf is not None
    signed_in = browser.post("/login", data={"csrf": csrf.group(1), "username": name, "password": PASSWORD})
    assert signed_in.status_code == 303, signed_in.text
    csrf = CSRF.search(browser.get("/password").text)  # a login begins with a fresh token
    assert csrf is not None
    return browser, csrf.group(1)


@pytest.fixture
def people(web_settings: Settings, live_server: str) -> Iterator[dict[str, tuple[httpx.Client, str]]]:
    admin = Governance.with_password(web_settings, open_catalog(web_settings.catalog_url), "admin", PASSWORD)
    admin.accounts.add_unit("unit-a")
    admin.accounts.add_user("ines", ["investigator"], "unit-a", PASSWORD)
    admin.accounts.add_user("scanner", ["investigator"], "unit-a", None, service=True)
    browsers = {name: browser_of(live_server, name) for name in ("admin", "ines")}
    yield browsers
    for browser, _ in browsers.values():
        browser.close()


def assert_names(response: httpx.Response, field: str) -> None:
    assert response.status_code == 422, (response.status_code, response.text[:500])
    assert "text/html" in response.headers["content-type"]
    assert f"{field}:" in response.text


@pytest.mark.parametrize("value", BAD_NUMBERS)
def test_a_bad_number_in_a_web_form_is_a_422_naming_the_field(
    people: dict[str, tuple[httpx.Client, str]], astronaut_rgb: object, value: str
) -> None:
    admin, admin_csrf = people["admin"]
    token = admin.post(
        "/admin/users/scanner/tokens/new", data={"csrf": admin_csrf, "label": "ci", "days": value}
    )
    assert_names(token, "days")
    source = {
        "csrf": admin_csrf,
        "name": "press",
        "kind": "urls",
        "legal_basis": "press archive",
        "jurisdiction": "FR",
        "retention_days": value,
    }
    assert_names(admin.post("/admin/sources", data=source), "retention_days")

    investigator, csrf = people["ines"]
    photo = {"photo": ("probe.jpg", encode(astronaut_rgb, "JPEG"), "image/jpeg")}  # type: ignore[arg-type]
    search = investigator.post("/search", data={"csrf": csrf, "face": value, **PURPOSE}, files=photo)
    if value not in ("99999999999999999999",):  # a face number has no upper bound: that one is no face
        assert_names(search, "face")
    else:
        assert search.status_code == 400, search.text[:500]


def test_the_web_token_form_obeys_the_apis_caps(people: dict[str, tuple[httpx.Client, str]]) -> None:
    admin, csrf = people["admin"]
    too_long = admin.post(
        "/admin/users/scanner/tokens/new", data={"csrf": csrf, "label": "x" * 201, "days": "30"}
    )
    assert_names(too_long, "label")
    assert_names(admin.post("/admin/users/scanner/tokens/new", data={"csrf": csrf, "days": "3651"}), "days")
    issued = admin.post("/admin/users/scanner/tokens/new", data={"csrf": csrf, "label": "ci", "days": "3650"})
    assert issued.status_code == 303, issued.text
    assert "ftk_" in admin.get(issued.headers["location"]).text


@pytest.mark.parametrize("value", ["99999999999999999999", "-1", "abc"])
def test_numbers_in_web_addresses_are_checked_too(
    people: dict[str, tuple[httpx.Client, str]], value: str
) -> None:
    admin, csrf = people["admin"]
    revoke = admin.post(f"/admin/tokens/{value}/revoke", data={"csrf": csrf, "user": "scanner"})
    assert revoke.status_code in (404, 422), (revoke.status_code, revoke.text[:500])
    report = admin.get("/reports/annual", params={"year": value})
    assert report.status_code in (403, 404, 422), (report.status_code, report.text[:500])
