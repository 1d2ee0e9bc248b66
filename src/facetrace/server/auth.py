"""Who is acting: the bearer token of a request, resolved to a :class:`Governance`.

Tokens are the ``ftk_…`` API tokens of :mod:`facetrace.governance.accounts` (``facetrace token
create``, or ``POST /api/v1/auth/token`` with a password). The server never acts as the local
bootstrap operator: a request without a valid token gets 401.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from fastapi.security import OAuth2PasswordBearer

from facetrace.errors import AuthenticationError
from facetrace.governance.service import Governance
from facetrace.server.state import ServerState, server_state

TOKEN_URL = "/api/v1/auth/token"

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
