"""The one result shape (facetrace.gallery.results): what the API sends, what ``facetrace search --json``
prints and what an access report lists are the same fields with the same values, in the same order.

The only field that differs with the reader: the API (and the web page) link each face's picture as
``crop_url``, the CLI says in its place whether one is kept (``has_crop``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from fastapi import FastAPI

from facetrace.core.config import Settings
from facetrace.gallery.results import SearchResponse
from facetrace.governance.searches import Purpose
from facetrace.governance.service import Governance
from facetrace.vision.analyzer import FaceAnalyzer
from support.api import running
from support.ingesting import ingest
from support.photos import encode

PURPOSE = Purpose("CASE-9", "missing-person", "where was this photo published")

TOP = ["model", "gallery_size", "probe", "calibrated", "hidden_as_too_weak", "scope", "results", "timings_ms"]
RESULT = [
    "rank",
    "score",
    "expected_false_matches",
    "face_id",
    "has_crop",
    "box",
    "det_score",
    "quality",
    "image",
    "sightings",
    "near_duplicates",
]
COPY = ["face_id", "has_crop", "score", "image", "sightings"]
SIGHTING = [
    "location",
    "page_url",
    "page_title",
    "alt_text",
    "http_last_modified",
    "source",
    "legal_basis",
    "jurisdiction",
    "first_seen",
    "last_seen",
    "gone_at",
]


def crop_link(face_id: int) -> str:
    return f"/faces/{face_id}/crop"


def linked(faces: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the API shows of faces the CLI shows: ``crop_url`` in place of ``has_crop``."""
    return [
        {
            ("crop_url" if key == "has_crop" else key): (crop_link(face["face_id"]) if value else None)
            if key == "has_crop"
            else value
            for key, value in face.items()
        }
        for face in faces
    ]


def as_the_api_sends(found: SearchResponse) -> dict[str, Any]:
    """The response a FastAPI route declared with ``response_model=SearchResponse`` sends."""
    app = FastAPI()
    app.get("/found", response_model=SearchResponse)(lambda: found)
    with running(app) as url:
        return httpx.get(f"{url}/found").json()


def test_the_api_and_the_cli_show_the_same_fields(
    operator: Governance, two_people: dict[str, Path], analyzer: FaceAnalyzer, astronaut_rgb: np.ndarray
) -> None:
    copy = two_people["fr"].parent.parent / "copies" / "small.jpg"
    copy.parent.mkdir()
    copy.write_bytes(encode(np.ascontiguousarray(astronaut_rgb[::2, ::2]), "JPEG", quality=90))
    ingest(operator.settings, [str(copy.parent)], source_name="press-copies")
    outcome = operator.searches.search(analyzer, two_people["fr"].read_bytes(), PURPOSE, k=5)

    cli = SearchResponse.of(outcome).with_has_crop()
    assert list(cli) == TOP
    assert [list(result) for result in cli["results"]] == [RESULT] * len(outcome.hits)
    first = cli["results"][0]
    assert [list(near) for near in first["near_duplicates"]] == [COPY]  # the resized copy
    assert all(list(sighting) == SIGHTING for sighting in first["sightings"])
    assert json.loads(json.dumps(cli)) == cli  # plain JSON data, as print_json writes it

    api = as_the_api_sends(SearchResponse.of(outcome, crop_link))
    assert {key: api[key] for key in TOP if key != "results"} == {
        key: cli[key] for key in TOP if key != "results"
    }
    assert api["results"] == [
        {**linked([result])[0], "near_duplicates": linked(result["near_duplicates"])}
        for result in cli["results"]
    ]
    assert api["results"][0]["crop_url"] == crop_link(first["face_id"])  # every face here has a crop
    assert first["has_crop"] is True


def test_an_access_report_lists_the_places_a_search_shows(
    operator: Governance, gov_settings: Settings, two_people: dict[str, Path], analyzer: FaceAnalyzer
) -> None:
    photo = two_people["fr"].read_bytes()
    shown = SearchResponse.of(operator.searches.search(analyzer, photo, PURPOSE, k=5)).with_has_crop()
    reference = operator.rights.file(
        "access", urls=[], photo=photo, analyzer=analyzer, contact="by post"
    ).reference
    operator.rights.move(reference, "verified", "identity checked at the desk")
    produced = operator.rights.execute(reference)
    assert produced.access_report is not None
    report = json.loads(Path(produced.access_report).read_text())

    held = {image["face_id"]: image for image in report["images"]}
    for result in shown["results"]:
        image = held[result["face_id"]]
        assert (image["image_sha256"], image["first_seen"], image["last_seen"]) == (
            result["image"]["sha256"],
            result["image"]["first_seen"],
            result["image"]["last_seen"],
        )
        by_place = sorted(image["seen_at"], key=lambda s: s["location"])
        assert by_place == sorted(result["sightings"], key=lambda s: s["location"])
    assert any(len(result["sightings"]) == 2 for result in shown["results"])  # FR and US both listed
