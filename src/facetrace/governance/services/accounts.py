"""Units, users and their life cycle, API tokens and web logins.

Every change is an admin's and is audited with what changed; a person's credentials are theirs
alone: their password, the tokens they make with it, their web logins. An admin issues tokens to
service accounts only, and resets a password to a temporary one that opens nothing but its own change.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from facetrace.core.config import Settings
from facetrace.core.errors import (
    AuthenticationError,
    FacetraceError,
    PasswordChangeRequiredError,
    PermissionDeniedError,
)
from facetrace.governance import accounts, audit, audit_keys, login_throttle, web_logins
from facetrace.governance.audit import Actor, Record
from facetrace.governance.roles import Action, Role
from facetrace.governance.services.base import ServiceBase
from facetrace.store.base import utcnow
from facetrace.store.governance_models import ApiToken, UserRole
from facetrace.store.governance_models import User as UserRecord

#: Who a failed login is recorded as: nobody was identified (the name typed goes in the details).
ANONYMOUS = Actor(user_id=0, name="anonymous", roles=frozenset(), unit=None)


class User(BaseModel):
    """A user as an admin sees it (the API's ``User``)."""

    model_config = ConfigDict(frozen=True)

    name: str
    roles: list[Role]
    unit: str | None
    bootstrap: bool = Field(description="A bootstrap operator left by an older version (it opens nothing).")
    service: bool = Field(description="A service account (a machine's).")
    disabled: bool
    must_change_password: bool = Field(description="An admin reset the password; not changed yet.")

    @classmethod
    def of(cls, user: UserRecord) -> User:
        return cls(
            name=user.name,
            roles=[Role(name) for name in user.role_names],
            unit=user.unit.name if user.unit else None,
            bootstrap=user.is_bootstrap,
            service=user.is_service,
            disabled=user.disabled,
            must_change_password=user.must_change_password,
        )


class TokenInfo(BaseModel):
    """A token as its owner or an admin lists it: never the token itself."""

    model_config = ConfigDict(frozen=True)

    id: int
    user: str
    name: str
    created_at: str
    expires_at: str
    revoked_at: str | None

    @classmethod
    def of(cls, token: ApiToken) -> TokenInfo:
        return cls(
            id=token.id,
            user=token.user.name,
            name=token.name,
            created_at=token.created_at.isoformat(),
            expires_at=token.expires_at.isoformat(),
            revoked_at=token.revoked_at.isoformat() if token.revoked_at else None,
        )


class IssuedToken(BaseModel):
    """A token just made, with the token itself (the only time it is shown)."""

    model_config = ConfigDict(frozen=True)

    id: int
    user: str
    name: str
    expires_at: str
    token: str = Field(description="Shown once; stored only as its sha256 digest.")


class AccountService(ServiceBase):
    """``gov.accounts``: units, users, roles, passwords, tokens and web logins."""

    # --- units ----------------------------------------------------------------------------------

    def add_unit(self, name: str) -> str:
        """Create a unit (admin); returns its name as stored."""
        self.allow(Action.MANAGE_USERS)
        with self.sessions.begin() as session:
            unit = accounts.create_unit(session, name)
            audit.append(session, self.actor, Record(action="units.create", details={"unit": unit.name}))
            return unit.name

    def units(self) -> list[str]:
        self.allow(Action.MANAGE_USERS)
        with self.sessions() as session:
            return [unit.name for unit in accounts.all_units(session)]

    # --- users ----------------------------------------------------------------------------------

    def add_user(
        self, name: str, roles: list[str], unit: str | None, password: str | None, *, service: bool = False
    ) -> None:
        self.allow(Action.MANAGE_USERS)
        with self.sessions.begin() as session:
            user = accounts.create_user(session, name, roles, unit=unit, password=password, service=service)
            details = {"user": name, "roles": user.role_names, "unit": user.unit.name if user.unit else None}
            audit.append(
                session, self.actor, Record(action="users.create", details={**details, "service": service})
            )

    def users(self) -> list[User]:
        self.allow(Action.MANAGE_USERS)
        with self.sessions() as session:
            return [User.of(u) for u in session.scalars(select(UserRecord).order_by(UserRecord.name))]

    def user(self, name: str) -> User:
        self.allow(Action.MANAGE_USERS)
        with self.sessions() as session:
            return User.of(accounts.user_named(session, name))

    @contextmanager
    def _change(self, name: str, action: str) -> Iterator[tuple[Session, UserRecord, dict[str, Any]]]:
        """One audited change to a user by an admin: yields (session, user, details), then records the
        change with its details if the body succeeded (else nothing changed)."""
        self.allow(Action.MANAGE_USERS)
        with self.sessions.begin() as session:
            user = accounts.user_named(session, name)
            if user.is_bootstrap or user.name == accounts.PORTAL_USER:
                raise FacetraceError(f"{name!r} is not an account an admin manages")
            details: dict[str, Any] = {"user": user.name}
            yield session, user, details
            audit.append(session, self.actor, Record(action=action, details=details))

    def set_disabled(self, name: str, *, disabled: bool) -> None:
        """Disable a user (their tokens stop working and their web logins end at once) or re-enable them."""
        with self._change(name, "users.disable" if disabled else "users.enable") as (session, user, details):
            if disabled and user.name == self.actor.name:
                raise FacetraceError("an admin cannot disable their own account")
            user.disabled = disabled
            if disabled:
                details["web_logins_ended"] = web_logins.end_all(session, user)

    def set_roles(self, name: str, roles: list[str]) -> None:
        with self._change(name, "users.roles") as (_session, user, details):
            new = accounts.roles_for(roles, service=user.is_service)
            if user.name == self.actor.name and Role.ADMIN in self.actor.roles and Role.ADMIN not in new:
                raise FacetraceError("an admin cannot take away their own admin role")
            details.update(old=user.role_names, new=sorted(r.value for r in new))
            kept = [r for r in user.roles if r.role in details["new"]]
            user.roles = kept + [UserRole(role=r) for r in details["new"] if r not in {k.role for k in kept}]

    def set_unit(self, name: str, unit: str | None) -> None:
        with self._change(name, "users.unit") as (session, user, details):
            new = accounts.unit_named(session, unit) if unit is not None else None
            details.update(old=user.unit.name if user.unit else None, new=new.name if new else None)
            user.unit = new

    def reset_password(self, name: str) -> str:
        """A temporary password (shown once) that the user must replace at their next login; their web
        logins end and their tokens are revoked: a reset is what follows a password that leaked, and
        whoever had it may have made tokens with it."""
        with self._change(name, "users.password_reset") as (session, user, details):
            if user.is_service:
                raise FacetraceError("a service account has no password: revoke and reissue its tokens")
            temporary = accounts.temporary_password()
            accounts.set_password(user, temporary)
            user.must_change_password = True
            details["web_logins_ended"] = web_logins.end_all(session, user)
            details["tokens_revoked"] = accounts.revoke_all_tokens(session, user)
            return temporary

    # --- tokens ---------------------------------------------------------------------------------

    def issue_token(self, user_name: str, name: str, days: int) -> IssuedToken:
        """A token for ``user_name``: a person's for themselves only; a service account's for an admin."""
        if self.actor.bootstrap or user_name == accounts.BOOTSTRAP_USER:
            refusal: str | None = (
                "The bootstrap operator is a command-line identity: it neither gets nor issues tokens."
            )
        else:
            if user_name != self.actor.name:
                self.allow(Action.MANAGE_USERS)
            with self.sessions.begin() as session:
                refusal = self._token_refusal(accounts.user_named(session, user_name))
        if refusal:
            self.record(Record(action="tokens.create", outcome="denied", details={"user": user_name}))
            raise PermissionDeniedError(refusal + " The refusal was recorded in the audit log.")
        with self.sessions.begin() as session:
            user = accounts.user_named(session, user_name)
            token, plain = accounts.issue_token(session, user, name, days)
            expires = token.expires_at.isoformat()
            details = {"user": user_name, "token_id": token.id, "name": name, "expires_at": expires}
            audit.append(session, self.actor, Record(action="tokens.create", details=details))
            return IssuedToken(id=token.id, user=user_name, name=name, expires_at=expires, token=plain)

    def _token_refusal(self, user: UserRecord) -> str | None:
        if user.is_bootstrap:
            return "The bootstrap operator is a command-line identity: it neither gets nor issues tokens."
        if user.is_service:
            return None if Role.ADMIN in self.actor.roles else "An admin issues service accounts' tokens."
        if user.name != self.actor.name:
            return (
                f"Nobody is given a credential for another person: {user.name} gets tokens by logging in "
                "with their own password (POST /api/v1/auth/token). Admins issue tokens to service "
                "accounts only."
            )
        return None

    def tokens(self, user_name: str) -> list[TokenInfo]:
        """Every token of a user, revoked and expired ones too (one's own, or anybody's for an admin)."""
        if user_name != self.actor.name:
            self.allow(Action.MANAGE_USERS)
        with self.sessions.begin() as session:
            rows = [
                TokenInfo.of(t) for t in accounts.tokens_of(session, accounts.user_named(session, user_name))
            ]
            audit.append(session, self.actor, Record(action="tokens.list", details={"user": user_name}))
            return rows

    def revoke_token(self, token_id: int) -> None:
        with self.sessions.begin() as session:
            owner = accounts.token_with_id(session, token_id).user.name
        if owner != self.actor.name:
            self.allow(Action.MANAGE_USERS)
        with self.sessions.begin() as session:
            token = accounts.token_with_id(session, token_id)
            token.revoked_at = token.revoked_at or utcnow()
            audit.append(
                session,
                self.actor,
                Record(action="tokens.revoke", details={"token_id": token_id, "user": owner}),
            )

    # --- web logins -----------------------------------------------------------------------------

    def begin_web_login(self) -> str:
        """A web login for the acting user (who just gave their password); returns the session id."""
        with self.sessions.begin() as session:
            user = accounts.user_named(session, self.actor.name)
            login, plain = web_logins.begin(session, user, self.settings.session_hours)
            details = {"web_login_id": login.id, "expires_at": login.expires_at.isoformat()}
            audit.append(session, self.actor, Record(action="web_logins.begin", details=details))
            return plain

    def end_web_login(self, session_id: str) -> None:
        with self.sessions.begin() as session:
            login = web_logins.end(session, session_id)
            if login is not None:
                audit.append(
                    session, self.actor, Record(action="web_logins.end", details={"web_login_id": login.id})
                )


def log_in(
    settings: Settings,
    sessions: sessionmaker[Session],
    name: str,
    password: str,
    address: str | None,
    *,
    changing: bool = False,
) -> Actor:
    """Who ``name`` is, if ``password`` is theirs: throttled per account and per address, and every
    failure audited (signed like every entry) with the name as typed and the address."""
    audit_keys.attach(sessions, settings)
    with sessions.begin() as session:
        login_throttle.check(session, name, address)
    try:
        actor = accounts.check_password(sessions, name, password, changing=changing)
    except PasswordChangeRequiredError:  # the password was right
        with sessions.begin() as session:
            login_throttle.succeeded(session, name)
        raise
    except AuthenticationError:
        with sessions.begin() as session:
            blocked = login_throttle.failed(session, name, address)
            details = {"user_name": name[:200], "address": address, "blocked_for_s": blocked}
            audit.append(session, ANONYMOUS, Record(action="auth.login", outcome="refused", details=details))
        raise
    with sessions.begin() as session:
        login_throttle.succeeded(session, name)
    return actor


def change_password(
    settings: Settings,
    sessions: sessionmaker[Session],
    name: str,
    password: str,
    new_password: str,
    address: str | None,
) -> Actor:
    """A user replaces their password (the only thing a reset one opens); their other web logins end."""
    actor = log_in(settings, sessions, name, password, address, changing=True)
    if new_password == password:
        raise FacetraceError("the new password must differ from the old one")
    with sessions.begin() as session:
        user = accounts.user_named(session, name)
        accounts.set_password(user, new_password)
        ended = web_logins.end_all(session, user)
        audit.append(
            session, actor, Record(action="users.password_change", details={"web_logins_ended": ended})
        )
    return actor


def ensure_first_admin(sessions: sessionmaker[Session], password: str) -> str | None:
    """Create the first admin account (with ``password``) where nobody can administer over HTTP yet.

    Returns its name, or None when an admin exists. The account's creation is its own first audit
    entry: nobody else was there to create it.
    """
    with sessions.begin() as session:
        if accounts.has_admin(session):
            return None
        user = accounts.create_user(session, accounts.FIRST_ADMIN, [Role.ADMIN.value], password=password)
        audit.append(
            session,
            accounts.actor_of(user),
            Record(
                action="users.create",
                details={"user": user.name, "roles": user.role_names, "unit": None, "first_admin": True},
            ),
        )
        return user.name
