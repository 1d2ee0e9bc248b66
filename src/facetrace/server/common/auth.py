"""Who is acting: the bearer token of a request, resolved to a :class:`Governance`.

Tokens are the ``ftk_…`` API tokens of :mod:`facetrace.governance.accounts` (``facetrace token
create``, or ``POST /api/v1/auth/token`` with a password). The server never acts as the local
bootstrap operator: a request without a valid token gets 401.

A password is read only from a small ``application/x-www-form-urlencoded`` body (:func:`password_form`):
anything else is refused before its body is read (415), so a login never makes the server parse a
multipart body nor spool one to disk.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import OAuth2PasswordBearer

from facetrace.core.errors import AuthenticationError
from facetrace.governance.service import Governance
from facetrace.server.common.state import ServerState, server_state
from facetrace.server.common.uploads import read_urlencoded

TOKEN_URL = "/api/v1/auth/token"
FORM_TYPE = "application/x-www-form-urlencoded"
#: A login form is a user name and one or two passwords: a few hundred bytes.
MAX_PASSWORD_FORM_BYTES = 8 * 1024

# OAuth2's password flow describes the scheme in OpenAPI, so /docs can log in and send the token.
bearer = OAuth2PasswordBearer(tokenUrl=TOKEN_URL, auto_error=False)


def acting(
    state: Annotated[ServerState, Depends(server_state)], token: Annotated[str | None, Depends(bearer)]
) -> Governance:
    if not token:
        raise AuthenticationError(
            f"send an API token as 'Authorization: Bearer ftk_…' (POST {TOKEN_URL} issues one)"
        )
    return Governance.with_token(state.settings, state.sessions, token)


#: A route parameter of this type is the acting user's governance layer.
Acting = Annotated[Governance, Depends(acting)]


async def password_form(request: Request) -> dict[str, str]:
    """The fields of a url-encoded form of at most :data:`MAX_PASSWORD_FORM_BYTES`, read in memory."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != FORM_TYPE:
        raise HTTPException(415, f"send the form as {FORM_TYPE}")
    form = await read_urlencoded(request, MAX_PASSWORD_FORM_BYTES)
    return {name: values[-1] for name, values in form.fields.items()}


#: A route parameter of this type is a small url-encoded form (a login).
PasswordForm = Annotated[dict[str, str], Depends(password_form)]
