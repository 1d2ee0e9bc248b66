"""Folder imports as background jobs: only inside FACETRACE_IMPORT_DIR, resumable, and refused
before they start when they could not run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from facetrace.collect.sources import SourceSpec
from facetrace.core.config import Settings
from facetrace.core.errors import FacetraceError, NotFoundError
from facetrace.governance.service import Governance
from facetrace.ingest.import_dir import images_in_import_dir
from facetrace.store.catalog_models import Sighting
from support.api import ADMIN_PASSWORD, Api, assert_problem, serving_api
from support.jobs import add_local_source, finished, start_import, wait_for
from support.photos import encode

PHOTOS = 6


@pytest.fixture
def import_dir(tmp_path: Path, astronaut_rgb: np.ndarray) -> Path:
    """imports/press holds six portraits, a corrupt file and a link to a photo outside imports/."""
    root = tmp_path / "imports"
    press = root / "press" / "2026"
    press.mkdir(parents=True)
    for n in range(PHOTOS):
        crop = np.ascontiguousarray(astronaut_rgb[n * 4 : 400 + n * 4, n * 4 :])
        (press / f"{n}.jpg").write_bytes(encode(crop, "JPEG"))
    (press / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    secret = tmp_path / "elsewhere" / "secret.jpg"
    secret.parent.mkdir()
    secret.write_bytes(encode(astronaut_rgb[:, ::-1].copy(), "JPEG"))
    (press / "link.jpg").symlink_to(secret)
    return root


@pytest.fixture
def api(tmp_path: Path, import_dir: Path) -> Iterator[Api]:
    settings = Settings(
        data_dir=tmp_path / "var", workers=1, admin_password=ADMIN_PASSWORD, import_dir=import_dir
    )
    with serving_api(settings) as api:
        yield api


def test_an_import_job_reads_a_folder_inside_the_import_dir_once(api: Api) -> None:
    admin = api.admin
    add_local_source(admin)
    started = start_import(admin, "press")
    assert started.status_code == 202, started.text
    job = wait_for(admin, started.json()["id"], finished)
    assert job["state"] == "done", job
    assert (job["kind"], job["source"], job["folder"]) == ("import", "archive", "press")
    progress = job["progress"]
    assert progress["images_total"] == PHOTOS + 2 and progress["images_fetched"] == PHOTOS + 2
    assert (progress["new_images"], progress["faces"]) == (PHOTOS, PHOTOS)
    assert progress["errors"] == 2 and progress["completed"]  # the corrupt file, and the link out
    assert admin.get("/api/v1/sources/archive").json()["sightings"] == PHOTOS

    again = wait_for(admin, start_import(admin, ".").json()["id"], finished)
    assert again["progress"]["new_images"] == 0  # the same bytes: only their sightings are checked
    assert admin.get("/api/v1/sources/archive").json()["sightings"] == PHOTOS

    entries = api.as_role("auditor").get("/api/v1/audit/export").json()["entries"]
    started = [e["details"] for e in entries if e["action"] == "import.started"]
    assert [(i["job"], i["folder"]) for i in started] == [(job["id"], "press"), (again["id"], ".")]
    imports = [e["details"] for e in entries if e["action"] == "sources.manage"]
    assert [(i["job"], i["folder"], i["new_images"], i["failures"]) for i in imports] == [
        (job["id"], "press", 6, 2),
        (again["id"], ".", 0, 2),
    ]


def test_an_import_never_reads_outside_the_import_dir(api: Api, tmp_path: Path) -> None:
    admin = api.admin
    add_local_source(admin)
    for folder in ("..", "../elsewhere", str(tmp_path / "elsewhere"), "press/../../elsewhere"):
        problem = assert_problem(start_import(admin, folder), 400, "/problems/refused")
        assert "outside the import folder" in problem["detail"]
    assert_problem(start_import(admin, "nope"), 404, "/problems/not-found")
    assert_problem(start_import(admin, "bad\x00name"), 400, "/problems/refused")
    assert admin.get("/api/v1/jobs").json() == []


def test_what_an_import_refuses_before_it_starts(api: Api) -> None:
    admin = api.admin
    add_local_source(admin)
    website = {
        "name": "site",
        "kind": "website",
        "legal_basis": "test site of the suite",
        "jurisdiction": "FR",
    }
    website["seeds"] = ["https://example.org/"]
    assert admin.post("/api/v1/sources", json=website).status_code == 201
    problem = assert_problem(start_import(admin, "press", source="site"), 400, "/problems/refused")
    assert "only local sources are imported from folders" in problem["detail"]
    assert admin.post("/api/v1/sources/archive/pause").status_code == 204
    assert "paused" in assert_problem(start_import(admin, "press"), 400, "/problems/refused")["detail"]
    assert_problem(admin.post("/api/v1/jobs", json={"kind": "import", "source": "archive"}), 422)
    crawl_with_folder = {"source": "site", "folder": "press"}
    assert_problem(admin.post("/api/v1/jobs", json=crawl_with_folder), 422)
    import_with_rate = {"kind": "import", "source": "archive", "folder": "press", "rate": 2}
    assert_problem(admin.post("/api/v1/jobs", json=import_with_rate), 422)
    assert_problem(
        api.as_role("dpo").post("/api/v1/jobs", json={"kind": "import", "source": "archive", "folder": "."}),
        403,
        "/problems/permission-denied",
    )


def test_without_an_import_dir_no_folder_is_read_through_the_server(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "var", workers=1, admin_password=ADMIN_PASSWORD)
    with serving_api(settings) as api:
        add_local_source(api.admin)
        problem = assert_problem(start_import(api.admin, "."), 400, "/problems/refused")
        assert "FACETRACE_IMPORT_DIR" in problem["detail"]


def test_an_import_stopped_midway_resumes_without_duplicates_or_gaps(
    gov_settings: Settings, import_dir: Path
) -> None:
    settings = gov_settings.model_copy(update={"import_dir": import_dir})
    operator = Governance.open(settings)
    operator.sources.add(SourceSpec("archive", "local", "own press archive", "FR"))
    asked = iter(range(100))
    stats, stopped = operator.sources.import_folder("archive", "press", should_stop=lambda: next(asked) >= 3)
    assert stopped and stats.done < PHOTOS + 2
    first = stats.new_images
    stats, stopped = operator.sources.import_folder("archive", "press")
    assert not stopped and stats.new_images == PHOTOS - first
    with operator.sessions() as session:
        places = [s.location for s in session.query(Sighting).all()]
    assert len(places) == len(set(places)) == PHOTOS


def test_the_import_dir_confines_links_and_names(import_dir: Path) -> None:
    settings = Settings(import_dir=import_dir)
    items = images_in_import_dir(settings, "press/2026")
    assert [Path(i.location).name for i in items] == [
        "0.jpg",
        "1.jpg",
        "2.jpg",
        "3.jpg",
        "4.jpg",
        "5.jpg",
        "broken.jpg",
        "link.jpg",
    ]
    refused = [i for i in items if not hasattr(i, "path")]
    assert [(Path(i.location).name, i.message) for i in refused] == [
        ("link.jpg", "a link to a file outside the import folder: not read")
    ]
    with pytest.raises(NotFoundError):
        images_in_import_dir(settings, "press/2026/0.jpg")  # a file is not a folder
    with pytest.raises(FacetraceError, match="outside"):
        images_in_import_dir(settings, "/")
