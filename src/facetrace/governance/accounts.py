"""Users, units, passwords and API tokens; who is acting.

Passwords are hashed with argon2 in a bounded pool and must meet the policy of
:mod:`facetrace.governance.passwords`. API tokens are 256 random bits shown once and stored as their
sha256 digest, with an expiry and a revocation date. Nobody is given a credential for another person:
a person gets tokens with their own password (or their own token); an admin issues tokens only to
service accounts, the machines' accounts, which hold :data:`SERVICE_ROLES` only and have no password.

The bootstrap operator is the local command line's identity on a fresh install: every staff role,
marked as such in every audit entry, and no row, password, token or web login, ever. The CLI may act
as it while ``FACETRACE_ALLOW_BOOTSTRAP`` allows: by default only until an enabled admin account with
a password exists (see :func:`bootstrap_allowed`).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from facetrace.core.errors import (
    AuthenticationError,
    FacetraceError,
    InvalidValueError,
    NotFoundError,
    PasswordChangeRequiredError,
)
from facetrace.governance import passwords
from facetrace.governance.audit import Actor
from facetrace.governance.roles import Role
from facetrace.store.base import utcnow
from facetrace.store.governance_models import ApiToken, Unit, User, UserRole

BOOTSTRAP_USER = "operator"
#: The account ``facetrace serve`` creates on first start, when nobody can administer over HTTP yet.
FIRST_ADMIN = "admin"
#: Every role but the public portal's.
STAFF_ROLES = [role for role in Role if role is not Role.PUBLIC]
#: The public rights portal acts as this account (role ``public``, no password, no tokens).
PORTAL_USER = "public-portal"
#: Names no account may take: the bootstrap operator's and the portal's.
RESERVED_NAMES = frozenset({BOOTSTRAP_USER, PORTAL_USER})
#: The roles a service account may hold. A machine may run searches (each with its own case, purpose
#: and audit entry); deciding about people (authorisations, erasures, accounts) and overseeing them
#: (audit, reports) stays with named people who answer for it. A monitoring server reads the metrics.
SERVICE_ROLES = frozenset({Role.INVESTIGATOR, Role.MONITOR})
TOKEN_PREFIX = "ftk_"

#: The bootstrap operator, as the audit log records it: no row in ``users``, hence ``user_id`` 0.
BOOTSTRAP = Actor(user_id=0, name=BOOTSTRAP_USER, roles=frozenset(STAFF_ROLES), unit=None, bootstrap=True)


def actor_of(user: User) -> Actor:
    return Actor(
        user_id=user.id,
        name=user.name,
        roles=frozenset(user.role_names),
        unit=user.unit.name if user.unit else None,
        bootstrap=user.is_bootstrap,
    )


def roles_for(names: Iterable[str], *, service: bool) -> list[Role]:
    """The roles ``names`` stand for, each once; a service account's within :data:`SERVICE_ROLES`."""
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
    if service and not set(roles) <= SERVICE_ROLES:
        allowed = ", ".join(sorted(SERVICE_ROLES))
        raise FacetraceError(f"a service account may hold only these roles: {allowed}")
    return roles


def printable(kind: str, name: str) -> str:
    """``name`` if it is printable text: a name with control characters (a NUL, which PostgreSQL
    cannot even compare, a newline that forges lines in a listing) is refused, looked up or not."""
    if not name.isprintable():
        raise InvalidValueError(f"a {kind} name is printable text, without control characters")
    return name


# --- units ------------------------------------------------------------------------------------------


def unit_key(name: str) -> str:
    """The form units are told apart by: spacing collapsed, case folded."""
    return " ".join(printable("unit", name).split()).casefold()


