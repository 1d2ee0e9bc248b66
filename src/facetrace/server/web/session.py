"""Who is signed in to the web app, and proof that a form came from one of its pages.

Logging in with a password begins a web login kept on the server
(:mod:`facetrace.governance.web_logins`): the signed session cookie carries only its random id (and
the CSRF token), never an API token, so every page acts through :meth:`Governance.with_web_login`.
The login ends after ``FACETRACE_SESSION_HOURS``, at logout (replaying the old cookie then opens
nothing), or when an admin disables the user or resets their password. Every form carries the
session's CSRF token, compared in constant time before anything is done (the cookie is also
``SameSite=Strict``).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from facetrace.core.config import Settings
from facetrace.core.errors import AuthenticationError
from facetrace.governance.service import Governance
from facetrace.server.common.client_address import client_address
from facetrace.server.common.state import ServerState, server_state
from facetrace.server.common.uploads import SMALL_FORM_BYTES, UploadedForm, read_form

SECRET_FILE = "session.key"
#: Browsers send an empty, untyped file part when a file input was left empty.
BROWSER_FILE_TYPES = ("image/", "application/octet-stream")


class LoginRequiredError(Exception):
    """Raised by pages that need a signed-in user; answered with a redirect to the login page."""


def session_secret(settings: Settings) -> str:
    """The configured key, else one generated once and kept (owner-readable only) in the data dir."""
    if settings.session_secret is not None:
        return settings.session_secret.get_secret_value()
    path = Path(settings.data_dir) / SECRET_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


#: The session cookie's key holding the web login's id.
LOGIN_KEY = "login"


def begin(request: Request, gov: Governance) -> Governance:
    """Begin a web login for ``gov``'s user (who just gave their password): a fresh cookie holding
    only the login's id and a new CSRF token."""
    session_id = gov.accounts.begin_web_login()
    request.session.clear()
    request.session.update({LOGIN_KEY: session_id, "csrf": secrets.token_urlsafe(24)})
    return gov


def sign_in(request: Request, state: ServerState, name: str, password: str) -> Governance:
    """Check the password (throttled and audited like the API's) and begin a web login."""
    gov = Governance.with_password(state.settings, state.sessions, name, password, client_address(request))
    return begin(request, gov)


def sign_out(request: Request, state: ServerState) -> None:
    """End the web login on the server (whatever happens to the cookie later, it opens nothing)."""
    try:
        gov = viewer(request, state)
        if gov is not None:
            gov.accounts.end_web_login(request.session[LOGIN_KEY])
    finally:
        request.session.clear()


def viewer(request: Request, state: ServerState) -> Governance | None:
    """Who is signed in: None without a login, or when it ended (the cookie is then cleared)."""
    session_id = request.session.get(LOGIN_KEY)
    if not session_id:
        return None
    try:
        return Governance.with_web_login(state.settings, state.sessions, str(session_id))
    except AuthenticationError:
        request.session.clear()
        return None


def signed_in(request: Request, state: Annotated[ServerState, Depends(server_state)]) -> Governance:
    gov = viewer(request, state)
    if gov is None:
        raise LoginRequiredError
    return gov


#: A page parameter of this type is the signed-in user's governance layer.
SignedIn = Annotated[Governance, Depends(signed_in)]


def csrf_token(request: Request) -> str:
    """The session's CSRF token (an anonymous visitor of the portal gets one too)."""
    return str(request.session.setdefault("csrf", secrets.token_urlsafe(24)))


def _checked(request: Request, form: UploadedForm) -> UploadedForm:
    """``form``, if its CSRF token is the session's."""
    sent = (form.fields.get("csrf") or [""])[-1]
    expected = request.session.get("csrf", "")
    if not expected or not secrets.compare_digest(sent, expected):
        raise HTTPException(403, "this form has expired or came from another site: reload the page")
    return form


async def checked_form(request: Request) -> UploadedForm:
    """The posted form of text fields, read in memory (at most SMALL_FORM_BYTES, no file part), if its
    CSRF token is the session's."""
    form = await read_form(request, max_file_bytes=0, file_types=(), max_body_bytes=SMALL_FORM_BYTES)
    return _checked(request, form)


async def checked_upload_form(
    request: Request, state: Annotated[ServerState, Depends(server_state)]
) -> UploadedForm:
    """The posted form with a photo, read in memory within the upload limits, if its CSRF token is
    the session's."""
    form = await read_form(
        request, max_file_bytes=state.settings.max_image_bytes, file_types=BROWSER_FILE_TYPES
    )
    return _checked(request, form)


#: A page parameter of this type is a posted form of text fields (CSRF checked).
CheckedForm = Annotated[UploadedForm, Depends(checked_form)]
#: A page parameter of this type is a posted form that may carry a photo (CSRF checked).
CheckedUploadForm = Annotated[UploadedForm, Depends(checked_upload_form)]


def field(form: UploadedForm, name: str) -> str:
    """A text field's last value, stripped ('' when absent)."""
    return (form.fields.get(name) or [""])[-1].strip()


def photo(form: UploadedForm, name: str = "photo") -> bytes | None:
    """An uploaded file's bytes, None when the input was left empty."""
    upload = form.files.get(name)
    return upload.data if upload is not None and upload.data else None


def flash(request: Request, message: str, kind: str = "info") -> None:
    """A message for the next page the user sees (after a redirect)."""
    request.session.setdefault("flashes", []).append([kind, message])


def take_flashes(request: Request) -> list[list[str]]:
    flashes: list[list[str]] = request.session.pop("flashes", [])
    return flashes
