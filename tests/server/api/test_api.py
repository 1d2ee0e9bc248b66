"""The HTTP API, against a real uvicorn server on 127.0.0.1 and a real catalog, over real HTTP.

One server per module (its catalog holds the astronaut photo under source ``nasa``); the tests
create the users they act as through the API itself, so they do not depend on each other's
accounts. Nothing here erases from that gallery: tests that need other settings start their own
server.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest

from facetrace.core.config import Settings
from facetrace.governance import audit
from facetrace.governance.roles import ALLOWED, Action, Role, may
from support.api import ADMIN_PASSWORD, PROBLEM, PURPOSE, Api, assert_problem, serving_api
from support.catalogs import Catalogs
from support.ingesting import ingest

MAX_IMAGE_BYTES = 1_000_000


# --- a real server ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, astronaut_jpeg: bytes, catalogs: Catalogs) -> Iterator[Api]:
    root = tmp_path_factory.mktemp("api")
    photo = root / "photos" / "astronaut.jpg"
    photo.parent.mkdir()
    photo.write_bytes(astronaut_jpeg)
    with catalogs.fresh() as database_url:
        settings = Settings(
            data_dir=root / "var",
            database_url=database_url,
            workers=1,
            admin_password=ADMIN_PASSWORD,
            max_image_bytes=MAX_IMAGE_BYTES,
        )
        ingest(settings, [str(photo.parent)], source_name="nasa", jurisdiction="US")
        with serving_api(settings) as api:
            yield api


def search(
    client: httpx.Client, photo: bytes, *, content_type: str = "image/jpeg", **fields: str
) -> httpx.Response:
    return client.post(
        "/api/v1/search",
        data=PURPOSE | fields,
        files={"photo": ("probe.jpg", photo, content_type)},
    )


def audit_entries(api: Api, action: str) -> list[dict]:
    export = api.as_role("auditor").get("/api/v1/audit/export")
    assert export.status_code == 200, export.text
    return [e for e in export.json()["entries"] if e["action"] == action]


# --- operations -------------------------------------------------------------------------------------


def test_health(api: Api) -> None:
    response = httpx.get(f"{api.url}/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_openapi_describes_every_route_with_models(api: Api) -> None:
    spec = httpx.get(f"{api.url}/openapi.json").json()
    assert set(spec["paths"]) == {
        "/health",
        "/metrics",
        "/api/v1/auth/token",
        "/api/v1/auth/password",
        "/api/v1/me",
        "/api/v1/units",
        "/api/v1/users",
        "/api/v1/users/{name}",
        "/api/v1/users/{name}/password-reset",
        "/api/v1/users/{name}/tokens",
        "/api/v1/tokens/{token_id}",
        "/api/v1/search",
        "/api/v1/faces/{face_id}/crop",
        "/api/v1/authorisations",
        "/api/v1/authorisations/{reference}/decision",
        "/api/v1/authorisations/external",
        "/api/v1/policy",
        "/api/v1/sources",
        "/api/v1/sources/{name}",
        "/api/v1/sources/{name}/pause",
        "/api/v1/sources/{name}/resume",
        "/api/v1/sources/{name}/private-network",
        "/api/v1/jobs",
        "/api/v1/jobs/{job_id}",
        "/api/v1/jobs/{job_id}/cancel",
        "/api/v1/audit/verify",
        "/api/v1/audit/entries",
        "/api/v1/audit/export",
        "/api/v1/audit/public-key",
        "/api/v1/audit/anchor",
        "/api/v1/rights",
        "/api/v1/rights/{reference}",
        "/api/v1/rights/{reference}/status",
        "/api/v1/rights/{reference}/dry-run",
        "/api/v1/rights/{reference}/execute",
        "/api/v1/rights/{reference}/report",
        "/api/v1/erasures",
        "/api/v1/erasures/certificates/{reference}",
        "/api/v1/erasures/certificates/{reference}/check",
        "/api/v1/purges",
        "/api/v1/retention",
        "/api/v1/reports/usage",
        "/api/v1/reports/annual/{year}/{file}",
        "/api/v1/reports/processing",
    }
    search_body = spec["paths"]["/api/v1/search"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert {"photo", "case_ref", "offence", "justification", "authorisation_ref", "k", "face"} <= set(
        search_body["schema"]["properties"]
    )
    assert "SearchResponse" in spec["components"]["schemas"]
    assert "Problem" in spec["components"]["schemas"]
    assert httpx.get(f"{api.url}/docs").status_code == 200


def test_metrics_count_requests_by_route_and_show_the_gallery(api: Api) -> None:
    httpx.get(f"{api.url}/health")
    api.admin.get("/api/v1/sources/nothing-here")
    response = api.as_role("auditor").get("/metrics")  # anonymously: 401 (test_cli_governed.py)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert re.search(r'facetrace_http_requests_total\{method="GET",route="/health",status="200"\} \d', text)
    # Routes are labelled by their template, not by the path asked for.
    assert 'route="/api/v1/sources/{name}"' in text
    assert "nothing-here" not in text
    assert 'facetrace_http_request_duration_seconds_count{method="GET",route="/health"}' in text
    assert 'facetrace_gallery{kind="faces"} 1.0' in text
    assert 'facetrace_gallery{kind="sources"} 1.0' in text


def test_unknown_route_is_a_problem(api: Api) -> None:
    assert_problem(httpx.get(f"{api.url}/api/v1/nowhere"), 404)


# --- who is acting ----------------------------------------------------------------------------------


def test_first_admin_is_created_at_start_and_logs_in(api: Api) -> None:
    assert api.first_admins == [("admin", None)]  # the password came from the settings
    token = api.log_in("admin", ADMIN_PASSWORD)
    assert token.status_code == 200
    assert token.json()["token_type"] == "bearer"
    assert token.json()["access_token"].startswith("ftk_")
    me = api.client(token.json()["access_token"]).get("/api/v1/me")
    assert me.json() == {"name": "admin", "roles": ["admin"], "unit": None}
    assert_problem(api.log_in("admin", "wrong"), 401, "/problems/authentication")


def test_requests_need_a_valid_token(api: Api) -> None:
    missing = assert_problem(httpx.get(f"{api.url}/api/v1/sources"), 401, "/problems/authentication")
    assert "Bearer" in missing["detail"]
    unknown = api.client("ftk_not-a-token").get("/api/v1/sources")
    assert_problem(unknown, 401, "/problems/authentication")
    assert unknown.headers["www-authenticate"] == "Bearer"


IVY_PASSWORD = "ivy's own passphrase"


def test_users_and_tokens(api: Api) -> None:
    admin = api.admin
    if "north" not in admin.get("/api/v1/units").json():
        assert admin.post("/api/v1/units", json={"name": "north"}).status_code == 201
    created = admin.post(
        "/api/v1/users",
        json={"name": "ivy", "roles": ["investigator"], "unit": "north", "password": IVY_PASSWORD},
    )
    assert created.status_code == 201
    assert created.json() == {
        "name": "ivy",
        "roles": ["investigator"],
        "unit": "north",
        "bootstrap": False,
        "service": False,
        "disabled": False,
        "must_change_password": False,
    }
    assert "ivy" in [u["name"] for u in admin.get("/api/v1/users").json()]
    assert_problem(
        admin.post("/api/v1/users", json={"name": "ivy", "roles": ["dpo"]}), 400, "/problems/refused"
    )
    assert_problem(admin.post("/api/v1/users", json={"name": "x", "roles": ["king"]}), 422)

    # Ivy logs in with her password, makes herself a token, and revokes it.
    ivy = api.client(api.log_in("ivy", IVY_PASSWORD).json()["access_token"])
    issued = ivy.post("/api/v1/users/ivy/tokens", json={"name": "laptop", "days": 30})
    assert issued.status_code == 201
    assert issued.json()["user"] == "ivy"
    laptop = api.client(issued.json()["token"])
    assert laptop.get("/api/v1/me").json()["name"] == "ivy"
    assert ivy.delete(f"/api/v1/tokens/{issued.json()['id']}").status_code == 204
    assert_problem(laptop.get("/api/v1/me"), 401, "/problems/authentication")

    # Nobody is given a token for another person, not even by an admin.
    assert_problem(
        ivy.post("/api/v1/users/admin/tokens", json={"name": "x"}), 403, "/problems/permission-denied"
    )
    by_admin = admin.post("/api/v1/users/ivy/tokens", json={"name": "by-admin"})
    assert_problem(by_admin, 403, "/problems/permission-denied")
    assert_problem(admin.delete("/api/v1/tokens/999999"), 404, "/problems/not-found")
    assert_problem(admin.post("/api/v1/users/nobody/tokens", json={}), 404, "/problems/not-found")


# --- search -----------------------------------------------------------------------------------------


def test_search_returns_leads_with_provenance_and_is_audited(api: Api, astronaut_jpeg: bytes) -> None:
    response = search(api.as_role("investigator"), astronaut_jpeg, k="5")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["gallery_size"] == 1
    assert body["probe"]["sha256"] == hashlib.sha256(astronaut_jpeg).hexdigest()
    (hit,) = body["results"]
    assert hit["rank"] == 1
    assert hit["score"] > 0.9  # the very photo in the gallery
    assert hit["expected_false_matches"] is None  # never calibrated
    assert hit["face_id"] >= 1
    (sighting,) = hit["sightings"]
    assert sighting["location"].endswith("astronaut.jpg")
    assert sighting["source"] == "nasa"
    assert sighting["first_seen"] and sighting["last_seen"]

    done = [e for e in audit_entries(api, "search") if e["outcome"] == "done"]
    assert done[-1]["probe_sha256"] == body["probe"]["sha256"]
    assert done[-1]["case_ref"] == PURPOSE["case_ref"]
    assert done[-1]["result_face_ids"] == [hit["face_id"]]


def test_a_search_narrowed_to_sources_or_jurisdictions(api: Api, astronaut_jpeg: bytes) -> None:
    investigator = api.as_role("investigator")
    narrowed = search(investigator, astronaut_jpeg, source=["nasa"], jurisdiction=["us"]).json()
    assert narrowed["scope"] == {"sources": ["nasa"], "jurisdictions": ["US"]}
    assert [hit["sightings"][0]["source"] for hit in narrowed["results"]] == ["nasa"]
    elsewhere = search(investigator, astronaut_jpeg, jurisdiction="FR").json()
    assert (elsewhere["scope"]["jurisdictions"], elsewhere["results"]) == (["FR"], [])
    problem = assert_problem(search(investigator, astronaut_jpeg, source="nsa"), 400, "/problems/refused")
    assert "no source named nsa" in problem["detail"]
    assert_problem(search(investigator, astronaut_jpeg, jurisdiction="USA"), 400, "/problems/refused")
    # The malformed country code is refused like any malformed field, before anything is searched.
    narrowed_entry, elsewhere_entry, typo_entry = audit_entries(api, "search")[-3:]
    assert narrowed_entry["details"]["scope"] == narrowed["scope"]
    assert elsewhere_entry["details"]["scope"] == elsewhere["scope"]
    assert (typo_entry["outcome"], typo_entry["details"]) == ("failed", {"error": "no source named nsa"})


def test_a_result_links_its_face_crop_for_the_searcher_alone(api: Api, astronaut_jpeg: bytes) -> None:
    investigator = api.as_role("investigator")
    (hit,) = search(investigator, astronaut_jpeg).json()["results"]
    assert hit["crop_url"] == f"/api/v1/faces/{hit['face_id']}/crop"

    crop = investigator.get(hit["crop_url"])
    assert crop.status_code == 200
    assert crop.headers["content-type"] == "image/jpeg"
    assert "no-store" in crop.headers["cache-control"]  # erased faces must not live on in caches
    picture = cv2.imdecode(np.frombuffer(crop.content, np.uint8), cv2.IMREAD_COLOR)
    assert picture.shape == (112, 112, 3)

    # Not a way to browse the gallery: only whoever's search returned the face sees it.
    assert_problem(api.as_role("investigator").get(hit["crop_url"]), 404, "/problems/not-found")
    assert_problem(api.admin.get(hit["crop_url"]), 403, "/problems/permission-denied")
    assert_problem(investigator.get("/api/v1/faces/999999/crop"), 404, "/problems/not-found")


def test_search_without_its_purpose_is_refused_and_recorded(api: Api, astronaut_jpeg: bytes) -> None:
    investigator = api.as_role("investigator")
    response = search(investigator, astronaut_jpeg, justification="")
    problem = assert_problem(response, 422, "/problems/purpose-missing")
    assert "justification" in problem["detail"]
    refused = [e for e in audit_entries(api, "search") if e["outcome"] == "refused"]
    assert refused[-1]["probe_sha256"] == hashlib.sha256(astronaut_jpeg).hexdigest()


def test_search_fields_are_validated(api: Api, astronaut_jpeg: bytes) -> None:
    investigator = api.as_role("investigator")
    problem = assert_problem(search(investigator, astronaut_jpeg, k="0"), 422)
    assert problem["errors"][0]["loc"] == ["body", "k"]
    assert_problem(search(investigator, astronaut_jpeg, face="2"), 422, "/problems/no-face")
    no_photo = investigator.post(
        "/api/v1/search", data=PURPOSE, files={"other": ("a.jpg", b"x", "image/jpeg")}
    )
    assert "photo" in assert_problem(no_photo, 422)["detail"]


# --- upload limits: checked before anything is decoded, and never a 500 --------------------------------


def multipart(payload: bytes, content_type: str = "image/jpeg") -> tuple[bytes, str]:
    boundary = "facetrace-test-boundary"
    body = (
        (
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="photo"; filename="probe.jpg"\r\n'
            f"Content-Type: {content_type}\r\n\r\n"
        ).encode()
        + payload
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


def test_an_upload_over_the_limit_is_refused_from_its_declared_length(api: Api) -> None:
    oversized = b"\xff\xd8\xff" + bytes(MAX_IMAGE_BYTES + 300_000)
    response = search(api.as_role("investigator"), oversized)
    assert "larger than the limit" in assert_problem(response, 413)["detail"]


def test_an_upload_over_the_limit_is_refused_while_it_streams(api: Api) -> None:
    body, content_type = multipart(b"\xff\xd8\xff" + bytes(MAX_IMAGE_BYTES))

    def chunks() -> Iterator[bytes]:  # no Content-Length: sent chunked
        for start in range(0, len(body), 64 * 1024):
            yield body[start : start + 64 * 1024]

    response = api.as_role("investigator").post(
        "/api/v1/search", content=chunks(), headers={"Content-Type": content_type}
    )
    assert "'photo' is larger than the limit" in assert_problem(response, 413)["detail"]


def test_a_file_that_is_not_declared_an_image_is_refused(api: Api, astronaut_jpeg: bytes) -> None:
    investigator = api.as_role("investigator")
    problem = assert_problem(search(investigator, astronaut_jpeg, content_type="text/plain"), 415)
    assert "image/*" in problem["detail"]
    json_body = investigator.post("/api/v1/search", json=PURPOSE)
    assert "multipart/form-data" in assert_problem(json_body, 415)["detail"]


@pytest.mark.parametrize(
    ("name", "make", "message"),
    [
        ("garbage", lambda jpeg: b"\xff\xd8\xff\xe0" + bytes(range(256)) * 40, "not an image"),
        ("truncated", lambda jpeg: jpeg[: len(jpeg) // 3], "corrupt or truncated"),
        ("text", lambda jpeg: b"just some words", "not an image"),
        ("empty", lambda jpeg: b"", "empty"),
    ],
)
def test_a_broken_image_gets_a_clear_400(
    api: Api, astronaut_jpeg: bytes, name: str, make: Callable[[bytes], bytes], message: str
) -> None:
    response = search(api.as_role("investigator"), make(astronaut_jpeg))
    assert message in assert_problem(response, 400, "/problems/unusable-image")["detail"]


def test_a_photo_without_a_face(api: Api, coffee_png: bytes) -> None:
    response = search(api.as_role("investigator"), coffee_png, content_type="image/png")
    assert_problem(response, 422, "/problems/no-face")


def test_a_malformed_multipart_body_is_a_400(api: Api) -> None:
    body, content_type = multipart(b"\xff\xd8\xff")
    response = api.as_role("investigator").post(
        "/api/v1/search",
        content=body.replace(b"\r\n\r\n", b"\r\nno-colon-header\r\n\r\n", 1),
        headers={"Content-Type": content_type},
    )
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == PROBLEM


# --- authorisations ---------------------------------------------------------------------------------


def test_authorisations_request_list_decide(api: Api) -> None:
    investigator_name, investigator = api.new_user("investigator", unit="east")
    supervisor = api.as_role("supervisor", unit="east")
    request = investigator.post(
        "/api/v1/authorisations", json={"case_ref": "CASE-9", "justification": "child missing this morning"}
    )
    assert request.status_code == 201
    reference = request.json()["reference"]
    assert reference.startswith("AUTH-")

    pending = supervisor.get("/api/v1/authorisations", params={"pending": "true"}).json()
    assert [a["reference"] for a in pending] == [reference]
    assert pending[0]["requested_by"] == investigator_name
    granted = supervisor.post(f"/api/v1/authorisations/{reference}/decision", json={"grant": True})
    assert granted.json() == {"reference": reference, "status": "granted", "search_results_deleted": 0}
    assert supervisor.get("/api/v1/authorisations", params={"pending": "true"}).json() == []
    assert investigator.get("/api/v1/authorisations").json()[0]["status"] == "granted"

    again = supervisor.post(
        f"/api/v1/authorisations/{reference}/decision", json={"grant": False, "note": "no"}
    )
    assert "already granted" in assert_problem(again, 403, "/problems/authorisation")["detail"]
    other_unit = api.as_role("supervisor", unit="west")
    second = investigator.post(
        "/api/v1/authorisations", json={"case_ref": "CASE-10", "justification": "another case entirely"}
    ).json()["reference"]
    refused = other_unit.post(f"/api/v1/authorisations/{second}/decision", json={"grant": True})
    unknown = other_unit.post("/api/v1/authorisations/AUTH-2026-99999/decision", json={"grant": True})
    detail = assert_problem(refused, 404, "/problems/not-found")["detail"]  # as if it did not exist
    assert detail.replace(second, "REF") == assert_problem(unknown, 404, "/problems/not-found")[
        "detail"
    ].replace("AUTH-2026-99999", "REF")

    external = supervisor.post(
        "/api/v1/authorisations/external",
        json={
            "case_ref": "CASE-11",
            "authority": "Tribunal judiciaire",
            "reference": "JLD-114",
            "decided_on": "2026-11-02",
        },
    )
    assert external.status_code == 201
    listed = {a["reference"]: a for a in supervisor.get("/api/v1/authorisations").json()}
    assert listed[external.json()["reference"]]["status"] == "granted"


# --- sources ----------------------------------------------------------------------------------------


def test_sources_add_list_show_pause_resume_remove(api: Api) -> None:
    admin = api.admin
    added = admin.post(
        "/api/v1/sources",
        json={
            "name": "city-news",
            "kind": "website",
            "legal_basis": "Art. 6(1)(e) GDPR, public-interest archive",
            "jurisdiction": "FR",
            "seeds": ["https://news.example/events/"],
            "max_pages": 50,
        },
    )
    assert added.status_code == 201, added.text
    assert added.json()["allowed"] == ["news.example"]
    assert added.json()["status"] == "active"
    assert {s["name"] for s in admin.get("/api/v1/sources").json()} >= {"nasa", "city-news"}

    assert admin.post("/api/v1/sources/city-news/pause").status_code == 204
    assert admin.get("/api/v1/sources/city-news").json()["status"] == "paused"
    assert admin.post("/api/v1/sources/city-news/resume").status_code == 204
    assert admin.get("/api/v1/sources/city-news").json()["status"] == "active"
    assert admin.delete("/api/v1/sources/city-news").status_code == 204
    gone = admin.get("/api/v1/sources/city-news")
    assert gone.is_client_error
    assert "no source named" in gone.json()["detail"]

    social = admin.post(
        "/api/v1/sources",
        json={
            "name": "fb",
            "kind": "website",
            "legal_basis": "none",
            "jurisdiction": "US",
            "seeds": ["https://facebook.com/someone"],
        },
    )
    assert "social network" in assert_problem(social, 400, "/problems/refused")["detail"]
    holding = assert_problem(admin.delete("/api/v1/sources/nasa"), 400, "/problems/refused")
    assert "still holds images" in holding["detail"]


# --- audit ------------------------------------------------------------------------------------------


def test_audit_verify_and_an_export_an_outside_body_can_check(api: Api) -> None:
    auditor = api.as_role("auditor")
    verified = auditor.get("/api/v1/audit/verify").json()
    assert verified["ok"] is True
    assert verified["entries"] > 0
    document = auditor.get("/api/v1/audit/export").json()
    assert document["format"] == "facetrace-audit-export/2"
    assert audit.check_export(document).ok
    part = auditor.get("/api/v1/audit/export", params={"from": 2, "to": 3}).json()
    assert [e["id"] for e in part["entries"]] == [2, 3]
    assert audit.check_export(part).ok
    assert_problem(auditor.get("/api/v1/audit/export", params={"from": 0}), 422)


def test_audit_entries_by_action_and_case(api: Api) -> None:
    investigator = api.as_role("investigator")
    asked = investigator.post(
        "/api/v1/authorisations", json={"case_ref": "CASE-Q", "justification": "a justification in words"}
    )
    assert asked.status_code == 201
    found = api.as_role("auditor").get(
        "/api/v1/audit/entries", params={"action": "authorisation.", "case_ref": "CASE-Q"}
    )
    assert [(e["action"], e["case_ref"], e["outcome"]) for e in found.json()] == [
        ("authorisation.request", "CASE-Q", "done")
    ]


def test_a_supervisor_exports_only_their_unit(api: Api) -> None:
    supervisor = api.as_role("supervisor", unit="south")
    document = supervisor.get("/api/v1/audit/export").json()
    assert document["unit"] == "south"
    assert {e["unit"] for e in document["entries"]} <= {"south"}
    no_unit = api.as_role("supervisor", unit=None).get("/api/v1/audit/export")
    assert "no unit" in assert_problem(no_unit, 403, "/problems/permission-denied")["detail"]


# --- rights requests --------------------------------------------------------------------------------


def test_rights_requests_file_queue_verify_execute(api: Api, astronaut_jpeg: bytes) -> None:
    dpo = api.as_role("dpo")
    filed = dpo.post(
        "/api/v1/rights",
        data={"kind": "access", "contact": "by post"},
        files={"photo": ("selfie.jpg", astronaut_jpeg, "image/jpeg")},
    )
    assert filed.status_code == 201, filed.text
    reference = filed.json()["reference"]
    queued = {r["reference"]: r for r in dpo.get("/api/v1/rights").json()}
    assert queued[reference]["status"] == "received"
    assert dpo.get(f"/api/v1/rights/{reference}").json()["status"] == "received"
    assert queued[reference]["kind"] == "access"

    assert dpo.post(f"/api/v1/rights/{reference}/status", json={"status": "verified"}).status_code == 204
    produced = dpo.post(f"/api/v1/rights/{reference}/execute")
    assert produced.status_code == 200, produced.text
    assert produced.json()["faces_held"] == 1
    closed = {r["reference"]: r for r in dpo.get("/api/v1/rights", params={"all": "true"}).json()}
    assert closed[reference]["status"] == "done"
    assert [event["status"] for event in closed[reference]["history"]][-1] == "done"

    by_url = dpo.post(
        "/api/v1/rights",
        data={"kind": "erasure", "url": ["https://a.example/1.jpg", "https://a.example/2.jpg"]},
    )
    assert by_url.status_code == 201, by_url.text
    second = by_url.json()["reference"]
    no_reason = dpo.post(f"/api/v1/rights/{second}/status", json={"status": "refused"})
    assert "reason" in assert_problem(no_reason, 400, "/problems/refused")["detail"]
    refused = dpo.post(
        f"/api/v1/rights/{second}/status", json={"status": "refused", "note": "not the person"}
    )
    assert refused.status_code == 204
    assert_problem(dpo.post(f"/api/v1/rights/{second}/execute"), 400, "/problems/refused")
    assert_problem(dpo.post("/api/v1/rights/RR-1999-00001/execute"), 404, "/problems/not-found")
    assert_problem(dpo.post("/api/v1/rights", data={"kind": "curiosity"}), 400, "/problems/refused")
    assert_problem(dpo.post("/api/v1/rights", data={"contact": "by post"}), 422)


# --- the role table over HTTP -----------------------------------------------------------------------


def _search(api: Api, client: httpx.Client, astronaut: bytes) -> httpx.Response:
    return search(client, astronaut)


MATRIX_REQUEST = {"case_ref": "CASE-M", "justification": "the role matrix test"}


def _request_authorisation(api: Api, client: httpx.Client, astronaut: bytes) -> httpx.Response:
    return client.post("/api/v1/authorisations", json=MATRIX_REQUEST)


def _decide_authorisation(api: Api, client: httpx.Client, astronaut: bytes) -> httpx.Response:
    requester = api.as_role("investigator")
    made = requester.post("/api/v1/authorisations", json=MATRIX_REQUEST)
    return client.post(f"/api/v1/authorisations/{made.json()['reference']}/decision", json={"grant": True})


def _manage_sources(api: Api, client: httpx.Client, astronaut: bytes) -> httpx.Response:
    name = f"local-{next(api.names)}"
    source = {"name": name, "legal_basis": "Art. 6(1)(e) GDPR, test archive", "jurisdiction": "US"}
    return client.post("/api/v1/sources", json=source)


def _file_rights_request(api: Api, client: httpx.Client, astronaut: bytes) -> httpx.Response:
    return client.post("/api/v1/rights", data={"kind": "erasure", "url": "https://a.example/m.jpg"})


def _rights_dry_run(api: Api, client: httpx.Client, astronaut: bytes) -> httpx.Response:
    filed = _file_rights_request(api, api.as_role("dpo"), astronaut)
    return client.get(f"/api/v1/rights/{filed.json()['reference']}/dry-run")


def _get(path: str) -> Callable[[Api, httpx.Client, bytes], httpx.Response]:
    return lambda api, client, _: client.get(path)


def _post(path: str, body: dict) -> Callable[[Api, httpx.Client, bytes], httpx.Response]:
    return lambda api, client, _: client.post(path, json=body)


def _put(path: str, body: dict) -> Callable[[Api, httpx.Client, bytes], httpx.Response]:
    return lambda api, client, _: client.put(path, json=body)


#: Real calls, at least one per action the API offers: (action, call, status when allowed). Nothing
#: here deletes: erasures, purges and retention are dry runs.
CALLS: dict[str, tuple[Action, Callable[[Api, httpx.Client, bytes], httpx.Response], int]] = {
    "search": (Action.SEARCH, _search, 200),
    "request an authorisation": (Action.REQUEST_AUTHORISATION, _request_authorisation, 201),
    "decide an authorisation": (Action.DECIDE_AUTHORISATION, _decide_authorisation, 200),
    "add a source": (Action.MANAGE_SOURCES, _manage_sources, 201),
    "list crawl jobs": (Action.MANAGE_SOURCES, _get("/api/v1/jobs"), 200),
    "list users": (Action.MANAGE_USERS, _get("/api/v1/users"), 200),
    "export the audit log": (Action.READ_AUDIT, _get("/api/v1/audit/export"), 200),
    "query the audit log": (Action.READ_AUDIT, _get("/api/v1/audit/entries"), 200),
    "the rights queue": (Action.HANDLE_RIGHTS, _get("/api/v1/rights"), 200),
    "a rights request's dry run": (Action.HANDLE_RIGHTS, _rights_dry_run, 200),
    "file a rights request": (Action.FILE_RIGHTS_REQUEST, _file_rights_request, 201),
    "list sources": (Action.VIEW_STATS, _get("/api/v1/sources"), 200),
    "read the metrics": (Action.READ_METRICS, _get("/metrics"), 200),
    "erasure dry run": (Action.ERASE, _post("/api/v1/erasures", {"sources": ["nasa"]}), 200),
    "purge dry run": (Action.ERASE, _post("/api/v1/purges", {"jurisdiction": "US"}), 200),
    "retention dry run": (Action.ERASE, _post("/api/v1/retention", {}), 200),
    "usage report": (Action.VIEW_REPORTS, _get("/api/v1/reports/usage"), 200),
    "annual report": (Action.VIEW_REPORTS, _get("/api/v1/reports/annual/2026/report.json"), 200),
    "records of processing": (Action.VIEW_RECORDS, _get("/api/v1/reports/processing"), 200),
    "change the policy": (
        Action.CONFIGURE,
        _put("/api/v1/policy", {"name": "searches_per_day", "value": 50}),  # the value it has
        200,
    ),
}
#: Actions with no endpoint (none left: CONFIGURE, calibration's on the command line, is also the policy's).
NOT_IN_THE_API: set[Action] = set()


def test_the_matrix_covers_every_action_the_api_offers() -> None:
    assert set(ALLOWED) == {action for action, _, _ in CALLS.values()} | NOT_IN_THE_API


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("call", list(CALLS))
def test_each_role_may_do_exactly_what_the_table_allows(
    api: Api, astronaut_jpeg: bytes, call: str, role: Role
) -> None:
    action, make, allowed_status = CALLS[call]
    response = make(api, api.as_role(role.value), astronaut_jpeg)
    if may(frozenset({role}), action):
        assert response.status_code == allowed_status, response.text
    else:
        problem = assert_problem(response, 403, "/problems/permission-denied")
        assert action.value in problem["detail"]


# --- settings that need a server of their own -------------------------------------------------------


def test_a_user_over_the_daily_quota_gets_429(tmp_path: Path, astronaut_jpeg: bytes) -> None:
    settings = Settings(
        data_dir=tmp_path / "var", workers=1, admin_password=ADMIN_PASSWORD, searches_per_day=1
    )
    photo = tmp_path / "photos" / "astronaut.jpg"
    photo.parent.mkdir()
    photo.write_bytes(astronaut_jpeg)
    ingest(settings, [str(photo.parent)], source_name="nasa", jurisdiction="US")
    with serving_api(settings) as api:
        investigator = api.as_role("investigator")
        assert search(investigator, astronaut_jpeg).status_code == 200
        assert_problem(search(investigator, astronaut_jpeg), 429, "/problems/quota-exceeded")


@pytest.mark.slow
def test_facetrace_serve_creates_the_first_admin_and_prints_its_password_once(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = os.environ | {"FACETRACE_DATA_DIR": str(tmp_path / "var"), "PYTHONUNBUFFERED": "1"}
    log = tmp_path / "server.log"
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "facetrace", "serve", "--port", str(port)],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=env,
        )
    try:
        assert process.stdout is not None
        password = None
        for line in process.stdout:
            if match := re.fullmatch(r"password: (\S+)\n", line):
                password = match[1]
                break
        assert password, log.read_text()
        url = f"http://127.0.0.1:{port}"
        while True:
            assert process.poll() is None, log.read_text()
            try:
                if httpx.get(f"{url}/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        token = httpx.post(f"{url}/api/v1/auth/token", data={"username": "admin", "password": password})
        assert token.status_code == 200, token.text
    finally:
        process.terminate()
        process.wait()
    # uvicorn shuts down gracefully on SIGTERM (the engine is disposed), then re-raises the signal.
    assert "Application shutdown complete" in log.read_text()

    # A second start finds the admin and prints no password.
    again = subprocess.Popen(
        [sys.executable, "-m", "facetrace", "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        assert again.stdout is not None
        seen = []
        for line in again.stdout:
            seen.append(line)
            if "Uvicorn running" in line or "Application startup complete" in line:
                break
        assert not any("password" in line for line in seen), seen
    finally:
        again.terminate()
        again.wait()