def create_unit(session: Session, name: str) -> Unit:
    display = " ".join(name.split())
    if not display:
        raise FacetraceError("a unit needs a name")
    existing = session.scalar(select(Unit).where(Unit.name_key == unit_key(display)))
    if existing is not None:
        if existing.name == display:
            raise FacetraceError(f"a unit named {display!r} already exists")
        raise FacetraceError(
            f"unit {display!r} differs only by case or spacing from the existing unit {existing.name!r}: "
            "use that one"
        )
    unit = Unit(name=display, name_key=unit_key(display))
    session.add(unit)
    session.flush()
    return unit


def unit_named(session: Session, name: str) -> Unit:
    """The unit ``name`` stands for (however it is cased or spaced); units are never made implicitly."""
    unit = session.scalar(select(Unit).where(Unit.name_key == unit_key(name)))
    if unit is None:
        raise NotFoundError(
            f"no unit named {name!r}: an admin creates it first with 'facetrace unit add {name}' "
            "(or POST /api/v1/units, or the Administration page)"
        )
    return unit


def all_units(session: Session) -> list[Unit]:
    return list(session.scalars(select(Unit).order_by(Unit.name_key)))


# --- users and passwords ----------------------------------------------------------------------------


def create_user(
    session: Session,
    name: str,
    roles: Iterable[str],
    *,
    unit: str | None = None,
    password: str | None = None,
    service: bool = False,
) -> User:
    if name in RESERVED_NAMES:
        raise FacetraceError(f"the name {name!r} is reserved")
    if session.scalar(select(User).where(User.name == printable("user", name))) is not None:
        raise FacetraceError(f"a user named {name!r} already exists")
    if service and password:
        raise FacetraceError("a service account has no password: an admin issues its tokens")
    if password is not None:
        passwords.check_policy(password, name)
    user = User(
        name=name,
        unit=unit_named(session, unit) if unit is not None else None,
        password_hash=passwords.hash_password(password) if password else None,
        is_service=service,
        roles=[UserRole(role=role.value) for role in roles_for(roles, service=service)],
    )
    session.add(user)
    session.flush()
    return user


def create_portal_account(session: Session) -> User:
    user = User(name=PORTAL_USER, roles=[UserRole(role=Role.PUBLIC.value)])
    session.add(user)
    session.flush()
    return user


def user_named(session: Session, name: str) -> User:
    user = session.scalar(select(User).where(User.name == printable("user", name)))
    if user is None:
        raise NotFoundError(f"no user named {name!r}")
    return user


def set_password(user: User, password: str) -> None:
    """A password the user chose: checked against the policy; clears a pending forced change."""
    passwords.check_policy(password, user.name)
    user.password_hash = passwords.hash_password(password)
    user.must_change_password = False


def _may_log_in(user: User) -> bool:
    return not (user.disabled or user.is_bootstrap or user.is_service)


def check_password(
    sessions: sessionmaker[Session], name: str, password: str, *, changing: bool = False
) -> Actor:
    """Who ``name`` is, if the password is theirs; the same error for an unknown name and a wrong password.

    The hash is computed outside any transaction: logins waiting for the hashing pool hold no database
    connection. A password an admin reset opens nothing but its own change (``changing``): any other
    use raises :class:`PasswordChangeRequiredError`. Neither the bootstrap operator, nor service
    accounts, nor disabled users log in.
    """
    with sessions() as session:
        user = session.scalar(select(User).where(User.name == name))
        stored = user.password_hash if user is not None and _may_log_in(user) else None
    valid, new_hash = passwords.verify(password, stored)
    with sessions.begin() as session:
        user = session.scalar(select(User).where(User.name == name))
        # Checked again: the account may have been disabled or its password changed meanwhile.
        if not valid or user is None or not _may_log_in(user) or user.password_hash != stored:
            raise AuthenticationError("wrong user name or password")
        if new_hash:  # parameters were raised since this hash was made
            user.password_hash = new_hash
        if user.must_change_password and not changing:
            raise PasswordChangeRequiredError(
                "an admin reset this password: choose a new one first (the web login asks for it; "
                "over the API: POST /api/v1/auth/password)"
            )
        return actor_of(user)


