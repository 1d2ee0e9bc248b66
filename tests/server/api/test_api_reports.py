"""Usage and annual reports and the records of processing over the API, counted from a real server's
audit log after real searches."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from facetrace.core.config import Settings
from support.api import ADMIN_PASSWORD, Api, assert_problem, serving_api
from support.catalogs import Catalogs
from support.ingesting import ingest

YEAR = datetime.now(UTC).year
PURPOSE = {"case_ref": "CASE-R", "offence": "kidnapping", "justification": "the report tests' searches"}


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, astronaut_jpeg: bytes, catalogs: Catalogs) -> Iterator[Api]:
    root = tmp_path_factory.mktemp("reports")
    photo = root / "photos" / "astronaut.jpg"
    photo.parent.mkdir()
    photo.write_bytes(astronaut_jpeg)
    with catalogs.fresh() as database_url:
        settings = Settings(
            data_dir=root / "var", database_url=database_url, workers=1, admin_password=ADMIN_PASSWORD
        )
        ingest(
            settings, [str(photo.parent)], source_name="nasa", jurisdiction="US", legal_basis="public domain"
        )
        with serving_api(settings) as api:
            for unit, searches in (("north", 2), ("south", 1)):
                investigator = api.as_role("investigator", unit=unit)
                for _ in range(searches):
                    found = investigator.post(
                        "/api/v1/search",
                        data=PURPOSE,
                        files={"photo": ("p.jpg", astronaut_jpeg, "image/jpeg")},
                    )
                    assert found.status_code == 200, found.text
            yield api


def test_usage_counts_the_searches_per_unit_and_user(api: Api) -> None:
    usage = api.as_role("auditor").get("/api/v1/reports/usage")
    assert usage.status_code == 200, usage.text
    rows = {row["unit"]: row for row in usage.json()}
    assert {unit: row["searches"] for unit, row in rows.items()} == {"north": 2, "south": 1}
    assert rows["north"]["months"][f"{datetime.now(UTC).month:02d}"] == 2
    assert rows["north"]["cases"] == 1 and rows["north"]["offences"] == {"kidnapping": 2}

    own_unit = api.as_role("supervisor", unit="south").get("/api/v1/reports/usage", params={"year": YEAR})
    assert [row["unit"] for row in own_unit.json()] == ["south"]
    assert api.as_role("dpo").get("/api/v1/reports/usage", params={"year": YEAR - 1}).json() == []
    assert_problem(api.as_role("dpo").get("/api/v1/reports/usage", params={"year": 0}), 422)


def test_the_annual_report_files(api: Api) -> None:
    dpo = api.as_role("dpo")
    base = f"/api/v1/reports/annual/{YEAR}"
    document = dpo.get(f"{base}/report.json")
    assert document.status_code == 200, document.text
    assert document.headers["content-type"] == "application/json"
    assert document.json()["year"] == YEAR
    assert document.json()["searches"]["run"] == 3
    assert document.json()["audit_log"]["intact"] is True

    page = dpo.get(f"{base}/report.html")
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert f"annual usage report {YEAR}" in page.text
    assert page.headers["content-disposition"] == f'inline; filename="facetrace-{YEAR}-report.html"'
    table = list(csv.reader(io.StringIO(dpo.get(f"{base}/usage.csv").text)))
    assert table[0][:2] == ["unit", "user"] and len(table) == 3
    chart = dpo.get(f"{base}/searches.svg")
    assert chart.headers["content-type"] == "image/svg+xml" and chart.text.startswith("<svg ")

    south = api.as_role("supervisor", unit="south").get(f"{base}/report.json").json()
    assert south["unit"] == "south" and south["searches"]["run"] == 1
    assert_problem(dpo.get(f"{base}/secrets.txt"), 422)
    assert_problem(dpo.get("/api/v1/reports/annual/10000/report.json"), 422)


def test_the_records_of_processing(api: Api) -> None:
    records = api.as_role("auditor").get("/api/v1/reports/processing")
    assert records.status_code == 200, records.text
    assert records.json()["record"].startswith("records of processing")
    (nasa,) = records.json()["sources"]
    assert nasa["name"] == "nasa" and nasa["faces"] == 1 and nasa["legal_basis"] == "public domain"
    assert sorted(records.json()["recipients"]) == ["north", "south"]
