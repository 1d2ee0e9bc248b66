"""Logging in, changing one's password, who am I, units, users and their life cycle, API tokens
(``facetrace unit|user|token``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field

from facetrace.governance.roles import Role
from facetrace.governance.service import Governance
from facetrace.governance.services.accounts import IssuedToken, TokenInfo, User, change_password
from facetrace.server.common.auth import FORM_TYPE, TOKEN_URL, Acting, PasswordForm
from facetrace.server.common.client_address import client_address
from facetrace.server.common.orders import NewToken
from facetrace.server.common.params import MAX_ID
from facetrace.server.common.problems import PROBLEM_RESPONSES, documented
from facetrace.server.common.state import ServerState, server_state

router = APIRouter(prefix="/api/v1", tags=["accounts"], responses=PROBLEM_RESPONSES)
State = Annotated[ServerState, Depends(server_state)]

#: How long a token obtained by logging in with a password stays valid.
LOGIN_TOKEN_DAYS = 1

_LOGIN_RESPONSES = documented(
    (413, "The form is larger than a login needs"),
    (415, f"The body is not {FORM_TYPE}"),
    (429, "Too many failed logins for this account or from this address (see Retry-After)"),
    (503, "Too many logins at once (see Retry-After)"),
)


def _form_body(*fields: str) -> dict[str, Any]:
    """OpenAPI for a url-encoded form of required string ``fields`` (read by :data:`PasswordForm`)."""
    schema = {
        "type": "object",
        "required": list(fields),
        "properties": {name: {"type": "string"} for name in fields},
    }
    return {"requestBody": {"required": True, "content": {FORM_TYPE: {"schema": schema}}}}


def _field(form: dict[str, str], name: str) -> str:
    if name not in form:
        raise RequestValidationError([{"loc": ("body", name), "msg": "Field required", "type": "missing"}])
    return form[name]


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


class NewUnit(BaseModel):
    name: str = Field(min_length=1, max_length=200, description="Told apart from others ignoring case.")


class NewUser(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    roles: list[Role] = Field(min_length=1)
    unit: str | None = Field(None, description="An existing unit (POST /api/v1/units creates one).")
    password: str | None = Field(
        None, description="For logging in (at least 12 characters, not a common password)."
    )
    service: bool = Field(
        False,
        description="A machine's account: investigator or monitor roles only, no password, tokens "
        "issued by an admin.",
    )


class UserChange(BaseModel):
    """What to change; fields left out stay as they are."""

    roles: list[Role] | None = Field(None, min_length=1)
    unit: str | None = Field(None, description="An existing unit, or null for none.")
    disabled: bool | None = Field(None, description="Disabled users' tokens and web logins stop at once.")


class TemporaryPassword(BaseModel):
    user: str
    temporary_password: str = Field(description="Shown once; it opens nothing but its own change.")


@router.post(
    TOKEN_URL.removeprefix("/api/v1"),
    response_model=LoginToken,
    tags=["auth"],
    responses=_LOGIN_RESPONSES,
    openapi_extra=_form_body("username", "password"),
)
async def log_in(request: Request, form: PasswordForm, state: State) -> LoginToken:
    """Exchange one's user name and password for an API token of one day (OAuth2 password flow).

    Failures are audited and throttled per account and per address (429 with Retry-After)."""
    name, password = _field(form, "username"), _field(form, "password")
    address = client_address(request)

    def issue() -> LoginToken:
        gov = Governance.with_password(state.settings, state.sessions, name, password, address)
        issued = gov.accounts.issue_token(name, "login", LOGIN_TOKEN_DAYS)
        return LoginToken(access_token=issued.token, token_id=issued.id, expires_at=issued.expires_at)

    return await run_in_threadpool(issue)


@router.post(
    "/auth/password",
    status_code=status.HTTP_204_NO_CONTENT,
    tags=["auth"],
    responses=_LOGIN_RESPONSES,
    openapi_extra=_form_body("username", "password", "new_password"),
)
async def change_own_password(request: Request, form: PasswordForm, state: State) -> Response:
    """Replace one's password (required after an admin reset it); one's web logins end."""
    name, password, new = _field(form, "username"), _field(form, "password"), _field(form, "new_password")
    address = client_address(request)
    await run_in_threadpool(change_password, state.settings, state.sessions, name, password, new, address)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/me", response_model=Me)
def me(gov: Acting) -> Me:
    """Who the token belongs to."""
    return Me(name=gov.actor.name, roles=sorted(gov.actor.roles), unit=gov.actor.unit)


@router.get("/units", response_model=list[str])
def list_units(gov: Acting) -> list[str]:
    """Every unit (admin)."""
    return gov.accounts.units()


@router.post("/units", status_code=status.HTTP_201_CREATED, response_model=str)
def add_unit(gov: Acting, body: NewUnit) -> str:
    """Create a unit (admin); a name that differs from an existing one by case only is refused."""
    return gov.accounts.add_unit(body.name)


@router.post("/users", status_code=status.HTTP_201_CREATED, response_model=User)
def add_user(gov: Acting, body: NewUser) -> User:
    """Create a user with one or more roles in an existing unit, or a service account (admin)."""
    roles = [role.value for role in body.roles]
    gov.accounts.add_user(body.name, roles, body.unit, body.password, service=body.service)
    return gov.accounts.user(body.name)


@router.get("/users", response_model=list[User])
def list_users(gov: Acting) -> list[User]:
    """Every user with roles and unit (admin)."""
    return gov.accounts.users()


@router.patch("/users/{name}", response_model=User)
def change_user(gov: Acting, name: str, body: UserChange) -> User:
    """Change a user's roles, unit, or disable and re-enable them (admin); each change is audited."""
    if body.roles is not None:
        gov.accounts.set_roles(name, [role.value for role in body.roles])
    if "unit" in body.model_fields_set:
        gov.accounts.set_unit(name, body.unit)
    if body.disabled is not None:
        gov.accounts.set_disabled(name, disabled=body.disabled)
    return gov.accounts.user(name)


@router.post("/users/{name}/password-reset", response_model=TemporaryPassword)
def reset_password(gov: Acting, name: str) -> TemporaryPassword:
    """Give a user a temporary password that they must change at their next login (admin)."""
    return TemporaryPassword(user=name, temporary_password=gov.accounts.reset_password(name))


@router.get("/users/{name}/tokens", response_model=list[TokenInfo])
def list_tokens(gov: Acting, name: str) -> list[TokenInfo]:
    """Every token of a user, revoked and expired ones too: one's own, or anybody's for an admin."""
    return gov.accounts.tokens(name)


@router.post("/users/{name}/tokens", status_code=status.HTTP_201_CREATED, response_model=IssuedToken)
def issue_token(gov: Acting, name: str, body: NewToken) -> IssuedToken:
    """Create an API token: one's own, or (admin) a service account's. Nobody gets another person's."""
    return gov.accounts.issue_token(name, body.name, body.days)


@router.delete("/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
def revoke_token(gov: Acting, token_id: Annotated[int, Path(ge=1, le=MAX_ID)]) -> Response:
    """Revoke a token at once: one's own for anybody, another user's for an admin."""
    gov.accounts.revoke_token(token_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
