"""A real browser for the web tests: Debian's Chromium driven by Playwright, signed in as each role,
with screenshots of each page checked against axe-core's accessibility rules.

Playwright is imported when a test asks for it: without it (or without Chromium) those tests skip,
and everything else still runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from facetrace.core.config import Settings
from facetrace.governance.service import Governance
from facetrace.store.engine import open_catalog
from support.api import WEB_PASSWORD

CHROMIUM = Path("/usr/bin/chromium")
#: Screenshots of the pages the browser tests visit (not committed), for people to look at.
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "web"
#: The password of the first admin (``web_settings``) and of every account ``staffed`` makes.
PASSWORD = WEB_PASSWORD

#: Marks for a module of browser tests: ``browser`` (``-m "not browser"`` leaves them out), and a skip
#: where Chromium is not installed.
NEEDS_CHROMIUM = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"needs Debian's chromium at {CHROMIUM}"),
]


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """One Chromium per test module."""
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
        yield browser
        browser.close()


def as_admin(settings: Settings) -> Governance:
    """The admin that ``facetrace serve`` created, logged in with the password the settings gave it."""
    return Governance.with_password(settings, open_catalog(settings.catalog_url), "admin", PASSWORD)


@pytest.fixture
def staffed(web_settings: Settings, live_server: str) -> Settings:
    """Accounts for every role, made by the admin the server created at start."""
    admin = as_admin(web_settings)
    admin.accounts.add_unit("unit-a")
    for name, roles in (
        ("ines", ["investigator"]),
        ("sam", ["supervisor"]),
        ("dora", ["dpo"]),
    ):
        admin.accounts.add_user(name, roles, "unit-a", password=PASSWORD)
    return web_settings


class Visit:
    """One signed-in browser session (its own cookies), with screenshots by name."""

    def __init__(self, browser: object, base: str, name: str | None, *, width: int = 1280) -> None:
        self.context = browser.new_context(viewport={"width": width, "height": 900})  # type: ignore[attr-defined]
        self.page = self.context.new_page()
        self.base = base
        if name:
            self.page.goto(f"{base}/login")
            self.page.get_by_label("User name").fill(name)
            self.page.get_by_label("Password").fill(PASSWORD)
            self.page.get_by_role("button", name="Log in").click()
            self.page.wait_for_load_state()

    def open(self, path: str) -> object:
        self.page.goto(f"{self.base}{path}")
        return self.page

    def shot(self, name: str) -> None:
        """Save a screenshot of the page, and check it with axe-core (WCAG rules): no violation."""
        axe = pytest.importorskip("axe_playwright_python.sync_playwright").Axe
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        # A function, not an expression: Playwright would eval() an expression in the page, which
        # the pages' Content-Security-Policy refuses (no 'unsafe-eval').
        self.page.wait_for_function("() => [...document.images].every((image) => image.complete)")
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
        violations = axe().run(self.page).response["violations"]
        assert not violations, [(v["id"], v["help"], [n["target"] for n in v["nodes"]]) for v in violations]

    def close(self) -> None:
        self.context.close()
