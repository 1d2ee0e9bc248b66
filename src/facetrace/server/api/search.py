"""``POST /api/v1/search``: a probe photo and the search's purpose, as ``facetrace search`` takes them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Response

from facetrace.catalog.scope import SearchScope
from facetrace.gallery.results import SearchResponse
from facetrace.governance.searches import Purpose
from facetrace.server.common.auth import Acting
from facetrace.server.common.orders import SearchForm, crop_response
from facetrace.server.common.params import MAX_ID
from facetrace.server.common.problems import PROBLEM_RESPONSES, UPLOAD_RESPONSES, documented
from facetrace.server.common.state import ServerState, server_state
from facetrace.server.common.uploads import ImageForm, multipart_openapi

router = APIRouter(prefix="/api/v1", tags=["search"], responses=PROBLEM_RESPONSES)


CROP_PATH = "/faces/{face_id}/crop"


def _crop_link(face_id: int) -> str:
    return router.prefix + CROP_PATH.format(face_id=face_id)


@router.post(
    "/search",
    response_model=SearchResponse,
    responses=UPLOAD_RESPONSES | documented((429, "Search quota used up")),
    openapi_extra=multipart_openapi(
        SearchForm, {"photo": "The probe photo: analysed in memory, never stored."}, ("photo",)
    ),
)
def search(
    gov: Acting, form: ImageForm, state: Annotated[ServerState, Depends(server_state)]
) -> SearchResponse:
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
    return SearchResponse.of(outcome, _crop_link)


@router.get(
    CROP_PATH,
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}, "description": "The face's picture."}},
)
def face_crop(gov: Acting, face_id: Annotated[int, Path(ge=1, le=MAX_ID)]) -> Response:
    """The picture of a face one of your searches returned (any other face id: 404)."""
    return crop_response(gov.searches.face_crop(face_id))
