"""Erasure, purges, retention, certificates and a rights request's dry run over the API, against a
real server and gallery. Each test erases from a source of its own: ``nasa`` (US), ``paris`` (FR),
``archive`` (US, 30 days' retention), ``desk`` (US)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from skimage import data as skimage_data
from sqlalchemy import select

from facetrace.core.config import Settings
from facetrace.store.catalog_models import Sighting, Source
from facetrace.store.engine import open_catalog
from support.api import ADMIN_PASSWORD, Api, assert_problem, serving_api
from support.catalogs import Catalogs
from support.ingesting import ingest
from support.photos import encode


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory, astronaut_rgb: np.ndarray, coffee_png: bytes) -> dict:
    root = tmp_path_factory.mktemp("photos")
    files = {
        "nasa": ("astronaut.jpg", encode(astronaut_rgb, "JPEG", quality=95)),
        "paris": ("mirrored.jpg", encode(astronaut_rgb[:, ::-1].copy(), "JPEG", quality=95)),
        "archive": ("coffee.png", coffee_png),
        "desk": ("cat.png", encode(skimage_data.chelsea(), "PNG")),
    }
    paths = {}
    for source, (name, data) in files.items():
        paths[source] = root / source / name
        paths[source].parent.mkdir()
        paths[source].write_bytes(data)
    return paths


@pytest.fixture(scope="module")
def api(
    tmp_path_factory: pytest.TempPathFactory, photos: dict[str, Path], catalogs: Catalogs
) -> Iterator[Api]:
    data_dir = tmp_path_factory.mktemp("erasure") / "var"
    with catalogs.fresh() as database_url:
        settings = Settings(
            data_dir=data_dir, database_url=database_url, workers=1, admin_password=ADMIN_PASSWORD
        )
        ingest(settings, [str(photos["nasa"].parent)], source_name="nasa", jurisdiction="US")
        ingest(settings, [str(photos["paris"].parent)], source_name="paris", jurisdiction="FR")
        archive = str(photos["archive"].parent)
        ingest(settings, [archive], source_name="archive", jurisdiction="US", retention_days=30)
        ingest(settings, [str(photos["desk"].parent)], source_name="desk", jurisdiction="US")
        with serving_api(settings) as api:
            yield api


def sightings(api: Api, source: str) -> int:
    return api.admin.get(f"/api/v1/sources/{source}").json()["sightings"]


@pytest.mark.slow
def test_an_erasure_is_a_dry_run_until_executed_with_a_reason(api: Api, photos: dict[str, Path]) -> None:
    dpo = api.as_role("dpo")
    scope = {"urls": [str(photos["nasa"])]}
    dry_run = dpo.post("/api/v1/erasures", json=scope)
    assert dry_run.status_code == 200, dry_run.text
    assert dry_run.json() == {
        "dry_run": True,
        "counts": {"faces": 1, "images": 1, "sightings": 1, "sources_blocked": 0},
        "blocked_sources": [],
        "locations": [str(photos["nasa"])],
        "locations_total": 1,
    }
    assert sightings(api, "nasa") == 1  # nothing deleted

    no_reason = dpo.post("/api/v1/erasures", json=scope | {"dry_run": False})
    assert "reason" in assert_problem(no_reason, 400, "/problems/refused")["detail"]
    executed = dpo.post(
        "/api/v1/erasures", json=scope | {"dry_run": False, "reason": "request RR-2026-00007"}
    )
    assert executed.status_code == 201, executed.text
    certificate = executed.json()
    assert certificate["counts"] == {"faces": 1, "images": 1, "sightings": 1, "sources_blocked": 0}
    assert certificate["reason"] == "request RR-2026-00007"
    assert certificate["executed_and_approved_by"]["roles"] == ["dpo"]
    assert "file" not in certificate  # a path on the server's disk is not the client's business
    assert sightings(api, "nasa") == 0

    downloaded = dpo.get(executed.headers["location"])
    assert downloaded.status_code == 200
    assert downloaded.json() == certificate
    assert (
        downloaded.headers["content-disposition"]
        == f'attachment; filename="{certificate["certificate"]}.json"'
    )
    assert api.as_role("auditor").get(executed.headers["location"]).status_code == 403

    erased = dpo.post("/api/v1/erasures", json=scope).json()
    assert erased["counts"]["images"] == 0  # gone for good
    assert_problem(
        dpo.get("/api/v1/erasures/certificates/ERASURE-20000101-000000-000000"), 404, "/problems/not-found"
    )
    assert_problem(dpo.get("/api/v1/erasures/certificates/..%2Fsecrets"), 404)
    missing_face = dpo.post("/api/v1/erasures", json={"face_ids": [987654]})
    assert "no face with id 987654" in assert_problem(missing_face, 400, "/problems/refused")["detail"]
    nothing = dpo.post("/api/v1/erasures", json={})
    assert "say what to erase" in assert_problem(nothing, 400, "/problems/refused")["detail"]
    assert_problem(dpo.post("/api/v1/erasures", json={"face_ids": [0]}), 422)


def test_a_purge_by_jurisdiction_deletes_and_blocks_its_sources(api: Api) -> None:
    dpo = api.as_role("dpo")
    dry_run = dpo.post("/api/v1/purges", json={"jurisdiction": "fr"})
    assert dry_run.status_code == 200, dry_run.text
    assert dry_run.json()["counts"] == {"faces": 1, "images": 1, "sightings": 1, "sources_blocked": 1}
    assert dry_run.json()["blocked_sources"] == ["paris"]
    assert api.admin.get("/api/v1/sources/paris").json()["status"] == "active"

    executed = dpo.post(
        "/api/v1/purges", json={"jurisdiction": "FR", "dry_run": False, "reason": "CNIL SAN-2026-001"}
    )
    assert executed.status_code == 201, executed.text
    assert executed.json()["scope"]["jurisdiction"] == "FR"
    paris = api.admin.get("/api/v1/sources/paris").json()
    assert paris["status"] == "blocked" and paris["sightings"] == 0
    assert executed.json()["certificate"] in paris["blocked"]


def test_retention_deletes_only_what_outlived_its_source_period(api: Api) -> None:
    dpo = api.as_role("dpo")
    assert dpo.post("/api/v1/retention", json={}).json()["counts"]["sightings"] == 0  # nothing old yet

    sessions = open_catalog(api.settings.catalog_url)
    with sessions.begin() as session:
        archive = session.scalar(select(Source).where(Source.name == "archive"))
        assert archive is not None
        for sighting in session.scalars(select(Sighting).where(Sighting.source_id == archive.id)):
            sighting.first_seen -= timedelta(days=31)
    sessions.kw["bind"].dispose()

    dry_run = dpo.post("/api/v1/retention", json={})
    assert dry_run.json()["counts"] == {"faces": 0, "images": 1, "sightings": 1, "sources_blocked": 0}
    assert sightings(api, "archive") == 1
    executed = dpo.post("/api/v1/retention", json={"dry_run": False})
    assert executed.status_code == 201, executed.text
    assert executed.json()["reason"] == "retention period over"
    assert sightings(api, "archive") == 0


def file_request(api: Api, kind: str, url: str) -> str:
    filed = api.as_role("dpo").post("/api/v1/rights", data={"kind": kind, "url": url})
    assert filed.status_code == 201, filed.text
    return filed.json()["reference"]


def test_a_rights_request_dry_run_says_what_executing_it_would_delete(
    api: Api, photos: dict[str, Path]
) -> None:
    dpo = api.as_role("dpo")
    erasure = file_request(api, "erasure", str(photos["desk"]))
    plan = dpo.get(f"/api/v1/rights/{erasure}/dry-run")
    assert plan.status_code == 200, plan.text
    assert plan.json()["reference"] == erasure
    assert plan.json()["erasure"]["counts"] == {"faces": 0, "images": 1, "sightings": 1, "sources_blocked": 0}
    assert plan.json()["erasure"]["locations"] == [str(photos["desk"])]
    assert sightings(api, "desk") == 1  # a dry run deletes nothing

    access = file_request(api, "access", str(photos["desk"]))
    assert dpo.get(f"/api/v1/rights/{access}/dry-run").json() == {"reference": access, "erasure": None}
    assert_problem(dpo.get("/api/v1/rights/RR-1999-00001/dry-run"), 404, "/problems/not-found")
