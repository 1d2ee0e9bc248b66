"""The web app in a real browser: Debian's Chromium driven by Playwright, against the real server.

The server runs in a thread on 127.0.0.1 (uvicorn, the app ``facetrace serve`` runs); the
browser logs in as each role and goes through the pages a deployment uses: an investigator asks
for an authorisation, the supervisor grants it, the investigator searches a real photo and sees
the right person first; a person files an erasure request with a selfie on the public portal;
the DPO checks the dry run and executes it; the person's face is then gone from the results.
Screenshots of each page go to ``test-artifacts/`` (not committed) for people to look at, and
each page so captured is checked with axe-core's accessibility rules.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from facetrace.core.config import Settings
from support.browser import NEEDS_CHROMIUM, PASSWORD, Visit, as_admin
from support.ingesting import ingest
from support.sites import serve

playwright_api = pytest.importorskip("playwright.sync_api")

#: Benazir Bhutto's photos 1 and 2 score 0.78 and 0.72 against photo 0 (SFace): a clear match.
PERSON = "Benazir_Bhutto"
OTHERS = 15

pytestmark = NEEDS_CHROMIUM


def test_login_refuses_a_wrong_password_and_pages_need_a_login(
    browser: object, live_server: str, staffed: Settings
) -> None:
    visit = Visit(browser, live_server, None)
    page = visit.open("/dpo")
    assert page.url.endswith("/login")  # type: ignore[attr-defined]
    page.get_by_label("User name").fill("ines")  # type: ignore[attr-defined]
    page.get_by_label("Password").fill("not her password")  # type: ignore[attr-defined]
    page.get_by_role("button", name="Log in").click()  # type: ignore[attr-defined]
    assert page.get_by_role("alert").inner_text() == "wrong user name or password"  # type: ignore[attr-defined]
    visit.shot("login")
    visit.close()

    investigator = Visit(browser, live_server, "ines")
    page = investigator.open("/dpo")
    assert "rights.handle" in page.get_by_role("alert").inner_text()  # type: ignore[attr-defined]
    nav = page.get_by_role("navigation", name="Main").inner_text()  # type: ignore[attr-defined]
    assert "Search" in nav and "Data protection" not in nav

    # A form from another site (no valid CSRF token) gets a page saying so, not the API's JSON.
    forged = page.request.post(  # type: ignore[attr-defined]
        f"{live_server}/authorisations", form={"csrf": "forged", "case_ref": "X", "justification": "y" * 12}
    )
    assert forged.status == 403 and forged.headers["content-type"].startswith("text/html")
    page.set_content(forged.text())  # type: ignore[attr-defined]
    assert "this form has expired" in page.get_by_role("alert").inner_text()  # type: ignore[attr-defined]
    assert page.get_by_role("navigation", name="Main").count() == 1  # type: ignore[attr-defined]
    investigator.close()


@pytest.mark.shared_data
def test_search_authorise_erase_through_the_pages(
    browser: object, live_server: str, staffed: Settings, shared_faces: Path, tmp_path: Path
) -> None:
    dev = shared_faces / "dev"
    person = sorted((dev / PERSON).glob("*.jpg"))
    gallery = tmp_path / "gallery"
    gallery.mkdir()
    for photo in [person[0], person[2]]:
        shutil.copy(photo, gallery)
    others = [p for p in sorted(dev.iterdir()) if p.is_dir() and p.name not in (PERSON, "_distractors")]
    for other in others[:OTHERS]:
        shutil.copy(sorted(other.glob("*.jpg"))[0], gallery)
    ingest(staffed, [str(gallery)], source_name="press", jurisdiction="FR", legal_basis="press archive")
    probe = person[1]

    investigator = Visit(browser, live_server, "ines")
    page = investigator.open("/search")
    page.get_by_label("Case reference").first.fill("CASE-7")  # type: ignore[attr-defined]
    request_form = page.locator("form[action='/authorisations']")  # type: ignore[attr-defined]
    request_form.get_by_label("Case reference").fill("CASE-7")
    request_form.get_by_label("Justification").fill("a missing person seen in press photos")
    request_form.get_by_role("button", name="Request").click()
    flash = page.get_by_role("status").first.inner_text()  # type: ignore[attr-defined]
    reference = flash.split()[1]
    assert flash.startswith("Authorisation AUTH-")

    supervisor = Visit(browser, live_server, "sam")
    page = supervisor.open("/supervisor")
    supervisor.shot("supervisor")
    page.get_by_role("button", name=f"Grant {reference}").click()  # type: ignore[attr-defined]
    assert f"Authorisation {reference} granted" in page.get_by_role("status").first.inner_text()  # type: ignore[attr-defined]
    supervisor.close()

    def search(narrowed: bool = False) -> object:
        page = investigator.open("/search")
        form = page.locator("#search-form")  # type: ignore[attr-defined]
        form.get_by_label("Photo").set_input_files(str(probe))
        page.locator(".facebox").first.wait_for()  # type: ignore[attr-defined]
        form.get_by_label("Case reference").fill("CASE-7")
        form.get_by_label("Offence").select_option("missing-person")
        form.get_by_label("Why this search is necessary").fill("find where the missing person was seen")
        form.get_by_label("Authorisation").select_option(reference)
        if narrowed:
            form.get_by_text("Narrow the search (optional)").click()
            form.get_by_label("Sources").select_option("press")
            form.get_by_label("Jurisdictions").select_option("FR")
        form.get_by_role("button", name="Search", exact=True).click()
        page.get_by_role("heading", name="Results").wait_for()  # type: ignore[attr-defined]
        return page

    page = search()
    investigator.shot("search-results")
    results = page.locator(".result")  # type: ignore[attr-defined]
    assert PERSON in results.first.locator(".places").inner_text()
    assert "Lead, not an identification." in results.first.inner_text()
    crop = results.first.locator("img.crop")
    assert crop.evaluate("img => img.complete && img.naturalWidth") == 112  # served here, not by the site
    crop_url = crop.get_attribute("src")
    page = search(narrowed=True)
    investigator.shot("search-narrowed")
    summary = " ".join(page.locator("#results-title + p").inner_text().split())  # type: ignore[attr-defined]
    assert "narrowed to sources press · jurisdictions FR." in summary
    assert PERSON in page.locator(".result .places").first.inner_text()  # type: ignore[attr-defined]

    public = Visit(browser, live_server, None, width=390)  # a phone-sized screen
    page = public.open("/portal")
    page.get_by_label("erasure").check()  # type: ignore[attr-defined]
    page.get_by_label("A photo of yourself (optional)").set_input_files(str(probe))  # type: ignore[attr-defined]
    page.get_by_label("How to reach you (e-mail or postal address)").fill("b.b@example.org")  # type: ignore[attr-defined]
    public.shot("portal")
    page.get_by_role("button", name="Send my request").click()  # type: ignore[attr-defined]
    request_reference = page.locator("#reference").inner_text()  # type: ignore[attr-defined]
    request_code = page.locator("#code").inner_text()  # type: ignore[attr-defined]
    public.shot("portal-filed")
    assert request_reference.startswith("RR-") and len(request_code) == 16

    dpo = Visit(browser, live_server, "dora")
    page = dpo.open("/dpo")
    dpo.shot("dpo-queue")
    page.get_by_role("link", name=request_reference).click()  # type: ignore[attr-defined]
    dry_run = page.get_by_role("heading", name="Dry run").locator("xpath=following-sibling::ul").inner_text()  # type: ignore[attr-defined]
    assert dry_run.count(PERSON) == 2  # both of her photos, nobody else's
    page.get_by_role("button", name="Identity and scope checked: verify").click()  # type: ignore[attr-defined]
    page.get_by_role("button", name="Execute").click()  # type: ignore[attr-defined]
    dpo.shot("dpo-executed")
    assert "certificate" in page.get_by_role("status").first.inner_text()  # type: ignore[attr-defined]
    with page.expect_download() as download:  # type: ignore[attr-defined]
        page.get_by_role("link", name="Download certificate").click()  # type: ignore[attr-defined]
    assert download.value.suggested_filename.startswith("ERASURE-")
    page.get_by_label("Is this URL or path covered by the certificate?").fill(str(gallery / person[0].name))  # type: ignore[attr-defined]
    page.get_by_role("button", name="Check the certificate").click()  # type: ignore[attr-defined]
    checked = page.get_by_role("status").first.inner_text()  # type: ignore[attr-defined]
    assert "covers this place: the images seen there were erased" in checked
    dpo.close()

    page = public.open("/portal/status")
    page.get_by_label("Follow a request: its reference").fill(request_reference)  # type: ignore[attr-defined]
    page.get_by_label("and its code").fill(request_code)  # type: ignore[attr-defined]
    page.get_by_role("button", name="Check").click()  # type: ignore[attr-defined]
    assert page.locator("#status").inner_text() == "done"  # type: ignore[attr-defined]
    public.close()

    page = search()
    places = page.locator(".result .places").all_inner_texts()  # type: ignore[attr-defined]
    assert places and not [p for p in places if PERSON in p]  # her face is gone from the results
    assert page.request.get(f"{live_server}{crop_url}").status == 404  # type: ignore[attr-defined]
    page = investigator.open("/cases")
    investigator.shot("cases")
    searches = page.get_by_role("table", name="Searches, newest first")  # type: ignore[attr-defined]
    assert searches.get_by_role("cell", name="CASE-7", exact=True).count() == 3
    investigator.close()

    admin = Visit(browser, live_server, "admin")
    page = admin.open("/admin")
    admin.shot("admin")
    assert page.get_by_role("cell", name="press archive").count() == 1  # type: ignore[attr-defined]
    admin.close()


def test_dpo_purges_start_with_a_dry_run_and_reports_open_in_the_browser(
    browser: object, live_server: str, staffed: Settings, tmp_path: Path, astronaut_jpeg: bytes
) -> None:
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "astronaut.jpg").write_bytes(astronaut_jpeg)
    ingest(
        staffed,
        [str(tmp_path / "photos")],
        source_name="nasa",
        jurisdiction="US",
        legal_basis="public domain",
    )
    dpo = Visit(browser, live_server, "dora")
    page = dpo.open("/dpo")
    purge = page.locator("form", has=page.get_by_role("heading", name="By jurisdiction"))  # type: ignore[attr-defined]
    purge.get_by_label("Country code").fill("us")
    purge.get_by_role("button", name="Dry run").click()
    purge = page.locator("form", has=page.get_by_role("heading", name="By jurisdiction"))  # type: ignore[attr-defined]
    assert (
        "1 faces, 1 images and 1 sightings would be deleted; sources blocked for good: nasa"
        in purge.inner_text()
    )
    purge.get_by_label("Reason (e.g. the decision's reference)").fill("order 2026-17 of the authority")
    purge.get_by_role("button", name="Delete for good").click()
    assert (
        "Done: deleted 1 faces, 1 images, 1 sightings, 1 sources blocked"
        in page.get_by_role("status").first.inner_text()
    )  # type: ignore[attr-defined]

    page.get_by_role("link", name="Annual usage report").click()  # type: ignore[attr-defined]
    assert "annual usage report" in page.title().lower()  # type: ignore[attr-defined]
    page = dpo.open("/dpo/records")
    assert "nasa" in page.locator("pre").inner_text()  # type: ignore[attr-defined]
    dpo.close()


def test_an_auditor_checks_the_chain_and_queries_the_log(
    browser: object, live_server: str, staffed: Settings
) -> None:
    as_admin(staffed).accounts.add_user("alex", ["auditor"], None, password=PASSWORD)
    investigator = Visit(browser, live_server, "ines")
    page = investigator.open("/search")
    form = page.locator("form[action='/authorisations']")  # type: ignore[attr-defined]
    form.get_by_label("Case reference").fill("CASE-9")
    form.get_by_label("Justification").fill("a justification in words")
    form.get_by_role("button", name="Request").click()
    investigator.close()

    auditor = Visit(browser, live_server, "alex")
    page = auditor.open("/audit")
    assert page.locator("#chain").inner_text().startswith("The hash chain holds")  # type: ignore[attr-defined]
    page.get_by_label("Case reference").fill("CASE-9")  # type: ignore[attr-defined]
    page.get_by_role("button", name="Filter").click()  # type: ignore[attr-defined]
    auditor.shot("audit")
    rows = page.locator("tbody tr").all_inner_texts()  # type: ignore[attr-defined]
    assert len(rows) == 1 and "ines" in rows[0] and "authorisation.request" in rows[0]
    with page.expect_download() as download:  # type: ignore[attr-defined]
        page.get_by_role("link", name="Export the log with its chain (JSON)").click()  # type: ignore[attr-defined]
    assert download.value.suggested_filename == "audit-export.json"
    auditor.close()


def test_an_admin_registers_a_source_and_follows_its_crawl(
    browser: object, live_server: str, staffed: Settings, astronaut_jpeg: bytes
) -> None:
    routes = {
        "/": (
            200,
            {"content-type": "text/html"},
            b'<html><body><a href="/p2">next</a><img src="/a.jpg"></body></html>',
        ),
        "/p2": (200, {"content-type": "text/html"}, b"<html><body>no photos here</body></html>"),
        "/a.jpg": (200, {"content-type": "image/jpeg"}, astronaut_jpeg),
    }
    with serve(lambda path, _headers: routes.get(path, (404, {}, b""))) as site:
        admin = Visit(browser, live_server, "admin")
        page = admin.open("/admin")
        form = page.locator("form[action='/admin/sources']")  # type: ignore[attr-defined]
        for intranet in (False, True):
            form.get_by_label("Name").fill("city-news")
            form.get_by_label("Kind").select_option("website")
            form.get_by_label("Legal basis").fill("Art. 6(1)(e) GDPR, public-interest archive")
            form.get_by_label("Jurisdiction (country code)").fill("fr")
            form.get_by_label("Seeds (one URL per line)").fill(f"{site}/")
            form.get_by_label("An intranet source: may reach private and loopback addresses").set_checked(
                intranet
            )
            form.get_by_role("button", name="Register").click()
            if not intranet:  # the test site is on 127.0.0.1: refused until the admin says it may be
                assert "--allow-private-network" in page.get_by_role("alert").first.inner_text()  # type: ignore[attr-defined]
        assert "Source city-news registered." in page.get_by_role("status").first.inner_text()  # type: ignore[attr-defined]
        assert "allowed" in page.locator("tr", has_text="city-news").first.inner_text()  # type: ignore[attr-defined]

        page.get_by_label("Source to crawl").select_option("city-news")  # type: ignore[attr-defined]
        page.get_by_role("button", name="Start crawl").click()  # type: ignore[attr-defined]
        row = page.locator("#jobs tbody tr").first  # type: ignore[attr-defined]
        playwright_api.expect(row.locator(".state")).to_have_text("done", timeout=60_000)  # refreshed live
        assert [row.locator(f".{name}").inner_text() for name in ("pages", "new_images", "faces")] == [
            "2",
            "1",
            "1",
        ]

    # A folder the operator put in the import folder, into a local source.
    assert staffed.import_dir is not None
    (staffed.import_dir / "press").mkdir()
    (staffed.import_dir / "press" / "astronaut.jpg").write_bytes(astronaut_jpeg)
    form = page.locator("form[action='/admin/sources']")  # type: ignore[attr-defined]
    form.get_by_label("Name").fill("archive")
    form.get_by_label("Kind").select_option("local")
    form.get_by_label("Legal basis").fill("Art. 6(1)(e) GDPR, own press archive")
    form.get_by_label("Jurisdiction (country code)").fill("fr")
    form.get_by_role("button", name="Register").click()
    page.get_by_label("Folder to import").fill("press")  # type: ignore[attr-defined]
    page.get_by_label("Into the local source").select_option("archive")  # type: ignore[attr-defined]
    page.get_by_role("button", name="Start import").click()  # type: ignore[attr-defined]
    assert "Import of press into archive started" in page.get_by_role("status").first.inner_text()  # type: ignore[attr-defined]
    row = page.locator("#jobs tbody tr").first  # type: ignore[attr-defined]
    playwright_api.expect(row.locator(".state")).to_have_text("done", timeout=60_000)
    assert row.locator(".images_fetched").inner_text() == "1 of 1"
    assert "import · archive · press" in row.inner_text()
    admin.shot("admin-jobs")
    admin.close()


def test_an_admin_changes_the_deployments_policy_on_the_administration_page(
    browser: object, live_server: str, staffed: Settings
) -> None:
    admin = Visit(browser, live_server, "admin")
    page = admin.open("/admin")
    page.get_by_role("textbox", name="searches_per_day", exact=True).fill("5")  # type: ignore[attr-defined]
    page.get_by_role("button", name="Change searches_per_day").click()  # type: ignore[attr-defined]
    assert "Policy searches_per_day: 50 → 5." in page.get_by_role("status").first.inner_text()  # type: ignore[attr-defined]
    page.get_by_role("textbox", name="max_expected_false_matches", exact=True).fill("nan")  # type: ignore[attr-defined]
    page.get_by_role("button", name="Change max_expected_false_matches").click()  # type: ignore[attr-defined]
    assert "finite" in page.get_by_role("alert").inner_text()  # type: ignore[attr-defined]
    assert page.get_by_role("textbox", name="max_expected_false_matches", exact=True).input_value() == "1.0"  # type: ignore[attr-defined]
    admin.shot("admin-policy")
    admin.close()
    assert as_admin(staffed).policy.show().searches_per_day == 5


def test_an_admin_manages_accounts_and_a_reset_password_is_changed_at_the_next_login(
    browser: object, live_server: str, staffed: Settings
) -> None:
    admin = Visit(browser, live_server, "admin")
    page = admin.open("/admin")
    for typed in ("Unit-B", "unit-b "):
        page.get_by_label("New unit").fill(typed)  # type: ignore[attr-defined]
        page.get_by_role("button", name="Add unit").click()  # type: ignore[attr-defined]
    assert "differs only by case" in page.get_by_role("alert").inner_text()  # type: ignore[attr-defined]
    form = page.locator("form[action='/admin/users']")  # type: ignore[attr-defined]
    form.get_by_label("Name").fill("carl")
    form.get_by_label("supervisor").check()
    form.get_by_label("Unit").select_option("Unit-B")
    form.get_by_label("Password (for logging in here)").fill(PASSWORD)
    form.get_by_role("button", name="Add user").click()
    assert "User carl created." in page.get_by_role("status").first.inner_text()  # type: ignore[attr-defined]

    page.get_by_role("link", name="ines").click()  # type: ignore[attr-defined]
    assert "nobody is given a credential for another person" in page.content()  # type: ignore[attr-defined]
    page.get_by_role("button", name="Reset password").click()  # type: ignore[attr-defined]
    shown = page.get_by_role("status").first.inner_text()  # type: ignore[attr-defined]
    temporary = shown.rsplit(": ", 1)[1].strip()
    page.get_by_role("button", name="Disable").click()  # type: ignore[attr-defined]
    assert "User ines disabled." in page.get_by_role("status").first.inner_text()  # type: ignore[attr-defined]
    page.get_by_role("button", name="Enable").click()  # type: ignore[attr-defined]
    admin.shot("admin-user")
    admin.close()

    ines = Visit(browser, live_server, None)
    page = ines.open("/login")
    page.get_by_label("User name").fill("ines")  # type: ignore[attr-defined]
    page.get_by_label("Password").fill(temporary)  # type: ignore[attr-defined]
    page.get_by_role("button", name="Log in").click()  # type: ignore[attr-defined]
    assert page.get_by_role("heading", level=1).inner_text() == "Change your password"  # type: ignore[attr-defined]
    ines.shot("password-change")
    page.get_by_label("Current password").fill(temporary)  # type: ignore[attr-defined]
    page.get_by_label("New password", exact=True).fill("ines chose this one")  # type: ignore[attr-defined]
    page.get_by_label("New password, again").fill("ines chose this one")  # type: ignore[attr-defined]
    page.get_by_role("button", name="Change password").click()  # type: ignore[attr-defined]
    assert page.url.endswith("/search")  # type: ignore[attr-defined]
    ines.close()
