"""Users, units, passwords and API tokens; who is acting.

Passwords are hashed with argon2 (pwdlib). API tokens are 256 random bits shown
once and stored as their sha256 digest, with an expiry and a revocation date.
On a fresh local install the CLI acts as the bootstrap operator, an account created
at first use that holds every role and is marked as such in every audit entry; a
deployment turns it off with ``FACETRACE_ALLOW_BOOTSTRAP=false``.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from datetime import timedelta

from pwdlib import PasswordHash
from sqlalchemy import select
from sqlalchemy.orm import Session

from facetrace.catalog.models import utcnow
from facetrace.errors import AuthenticationError, FacetraceError, NotFoundError
from facetrace.governance.audit import Actor
from facetrace.governance.models import ApiToken, Unit, User, UserRole
from facetrace.governance.roles import Role

BOOTSTRAP_USER = "operator"
#: The account ``facetrace serve`` creates on first start, when nobody can administer over HTTP yet.
FIRST_ADMIN = "admin"
#: Every role but the public portal's.
STAFF_ROLES = [role for role in Role if role is not Role.PUBLIC]
#: The public rights portal acts as this account (role ``public``, no password, no tokens).
PORTAL_USER = "public-portal"
TOKEN_PREFIX = "ftk_"
_passwords = PasswordHash.recommended()


def actor_of(user: User) -> Actor:
    return Actor(
        user_id=user.id,
        name=user.name,
        roles=frozenset(user.role_names),
        unit=user.unit.name if user.unit else None,
        bootstrap=user.is_bootstrap,
    )


def _roles(names: Iterable[str]) -> list[Role]:
    roles: list[Role] = []
    for name in names:
        try:
            role = Role(name)
        except ValueError:
            raise FacetraceError(f"unknown role {name!r}; roles: {', '.join(Role)}") from None
        if role not in roles:  # named twice, held once
            roles.append(role)
    if not roles:
        raise FacetraceError("a user needs at least one role")
    return roles


def _unit(session: Session, name: str | None) -> Unit | None:
    if name is None:
        return None
    unit = session.scalar(select(Unit).where(Unit.name == name))
    if unit is None:
        unit = Unit(name=name)
        session.add(unit)
    return unit


def create_user(
    session: Session, name: str, roles: Iterable[str], *, unit: str | None = None, password: str | None = None
) -> User:
    if session.scalar(select(User).where(User.name == name)) is not None:
        raise FacetraceError(f"a user named {name!r} already exists")
    user = User(
        name=name,
        unit=_unit(session, unit),
        password_hash=_passwords.hash(password) if password else None,
        roles=[UserRole(role=role.value) for role in _roles(roles)],
    )
    session.add(user)
    session.flush()
    return user


def user_named(session: Session, name: str) -> User:
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        raise NotFoundError(f"no user named {name!r}")
    return user


def check_password(session: Session, name: str, password: str) -> User:
    """The user, if the password is theirs; the same error for an unknown name and a wrong password."""
    user = session.scalar(select(User).where(User.name == name))
    if user is None or user.disabled or not user.password_hash:
        _passwords.hash(password)  # spend the same time either way
        raise AuthenticationError("wrong user name or password")
    valid, new_hash = _passwords.verify_and_update(password, user.password_hash)
    if not valid:
        raise AuthenticationError("wrong user name or password")
    if new_hash:  # parameters were raised since this hash was made
        user.password_hash = new_hash
    return user


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(session: Session, user: User, name: str, days: int) -> tuple[ApiToken, str]:
    """A new token for ``user``; the plain token is returned once and never stored."""
    if days < 1:
        raise FacetraceError("a token must be valid for at least one day")
    plain = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        user=user, name=name, token_sha256=_digest(plain), expires_at=utcnow() + timedelta(days=days)
    )
    session.add(token)
    session.flush()
    return token, plain


def revoke_token(session: Session, token_id: int) -> ApiToken:
    token = session.get(ApiToken, token_id)
    if token is None:
        raise NotFoundError(f"no token with id {token_id}")
    token.revoked_at = token.revoked_at or utcnow()
    return token


def token_owner(session: Session, token_id: int) -> str:
    token = session.get(ApiToken, token_id)
    if token is None:
        raise NotFoundError(f"no token with id {token_id}")
    return token.user.name


def user_for_token(session: Session, plain: str) -> User:
    token = session.scalar(select(ApiToken).where(ApiToken.token_sha256 == _digest(plain)))
    if token is None:
        raise AuthenticationError("unknown token")
    if token.revoked_at is not None:
        raise AuthenticationError(f"token {token.name!r} was revoked")
    if token.expires_at <= utcnow():
        raise AuthenticationError(f"token {token.name!r} expired on {token.expires_at:%Y-%m-%d}")
    if token.user.disabled:
        raise AuthenticationError(f"user {token.user.name!r} is disabled")
    return token.user


def bootstrap_user(session: Session) -> User:
    """The local operator account, created with every staff role at first use."""
    user = session.scalar(select(User).where(User.is_bootstrap.is_(True)))
    if user is None:
        user = create_user(session, BOOTSTRAP_USER, STAFF_ROLES)
        user.is_bootstrap = True
        session.flush()
    return user


def portal_user(session: Session) -> User:
    """The public rights portal's account, created at first use."""
    user = session.scalar(select(User).where(User.name == PORTAL_USER))
    if user is None:
        user = create_user(session, PORTAL_USER, [Role.PUBLIC.value])
    return user


def has_admin(session: Session) -> bool:
    """Whether an enabled account other than the bootstrap operator holds the admin role.

    The bootstrap operator does not count: it has no password and exists for the local CLI only.
    """
    query = (
        select(User.id)
        .join(UserRole)
        .where(UserRole.role == Role.ADMIN.value, User.disabled.is_(False), User.is_bootstrap.is_(False))
    )
    return session.scalar(query.limit(1)) is not None


def identify(session: Session, token: str | None, *, allow_bootstrap: bool) -> Actor:
    """Who acts: the token's user, else the bootstrap operator where the deployment allows it."""
    if token:
        return actor_of(user_for_token(session, token))
    if not allow_bootstrap:
        raise AuthenticationError(
            "this deployment has no bootstrap account: give an API token (--token or FACETRACE_TOKEN)"
        )
    return actor_of(bootstrap_user(session))
