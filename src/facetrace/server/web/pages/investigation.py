"""The investigator's pages: search with a purpose, pick the probe face, request an
authorisation, and the list of one's own past searches."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Path, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from facetrace.catalog.scope import SearchScope
from facetrace.core.errors import FacetraceError
from facetrace.gallery.results import SearchResponse
from facetrace.governance.roles import Action, may
from facetrace.governance.searches import Purpose
from facetrace.server.common.orders import SearchForm, crop_response
from facetrace.server.common.params import MAX_ID
from facetrace.server.common.state import ServerState, server_state
from facetrace.server.web.errors import page_router
from facetrace.server.web.rendering import back_to, page, reported
from facetrace.server.web.session import CheckedForm, CheckedUploadForm, SignedIn, field, flash, photo

router = page_router()
State = Annotated[ServerState, Depends(server_state)]


def _search_page(request: Request, gov: SignedIn, state: ServerState, **context: Any) -> HTMLResponse:
    policy = gov.deployment_policy()
    return page(
        request,
        "search.html",
        gov,
        offences=policy.offence_categories,
        policy=policy.authorisation_policy,
        authorisations=[a for a in gov.authorisations.listing() if a.status in ("requested", "granted")]
        if may(gov.actor.roles, Action.REQUEST_AUTHORISATION)
        else [],
        choices=gov.searches.scope_choices(),
        **context,
    )


@router.get("/search", response_class=HTMLResponse)
def search_form(request: Request, gov: SignedIn, state: State) -> HTMLResponse:
    return _search_page(request, gov, state, form={})


@router.post("/search", response_class=HTMLResponse)
def search(request: Request, gov: SignedIn, form: CheckedUploadForm, state: State) -> HTMLResponse:
    """Run the search and show the results on this response only: they are never cached or stored
    for the browser (the case keeps its results in the catalog, as the CLI's search does)."""
    values: dict[str, Any] = {
        name: field(form, name) for name in ("case_ref", "offence", "justification", "authorisation_ref")
    }
    values |= {name: form.fields.get(name, []) for name in ("source", "jurisdiction")}
    probe = photo(form)
    if probe is None:
        return _search_page(request, gov, state, form=values, error="choose a photo to search with")
    purpose = Purpose(
        values["case_ref"] or None,
        values["offence"] or None,
        values["justification"] or None,
        values["authorisation_ref"] or None,
    )
    face = form.value("face", SearchForm)
    try:
        scope = SearchScope.of(values["source"], values["jurisdiction"])
        k = state.settings.search_k
        outcome = gov.searches.search(state.analyzer, probe, purpose, k=k, face=face, scope=scope)
    except FacetraceError as exc:
        return _search_page(request, gov, state, form=values, error=str(exc), status_code=400)
    response = _search_page(request, gov, state, form=values, outcome=SearchResponse.of(outcome, _crop_link))
    response.headers["cache-control"] = "no-store"
    return response


@router.post("/search/faces")
def probe_faces(gov: SignedIn, form: CheckedUploadForm, state: State) -> JSONResponse:
    """The faces found in the chosen photo (boxes to click on), before anything is searched."""
    probe = photo(form)
    if probe is None:
        return JSONResponse({"detail": "choose a photo"}, status_code=400)
    try:
        faces = gov.searches.probe_faces(state.analyzer, probe)
    except FacetraceError as exc:
        return JSONResponse({"detail": str(exc)}, status_code=400)
    return JSONResponse({"faces": [face.model_dump() for face in faces]})


CROP_PATH = "/faces/{face_id}/crop"


def _crop_link(face_id: int) -> str:
    return CROP_PATH.format(face_id=face_id)


@router.get(CROP_PATH, response_model=None)
def face_crop(gov: SignedIn, face_id: Annotated[int, Path(ge=1, le=MAX_ID)]) -> Response:
    """The picture on a result card: only of a face one of the user's own searches returned."""
    return crop_response(gov.searches.face_crop(face_id))


@router.post("/authorisations")
def request_authorisation(request: Request, gov: SignedIn, form: CheckedForm) -> RedirectResponse:
    with reported(request):
        reference = gov.authorisations.request(field(form, "case_ref"), field(form, "justification"))
        flash(request, f"Authorisation {reference} requested: your supervisor decides on it.")
    return back_to("/search")


@router.get("/cases", response_class=HTMLResponse)
def my_cases(request: Request, gov: SignedIn) -> HTMLResponse:
    return page(
        request, "cases.html", gov, searches=gov.searches.mine(), authorisations=gov.authorisations.listing()
    )
