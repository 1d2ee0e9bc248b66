"""Users and API tokens."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from facetrace.governance import accounts, audit
from facetrace.governance.audit import Record
from facetrace.governance.models import User
from facetrace.governance.roles import Action, Role
from facetrace.governance.services.base import ServiceBase


@dataclass(frozen=True, slots=True)
class IssuedToken:
    id: int
    user: str
    name: str
    expires_at: str
    token: str  # shown once


class AccountService(ServiceBase):
    def add_user(self, name: str, roles: list[str], unit: str | None, password: str | None) -> None:
        self.allow(Action.MANAGE_USERS)
        with self.sessions.begin() as session:
            user = accounts.create_user(session, name, roles, unit=unit, password=password)
            audit.append(
                session,
                self.actor,
                Record(
                    action="users.create",
                    details={"user": name, "roles": user.role_names, "unit": unit},
                ),
            )

    def users(self) -> list[dict[str, Any]]:
        self.allow(Action.MANAGE_USERS)
        with self.sessions() as session:
            return [
                {
                    "name": u.name,
                    "roles": u.role_names,
                    "unit": u.unit.name if u.unit else None,
                    "bootstrap": u.is_bootstrap,
                    "disabled": u.disabled,
                }
                for u in session.scalars(select(User).order_by(User.name))
            ]

    def issue_token(self, user_name: str, name: str, days: int) -> IssuedToken:
        """A token for ``user_name``: one's own for anybody, another user's for an admin only."""
        if user_name != self.actor.name:
            self.allow(Action.MANAGE_USERS)
        with self.sessions.begin() as session:
            user = accounts.user_named(session, user_name)
            token, plain = accounts.issue_token(session, user, name, days)
            expires = token.expires_at.isoformat()
            audit.append(
                session,
                self.actor,
                Record(
                    action="tokens.create",
                    details={"user": user_name, "token_id": token.id, "name": name, "expires_at": expires},
                ),
            )
            return IssuedToken(token.id, user_name, name, expires, plain)

    def revoke_token(self, token_id: int) -> None:
        with self.sessions.begin() as session:
            owner = accounts.token_owner(session, token_id)
        if owner != self.actor.name:
            self.allow(Action.MANAGE_USERS)
        with self.sessions.begin() as session:
            accounts.revoke_token(session, token_id)
            audit.append(
                session,
                self.actor,
                Record(action="tokens.revoke", details={"token_id": token_id, "user": owner}),
            )


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
