"""Logging in, who am I, users and API tokens (``facetrace user|token``)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response, status
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel, Field

from facetrace.governance.roles import Role
from facetrace.governance.service import Governance
from facetrace.server.auth import TOKEN_URL, Acting
from facetrace.server.params import MAX_ID
from facetrace.server.problems import PROBLEM_RESPONSES
from facetrace.server.state import ServerState, server_state

router = APIRouter(prefix="/api/v1", tags=["accounts"], responses=PROBLEM_RESPONSES)

#: How long a token obtained by logging in with a password stays valid.
LOGIN_TOKEN_DAYS = 1


class LoginToken(BaseModel):
    """OAuth2's token response, with Facetrace's token id and expiry."""

    access_token: str = Field(description="Send it as 'Authorization: Bearer …'; shown once.")
    token_type: str = "bearer"
    token_id: int
    expires_at: str


class Me(BaseModel):
    name: str
    roles: list[Role]
    unit: str | None


class NewUser(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    roles: list[Role] = Field(min_length=1)
    unit: str | None = Field(None, description="The team or agency the user belongs to.")
    password: str | None = Field(None, description="For logging in at /api/v1/auth/token.")


class User(BaseModel):
    name: str
    roles: list[Role]
    unit: str | None
    bootstrap: bool = Field(description="The local CLI's bootstrap operator.")
    disabled: bool


class NewToken(BaseModel):
    name: str = Field("api", min_length=1, max_length=200, description="What the token is for.")
    days: int = Field(90, ge=1, le=3650, description="Valid for this many days.")


class IssuedToken(BaseModel):
    id: int
    user: str
    name: str
    expires_at: str
    token: str = Field(description="Shown once; stored only as its sha256 digest.")


@router.post(TOKEN_URL.removeprefix("/api/v1"), response_model=LoginToken, tags=["auth"])
def log_in(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    state: Annotated[ServerState, Depends(server_state)],
) -> LoginToken:
    """Exchange a user name and password for an API token of one day (OAuth2 password flow)."""
    gov = Governance.with_password(state.settings, state.sessions, form.username, form.password)
    issued = gov.issue_token(form.username, "login", LOGIN_TOKEN_DAYS)
    return LoginToken(access_token=issued.token, token_id=issued.id, expires_at=issued.expires_at)


@router.get("/me", response_model=Me)
def me(gov: Acting) -> Me:
    """Who the token belongs to."""
    return Me(name=gov.actor.name, roles=sorted(gov.actor.roles), unit=gov.actor.unit)


@router.post("/users", status_code=status.HTTP_201_CREATED, response_model=User)
def add_user(gov: Acting, body: NewUser) -> dict:
    """Create a user with one or more roles (admin)."""
    gov.add_user(body.name, [role.value for role in body.roles], body.unit, body.password)
    return next(user for user in gov.users() if user["name"] == body.name)


@router.get("/users", response_model=list[User])
def list_users(gov: Acting) -> list[dict]:
    """Every user with roles and unit (admin)."""
    return gov.users()


@router.post("/users/{name}/tokens", status_code=status.HTTP_201_CREATED, response_model=IssuedToken)
def issue_token(gov: Acting, name: str, body: NewToken) -> dict:
    """Create an API token: one's own for anybody, another user's for an admin."""
    return asdict(gov.issue_token(name, body.name, body.days))


@router.delete("/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
def revoke_token(gov: Acting, token_id: Annotated[int, Path(ge=1, le=MAX_ID)]) -> Response:
    """Revoke a token at once: one's own for anybody, another user's for an admin."""
    gov.revoke_token(token_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
