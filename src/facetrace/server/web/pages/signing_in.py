"""Logging in and out, changing one's password, and the home page (the first page the user's roles
open). A password an admin reset leads to the change-password form before anything else."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from facetrace.core.errors import (
    AuthenticationError,
    FacetraceError,
    PasswordChangeRequiredError,
    RetryLaterError,
)
from facetrace.governance.service import Governance
from facetrace.governance.services.accounts import change_password
from facetrace.server.common.client_address import client_address
from facetrace.server.common.problems import facetrace_status
from facetrace.server.common.state import ServerState, server_state
from facetrace.server.web.errors import page_router
from facetrace.server.web.rendering import back_to, page, pages_for
from facetrace.server.web.session import CheckedForm, SignedIn, begin, field, sign_in, sign_out, viewer

router = page_router()
State = Annotated[ServerState, Depends(server_state)]


def _home(gov: Governance) -> RedirectResponse:
    pages = pages_for(gov)
    return back_to(pages[0][0] if pages else "/portal")


def _refused(request: Request, template: str, exc: FacetraceError, **context: str) -> HTMLResponse:
    """The form again with the reason, under the status the API answers (429 with Retry-After…)."""
    status = 401 if isinstance(exc, AuthenticationError) else facetrace_status(exc)[0]
    response = page(request, template, None, error=str(exc), status_code=status, **context)
    if isinstance(exc, RetryLaterError):
        response.headers["Retry-After"] = str(exc.retry_after_s)
    return response


@router.get("/")
def home(gov: SignedIn) -> RedirectResponse:
    return _home(gov)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> HTMLResponse:
    return page(request, "login.html")


@router.post("/login", response_model=None)
def log_in(request: Request, form: CheckedForm, state: State) -> HTMLResponse | RedirectResponse:
    name = field(form, "username")
    try:
        gov = sign_in(request, state, name, field(form, "password"))
    except PasswordChangeRequiredError as exc:
        return page(request, "password.html", error=str(exc), username=name, status_code=403)
    except (AuthenticationError, RetryLaterError) as exc:
        return _refused(request, "login.html", exc)
    return _home(gov)


@router.get("/password", response_class=HTMLResponse)
def password_form(request: Request, state: State) -> HTMLResponse:
    gov = viewer(request, state)
    return page(request, "password.html", gov, username=gov.actor.name if gov else "")


@router.post("/password", response_model=None)
def change_own_password(request: Request, form: CheckedForm, state: State) -> HTMLResponse | RedirectResponse:
    """Replace one's password with the current one; then a fresh web login (every other one ended)."""
    name, new = field(form, "username"), field(form, "new_password")
    try:
        if new != field(form, "confirm_password"):
            raise FacetraceError("the two new passwords differ")
        address = client_address(request)
        actor = change_password(state.settings, state.sessions, name, field(form, "password"), new, address)
    except FacetraceError as exc:
        return _refused(request, "password.html", exc, username=name)
    return _home(begin(request, Governance(state.settings, state.sessions, actor)))


@router.post("/logout")
def log_out(request: Request, _form: CheckedForm, state: State) -> RedirectResponse:
    sign_out(request, state)
    return back_to("/login")
