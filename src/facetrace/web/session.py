"""Who is signed in to the web app, and proof that a form came from one of its pages.

Logging in with a password issues an ordinary API token (``facetrace.governance.accounts``) for
the session's length; the signed session cookie carries it, so every page acts through
:meth:`Governance.with_token` like an API client, and logging out revokes it. Every form carries
the session's CSRF token, compared in constant time before anything is done (the cookie is also
``SameSite=Strict``).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from facetrace.config import Settings
from facetrace.errors import AuthenticationError
from facetrace.governance.service import Governance
from facetrace.server.state import ServerState, server_state
from facetrace.server.uploads import UploadedForm, read_form

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


def sign_in(request: Request, state: ServerState, name: str, password: str) -> Governance:
    """Check the password, issue a token for the session, and keep it in the session cookie."""
    gov = Governance.with_password(state.settings, state.sessions, name, password)
    days = max(1, -(-state.settings.session_hours // 24))
    issued = gov.issue_token(name, "web session", days)
    request.session.clear()
    request.session.update(token=issued.token, token_id=issued.id, csrf=secrets.token_urlsafe(24))
    return gov


def sign_out(request: Request, state: ServerState) -> None:
    """Revoke the session's token (whatever happens to the cookie later, it opens nothing)."""
    token = request.session.get("token")
    if token:
        try:
            gov = Governance.with_token(state.settings, state.sessions, token)
            gov.revoke_token(int(request.session["token_id"]))
        except AuthenticationError:
            pass  # already expired or revoked
    request.session.clear()


def signed_in(request: Request, state: Annotated[ServerState, Depends(server_state)]) -> Governance:
    token = request.session.get("token")
    if not token:
        raise LoginRequiredError
    try:
        return Governance.with_token(state.settings, state.sessions, token)
    except AuthenticationError:
        request.session.clear()
        raise LoginRequiredError from None


#: A page parameter of this type is the signed-in user's governance layer.
SignedIn = Annotated[Governance, Depends(signed_in)]


def csrf_token(request: Request) -> str:
    """The session's CSRF token (an anonymous visitor of the portal gets one too)."""
    return str(request.session.setdefault("csrf", secrets.token_urlsafe(24)))


async def checked_form(
    request: Request, state: Annotated[ServerState, Depends(server_state)]
) -> UploadedForm:
    """The posted form, read in memory within the upload limits, if its CSRF token is the session's."""
    form = await read_form(
        request, max_file_bytes=state.settings.max_image_bytes, file_types=BROWSER_FILE_TYPES
    )
    sent = (form.fields.get("csrf") or [""])[-1]
    expected = request.session.get("csrf", "")
    if not expected or not secrets.compare_digest(sent, expected):
        raise HTTPException(403, "this form has expired or came from another site: reload the page")
    return form


CheckedForm = Annotated[UploadedForm, Depends(checked_form)]


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
    return request.session.pop("flashes", [])
