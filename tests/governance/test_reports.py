"""Reports generated from the audit log and the catalog (SQLite and PostgreSQL)."""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

import pytest

from facetrace.core.config import Settings
from facetrace.core.errors import PermissionDeniedError, PurposeError
from facetrace.governance.report_files import write_records
from facetrace.governance.searches import Purpose
from facetrace.governance.service import Governance
from facetrace.vision.analyzer import FaceAnalyzer
from support.api import USER_PASSWORD
from support.ingesting import ingest

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def busy_unit(gov_settings: Settings, operator: Governance, tmp_path: Path, astronaut_jpeg: bytes) -> dict:
    """Unit 'federal' runs 78 searches (the Belgian case: 78, not the 2 first admitted); 'local' runs 2."""
    photo = tmp_path / "photos" / "astronaut.jpg"
    photo.parent.mkdir()
    photo.write_bytes(astronaut_jpeg)
    ingest(
        gov_settings,
        [str(photo.parent)],
        source_name="press",
        jurisdiction="BE",
        legal_basis="test",
        retention_days=90,
    )
    operator.policy.change("searches_per_day", "1000")
    operator.policy.change("burst_searches_per_hour", "1000")
    for unit in ("federal", "local"):
        operator.accounts.add_unit(unit)
    for name, role, unit in [
        ("fed", "investigator", "federal"),
        ("loc", "investigator", "local"),
        ("boss", "supervisor", "federal"),
        ("dpo", "dpo", None),
    ]:
        operator.accounts.add_user(name, [role], unit, password=USER_PASSWORD)
    return {"settings": gov_settings, "operator": operator, "probe": astronaut_jpeg}


def as_(busy_unit: dict, name: str) -> Governance:
    return Governance.with_password(
        busy_unit["settings"], busy_unit["operator"].sessions, name, USER_PASSWORD
    )


@pytest.mark.slow
def test_a_unit_that_searched_78_times_shows_78(
    busy_unit: dict, analyzer: FaceAnalyzer, tmp_path: Path
) -> None:
    fed, loc = as_(busy_unit, "fed"), as_(busy_unit, "loc")
    for number in range(78):
        fed.searches.search(
            analyzer, busy_unit["probe"], Purpose(f"F-{number % 5}", "terrorism", "lead on the attack"), k=3
        )
    for number in range(2):
        loc.searches.search(
            analyzer, busy_unit["probe"], Purpose(f"L-{number}", "homicide", "lead on the murder"), k=3
        )
    with pytest.raises(PurposeError):
        fed.searches.search(analyzer, busy_unit["probe"], Purpose(None, None, None), k=3)

    month = f"{datetime.now(UTC).month:02d}"
    year = datetime.now(UTC).year
    rows = {row.user: row for row in as_(busy_unit, "dpo").reports.usage(year)}
    assert rows["fed"].searches == 78 and rows["fed"].months[month] == 78
    assert rows["fed"].refused == 1 and rows["fed"].cases == 5 and rows["fed"].unit == "federal"
    assert rows["loc"].searches == 2 and rows["loc"].offences == {"homicide": 2}

    supervisor_rows = as_(busy_unit, "boss").reports.usage(year)
    assert [row.user for row in supervisor_rows] == ["fed"]  # their own unit only
    with pytest.raises(PermissionDeniedError):
        fed.reports.usage(year)

    written = as_(busy_unit, "boss").reports.annual(year, tmp_path / "report")
    assert sorted(p.name for p in written) == ["report.html", "report.json", "searches.svg", "usage.csv"]
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["unit"] == "federal" and report["searches"]["run"] == 78
    assert report["searches"]["by_offence"] == {"terrorism": 78}
    assert report["audit_log"]["intact"] is True
    chart = ET.fromstring((tmp_path / "report" / "searches.svg").read_text())
    (line,) = chart.iter(f"{SVG}polyline")  # fed's: the unit's one user
    heights = [float(point.split(",")[1]) for point in line.get("points", "").split()]
    assert heights.index(min(heights)) == int(month) - 1  # the 78 searches, all this month
    assert "fed (federal)" in [text.text for text in chart.iter(f"{SVG}text")]
    usage_rows = list(csv.DictReader(io.StringIO((tmp_path / "report" / "usage.csv").read_text())))
    assert [(r["user"], r["searches"], r[month]) for r in usage_rows] == [("fed", "78", "78")]
    html = (tmp_path / "report" / "report.html").read_text()
    assert "annual usage report" in html and ">78<" in html
    assert "<svg" in html and "<title>Searches per month, " in html and "<img" not in html  # drawn inline


def test_records_of_processing_come_from_the_catalog(busy_unit: dict, tmp_path: Path) -> None:
    records = as_(busy_unit, "dpo").reports.records_of_processing()
    html = write_records(records, tmp_path)[1].read_text()
    assert "Records of processing activities" in html and "<td>press</td>" in html
    (source,) = records["sources"]
    assert (source["name"], source["jurisdiction"], source["legal_basis"], source["retention_days"]) == (
        "press",
        "BE",
        "test",
        90,
    )
    assert source["images"] == 1 and source["faces"] == 1
    assert records["recipients"] == ["federal", "local"]
    assert "homicide" in records["purposes"]["offence_categories"]
    with pytest.raises(PermissionDeniedError):
        as_(busy_unit, "boss").reports.records_of_processing()
