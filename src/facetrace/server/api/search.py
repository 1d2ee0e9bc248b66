"""``POST /api/v1/search``: a probe photo and the search's purpose, as ``facetrace search`` takes them."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Response
from pydantic import BaseModel, ConfigDict, Field

from facetrace.catalog.scope import SearchScope
from facetrace.gallery.search import outcome_to_dict
from facetrace.governance.searches import Purpose
from facetrace.server.common.auth import Acting
from facetrace.server.common.orders import SearchForm, crop_response
from facetrace.server.common.params import MAX_ID
from facetrace.server.common.problems import PROBLEM_RESPONSES, UPLOAD_RESPONSES, documented
from facetrace.server.common.state import ServerState, server_state
from facetrace.server.common.uploads import ImageForm, multipart_openapi

router = APIRouter(prefix="/api/v1", tags=["search"], responses=PROBLEM_RESPONSES)


class Scope(BaseModel):
    """What the search was narrowed to (empty lists: the whole gallery). Results show only
    the sightings in scope."""

    sources: list[str]
    jurisdictions: list[str]


class ProbeFace(BaseModel):
    face: int
    box: list[float]
    det_score: float
    quality: float


class Probe(BaseModel):
    sha256: str = Field(description="The probe's digest: the probe itself is never stored.")
    face_used: int
    faces: list[ProbeFace]


class Sighting(BaseModel):
    location: str = Field(description="Where the image was found: its URL or path.")
    page_url: str | None
    page_title: str | None
    alt_text: str | None
    http_last_modified: str | None
    source: str
    legal_basis: str | None
    jurisdiction: str | None
    first_seen: str
    last_seen: str
    gone_at: str | None


class ResultImage(BaseModel):
    sha256: str
    width: int
    height: int
    first_seen: str
    last_seen: str


CROP_PATH = "/faces/{face_id}/crop"
CROP_DESCRIPTION = (
    "Where to get the face's picture (JPEG; only for users whose search returned it); null when none is kept."
)


class NearDuplicate(BaseModel):
    """The same face in a resized or re-encoded copy of the photo, seen elsewhere."""

    face_id: int
    crop_url: str | None = Field(description=CROP_DESCRIPTION)
    score: float
    image: dict[str, int | str] = Field(description="The copy's sha256, width and height.")
    sightings: list[Sighting]


class SearchResult(BaseModel):
    # Fields the search module adds later reach clients before this schema names them.
    model_config = ConfigDict(extra="allow")

    rank: int
    score: float
    expected_false_matches: float | None = Field(
        description="How many different people a gallery this size holds at this score (by the "
        "calibration; null when the model was never calibrated)."
    )
    face_id: int
    crop_url: str | None = Field(description=CROP_DESCRIPTION)
    box: list[float]
    det_score: float
    quality: float
    image: ResultImage
    sightings: list[Sighting]
    near_duplicates: list[NearDuplicate] = Field(
        description="Copies of this photo (resized or re-encoded) with the places each was seen."
    )


class SearchResponse(BaseModel):
    model: str
    gallery_size: int
    probe: Probe
    calibrated: bool
    hidden_as_too_weak: int
    scope: Scope
    results: list[SearchResult] = Field(description="Leads to check, not identifications; best first.")
    timings_ms: dict[str, float]


@router.post(
    "/search",
    response_model=SearchResponse,
    responses=UPLOAD_RESPONSES | documented((429, "Search quota used up")),
    openapi_extra=multipart_openapi(
        SearchForm, {"photo": "The probe photo: analysed in memory, never stored."}, ("photo",)
    ),
)
def search(gov: Acting, form: ImageForm, state: Annotated[ServerState, Depends(server_state)]) -> dict:
    """Search the gallery for the faces most similar to a face in the photo (recorded in the audit log)."""
    fields = form.parse(SearchForm)
    photo = form.files.get("photo")
    if photo is None:
        raise HTTPException(422, "send the probe photo as the form file 'photo'")
    purpose = Purpose(fields.case_ref, fields.offence, fields.justification, fields.authorisation_ref)
    # The analyzer checks one of the pool's out for the probe's analysis alone (see AnalyzerPool).
    outcome = gov.searches.search(
        state.analyzer,
        photo.data,
        purpose,
        k=fields.k or state.settings.search_k,
        face=fields.face,
        min_score=fields.min_score,
        scope=SearchScope.of(fields.source, fields.jurisdiction),
    )
    found = outcome_to_dict(outcome)
    for result in found["results"]:
        for face in (result, *result["near_duplicates"]):
            _link_crop(face)
    return found


def _link_crop(face: dict[str, Any]) -> None:
    crop_url = router.prefix + CROP_PATH.format(face_id=face["face_id"])
    face["crop_url"] = crop_url if face.pop("has_crop") else None


@router.get(
    CROP_PATH,
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}, "description": "The face's picture."}},
)
def face_crop(gov: Acting, face_id: Annotated[int, Path(ge=1, le=MAX_ID)]) -> Response:
    """The picture of a face one of your searches returned (any other face id: 404)."""
    return crop_response(gov.searches.face_crop(face_id))
