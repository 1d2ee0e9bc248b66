"""Logging in and out, and the home page (the first page the user's roles open)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from facetrace.errors import AuthenticationError
from facetrace.server.state import ServerState, server_state
from facetrace.web.errors import page_router
from facetrace.web.rendering import back_to, page, pages_for
from facetrace.web.session import CheckedForm, SignedIn, field, sign_in, sign_out

router = page_router()
State = Annotated[ServerState, Depends(server_state)]


@router.get("/")
def home(gov: SignedIn) -> RedirectResponse:
    pages = pages_for(gov)
    return back_to(pages[0][0] if pages else "/portal")


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> HTMLResponse:
    return page(request, "login.html")


@router.post("/login", response_model=None)
def log_in(request: Request, form: CheckedForm, state: State) -> HTMLResponse | RedirectResponse:
    try:
        gov = sign_in(request, state, field(form, "username"), field(form, "password"))
    except AuthenticationError as exc:
        return page(request, "login.html", error=str(exc), status_code=401)
    pages = pages_for(gov)
    return back_to(pages[0][0] if pages else "/portal")


@router.post("/logout")
def log_out(request: Request, _form: CheckedForm, state: State) -> RedirectResponse:
    sign_out(request, state)
    return back_to("/login")