def temporary_password() -> str:
    """A password an admin hands over once, to be changed at the next login (meets the policy)."""
    return secrets.token_urlsafe(15)


# --- tokens -----------------------------------------------------------------------------------------


def secret_digest(secret: str) -> str:
    """What is stored of a random secret (an API token, a web login's id): its sha256. The secret is
    256 random bits, not chosen by a person, so a fast digest is safe and a lookup is exact."""
    return hashlib.sha256(secret.encode()).hexdigest()


def issue_token(session: Session, user: User, name: str, days: int) -> tuple[ApiToken, str]:
    """A new token for ``user``; the plain token is returned once and never stored.

    Who may ask for it is the service's rule (:meth:`AccountService.issue_token`); the bootstrap
    operator gets none here whoever asks.
    """
    if user.is_bootstrap:
        raise FacetraceError("the bootstrap operator is a command-line identity: it never gets a token")
    if days < 1:
        raise FacetraceError("a token must be valid for at least one day")
    plain = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        user=user, name=name, token_sha256=secret_digest(plain), expires_at=utcnow() + timedelta(days=days)
    )
    session.add(token)
    session.flush()
    return token, plain


def token_with_id(session: Session, token_id: int) -> ApiToken:
    token = session.get(ApiToken, token_id)
    if token is None:
        raise NotFoundError(f"no token with id {token_id}")
    return token


def revoke_all_tokens(session: Session, user: User) -> int:
    """Revoke every token of ``user`` still open; returns how many."""
    result = session.execute(
        update(ApiToken)
        .where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def tokens_of(session: Session, user: User) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id)))


def user_for_token(session: Session, plain: str) -> User:
    token = session.scalar(select(ApiToken).where(ApiToken.token_sha256 == secret_digest(plain)))
    if token is None or token.user.is_bootstrap:
        raise AuthenticationError("unknown token")
    if token.revoked_at is not None:
        raise AuthenticationError(f"token {token.name!r} was revoked")
    if token.expires_at <= utcnow():
        raise AuthenticationError(f"token {token.name!r} expired on {token.expires_at:%Y-%m-%d}")
    if token.user.disabled:
        raise AuthenticationError(f"user {token.user.name!r} is disabled")
    return token.user


# --- who acts ---------------------------------------------------------------------------------------


def portal_user(session: Session) -> User:
    """The public rights portal's account, created at first use of the portal."""
    user = session.scalar(select(User).where(User.name == PORTAL_USER))
    return user if user is not None else create_portal_account(session)


def has_admin(session: Session) -> bool:
    """Whether an enabled account with a password (so not the bootstrap operator, nor a service
    account) holds the admin role."""
    query = (
        select(User.id)
        .join(UserRole)
        .where(
            UserRole.role == Role.ADMIN.value,
            User.disabled.is_(False),
            User.is_bootstrap.is_(False),
            User.password_hash.is_not(None),
        )
    )
    return session.scalar(query.limit(1)) is not None


def bootstrap_allowed(session: Session, setting: bool | None) -> bool:
    """``FACETRACE_ALLOW_BOOTSTRAP``: true or false as set; unset, only while nobody can administer with
    a password of their own (a fresh install, before the first ``facetrace serve``)."""
    return setting if setting is not None else not has_admin(session)


def identify(session: Session, token: str | None, *, allow_bootstrap: bool | None) -> Actor:
    """Who acts: the token's user, else the bootstrap operator where the deployment allows it."""
    if token:
        return actor_of(user_for_token(session, token))
    if not bootstrap_allowed(session, allow_bootstrap):
        raise AuthenticationError(
            "the bootstrap operator is off here (an admin account exists, or "
            "FACETRACE_ALLOW_BOOTSTRAP=false): give an API token of your own "
            "(--token or FACETRACE_TOKEN; POST /api/v1/auth/token issues one)"
        )
    return BOOTSTRAP
