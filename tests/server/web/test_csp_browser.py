"""Every page in a real browser (Debian's Chromium) under the server's Content-Security-Policy: no
violation anywhere, and the pages still do their job (the search page's face chooser, the
supervisor's chart colours, the annual report's own stylesheet).

A violation is caught twice: by a ``securitypolicyviolation`` listener installed in every document
before its own scripts run, and by the browser's console reports. A control proves the catching
works: an inline script slipped into a page is refused, and reported.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from facetrace.core.config import Settings
from support.browser import NEEDS_CHROMIUM, Visit
from support.ingesting import ingest

#: Waits until the page shows what it should (a form's answer is a new page, loaded after the click).
expect = pytest.importorskip("playwright.sync_api").expect

pytestmark = NEEDS_CHROMIUM

#: Runs in every document before the page's own scripts: records each violation the browser reports.
RECORDER = """
window.cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  const what = event.blockedURI || "inline", where = `${event.sourceFile}:${event.lineNumber}`;
  window.cspViolations.push(`${event.effectiveDirective} refused ${what} at ${where}`);
});
"""


class Watched(Visit):
    """A browser session that records every Content-Security-Policy violation of the pages it opens
    after signing in."""

    def __init__(self, browser: object, base: str, name: str | None, *, width: int = 1280) -> None:
        super().__init__(browser, base, name, width=width)
        self.context.add_init_script(RECORDER)  # type: ignore[attr-defined]
        self.console: list[str] = []
        self.page.on("console", self._console)  # type: ignore[attr-defined]

    def _console(self, message: object) -> None:
        if "Content Security Policy" in message.text:  # type: ignore[attr-defined]
            self.console.append(message.text)  # type: ignore[attr-defined]

    def violations(self) -> list[str]:
        """What the browser refused on the page now shown (and reported since the last call)."""
        self.page.wait_for_load_state()  # type: ignore[attr-defined]
        # A violation event is a task of its own: let those already queued run before reading.
        seen = self.page.evaluate(  # type: ignore[attr-defined]
            "() => new Promise((done) => setTimeout(() => done(window.cspViolations ?? ['no recorder']), 0))"
        )
        reported, self.console = [*seen, *self.console], []
        return reported

    def clean(self, path: str | None = None) -> object:
        """Open ``path`` (or stay on the page shown), and check the browser refused nothing on it."""
        page = self.open(path) if path else self.page
        where = page.url  # type: ignore[attr-defined]
        assert self.violations() == [], where
        return page


def test_no_page_violates_the_content_security_policy(
    browser: object, live_server: str, staffed: Settings, tmp_path: Path, astronaut_jpeg: bytes
) -> None:
    (tmp_path / "photos").mkdir()
    probe = tmp_path / "photos" / "astronaut.jpg"
    probe.write_bytes(astronaut_jpeg)
    ingest(staffed, [str(probe.parent)], source_name="nasa", jurisdiction="US", legal_basis="public domain")

    public = Watched(browser, live_server, None, width=390)
    page = public.clean("/login")
    page.get_by_label("User name").fill("ines")  # type: ignore[attr-defined]
    page.get_by_label("Password").fill("not her password")  # type: ignore[attr-defined]
    page.get_by_role("button", name="Log in").click()  # type: ignore[attr-defined]
    assert page.get_by_role("alert").inner_text() == "wrong user name or password"  # type: ignore[attr-defined]
    public.clean()
    page = public.clean("/portal")
    page.get_by_label("access").check()  # type: ignore[attr-defined]
    page.get_by_label("Addresses of the images or pages (one per line, optional)").fill(
        "https://example.org/me.jpg"
    )  # type: ignore[attr-defined]
    page.get_by_role("button", name="Send my request").click()  # type: ignore[attr-defined]
    reference = page.locator("strong#reference").inner_text()  # type: ignore[attr-defined]
    public.clean()
    page.get_by_role("button", name="Follow this request").click()  # type: ignore[attr-defined]
    assert page.locator("#status").inner_text() == "received"  # type: ignore[attr-defined]
    public.clean()
    page = public.clean("/portal/status")
    page.get_by_label("Follow a request: its reference").fill(reference)  # type: ignore[attr-defined]
    page.get_by_label("and its code").fill("A" * 16)  # type: ignore[attr-defined]
    page.get_by_role("button", name="Check").click()  # type: ignore[attr-defined]
    assert "No request matches" in page.get_by_role("alert").inner_text()  # type: ignore[attr-defined]
    public.shot("portal-status-unknown")
    public.clean()
    public.close()

    investigator = Watched(browser, live_server, "ines")
    page = investigator.clean("/search")
    request_form = page.locator("form[action='/authorisations']")  # type: ignore[attr-defined]
    request_form.get_by_label("Case reference").fill("CASE-3")
    request_form.get_by_label("Justification").fill("a person reported missing last week")
    request_form.get_by_role("button", name="Request").click()
    requested = page.get_by_role("status").filter(has_text="requested")  # type: ignore[attr-defined]
    authorisation = requested.inner_text().split()[1]
    investigator.clean()

    supervisor = Watched(browser, live_server, "sam")
    page = supervisor.clean("/supervisor")
    page.get_by_role("button", name=f"Grant {authorisation}").click()  # type: ignore[attr-defined]
    expect(page.get_by_role("status").first).to_contain_text(f"Authorisation {authorisation} granted")  # type: ignore[attr-defined]
    supervisor.clean()

    # The search page's script works under the policy: preview (a blob: image), the faces found
    # (fetched), and a box to click for each, placed through the CSS object model.
    page = investigator.clean("/search")
    form = page.locator("#search-form")  # type: ignore[attr-defined]
    form.get_by_label("Photo").set_input_files(str(probe))
    box = page.locator(".facebox").first  # type: ignore[attr-defined]
    box.wait_for()
    assert page.locator("#preview-image").get_attribute("src").startswith("blob:")  # type: ignore[attr-defined]
    assert box.evaluate("button => button.getBoundingClientRect().width") > 10
    expect(page.locator("#face-status")).to_have_text("Face 1 of 1 will be searched.")  # type: ignore[attr-defined]
    investigator.clean()
    form.get_by_label("Case reference").fill("CASE-3")
    form.get_by_label("Offence").select_option("missing-person")
    form.get_by_label("Why this search is necessary").fill("find where the missing person was seen")
    form.get_by_label("Authorisation").select_option(authorisation)
    form.get_by_role("button", name="Search", exact=True).click()
    page.get_by_role("heading", name="Results").wait_for()  # type: ignore[attr-defined]
    crop = page.locator(".result img.crop").first  # type: ignore[attr-defined]
    assert crop.evaluate("img => img.decode().then(() => img.naturalWidth)") == 112  # once loaded
    investigator.clean()
    investigator.clean("/cases")
    page = investigator.clean("/dpo")  # refused: the problem page
    assert "rights.handle" in page.get_by_role("alert").inner_text()  # type: ignore[attr-defined]
    investigator.shot("problem-refused")
    investigator.clean()
    investigator.close()

    # The chart's colours come from the stylesheet now, bars and legend alike.
    page = supervisor.clean("/supervisor")
    bar_colour = page.locator("svg.chart rect.series-0").first.evaluate("bar => getComputedStyle(bar).fill")  # type: ignore[attr-defined]
    legend_colour = page.locator(".legend .series-0").evaluate(
        "mark => getComputedStyle(mark).borderLeftColor"
    )  # type: ignore[attr-defined]
    assert bar_colour == legend_colour == "rgb(31, 95, 168)"
    supervisor.shot("supervisor-chart")
    page.get_by_role("link", name="Annual usage report").click()  # type: ignore[attr-defined]
    expect(page).to_have_title(re.compile("annual usage report", re.IGNORECASE))
    # The report keeps its own inline stylesheet (allowed by its hash) and draws its chart inline (SVG).
    assert page.locator("body").evaluate("body => getComputedStyle(body).maxWidth") == "960px"  # type: ignore[attr-defined]
    assert page.locator("figure svg polyline").count() >= 1  # type: ignore[attr-defined]
    supervisor.clean()
    supervisor.close()

    dpo = Watched(browser, live_server, "dora")
    page = dpo.clean("/dpo")
    page.get_by_role("link", name=reference).click()  # type: ignore[attr-defined]
    expect(page.get_by_role("heading", level=1)).to_contain_text(reference)  # type: ignore[attr-defined]
    dpo.shot("dpo-request-access")
    dpo.clean()
    page = dpo.clean("/dpo")
    purge = page.locator("form", has=page.get_by_role("heading", name="By jurisdiction"))  # type: ignore[attr-defined]
    purge.get_by_label("Country code").fill("us")
    purge.get_by_role("button", name="Dry run").click()
    expect(page.locator("main")).to_contain_text("1 faces, 1 images and 1 sightings would be deleted")  # type: ignore[attr-defined]
    dpo.shot("dpo-dry-run")
    dpo.clean()
    dpo.clean("/dpo/records")
    dpo.clean("/audit")
    dpo.clean("/dpo/requests/RR-2026-NOSUCHREQUEST0000")  # not found: the problem page
    dpo.close()

    admin = Watched(browser, live_server, "admin")
    admin.clean("/admin")
    page = admin.clean("/admin/users/ines")
    page.get_by_role("link", name="← Administration").click()  # type: ignore[attr-defined]
    expect(page).to_have_url(f"{live_server}/admin")
    admin.clean()
    admin.clean("/password")
    page = admin.clean("/docs")  # the API reference, a page of this site (no CDN)
    assert page.get_by_role("cell", name="/api/v1/search", exact=True).count() == 1  # type: ignore[attr-defined]
    admin.shot("api-reference")
    admin.close()


def test_an_inline_script_slipped_into_a_page_is_refused_and_reported(
    browser: object, live_server: str, staffed: Settings
) -> None:
    visit = Watched(browser, live_server, None)
    page = visit.clean("/login")
    page.evaluate(  # type: ignore[attr-defined]
        """() => {
          const script = document.createElement("script");
          script.textContent = "window.ran = true";
          document.body.append(script);
          document.querySelector("h1").setAttribute("style", "color: red");
        }"""
    )
    reported = visit.violations()
    assert page.evaluate("() => window.ran") is None  # type: ignore[attr-defined]
    assert any(line.startswith("script-src-elem refused inline") for line in reported), reported
    assert any(line.startswith("style-src-attr refused inline") for line in reported), reported
    assert page.locator("h1").evaluate("h1 => getComputedStyle(h1).color") != "rgb(255, 0, 0)"  # type: ignore[attr-defined]
    visit.close()
